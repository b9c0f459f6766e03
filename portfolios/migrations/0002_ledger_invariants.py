"""Ledger invariants kept by Postgres, so SQL written anywhere (order functions, batch settlement) stays safe.

The functions and triggers this migration once created live in `portfolios/sql/` (applied after migrate,
ADR 008): portfolios_posting_apply, portfolios_entry_check_balanced (trigger portfolios_entry_balanced),
portfolios_refuse_change (the append-only triggers), portfolios_ledgeraccount_guard, portfolios_accounts_open.
The CHECK portfolios_ledgeraccount_balance_nonnegative is in 0001. Kept, empty, for the migration history.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0001_initial")]

    operations = []
