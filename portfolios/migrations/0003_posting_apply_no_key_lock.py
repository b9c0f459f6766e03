"""The posting trigger locks client accounts FOR NO KEY UPDATE (what its UPDATE takes anyway), not FOR UPDATE.

FOR UPDATE conflicts with the FOR KEY SHARE lock every posting INSERT's foreign-key check takes on its
account, so two writers inserting postings without locking first (batch settlement, order SQL functions)
could each hold a key-share lock the other's FOR UPDATE waits for. FOR NO KEY UPDATE does not conflict
with key-share locks, and still serializes the writers of one balance.

The function lives in `portfolios/sql/portfolios_posting_apply.sql` (ADR 008). Kept, empty, for the history.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0002_ledger_invariants")]

    operations = []
