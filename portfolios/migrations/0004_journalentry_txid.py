"""The balanced-entry check fires once per journal entry instead of once per posting.

- portfolios_journalentry.txid defaults to txid_current() (the top-level transaction, also inside savepoints).
- portfolios_posting_apply (statement trigger) now first refuses postings to an entry created by another
  transaction, so an entry's postings are all inserted by the transaction that inserts the entry.
- portfolios_entry_balanced is therefore a DEFERRABLE INITIALLY DEFERRED constraint trigger on the journal
  entry: at commit, one indexed aggregate per entry checks it sums to zero per asset and has postings.
  (A writer that sets this constraint IMMEDIATE must insert each entry with its postings in one statement.)

The functions and the trigger live in `portfolios/sql/` (ADR 008). This migration keeps the column, and drops the
trigger of the same name that earlier databases had on postings (the file creates the one on journal entries).
"""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0003_posting_apply_no_key_lock")]

    operations = [
        migrations.AddField(
            model_name="journalentry",
            name="txid",
            field=models.BigIntegerField(db_default=models.Func(function="txid_current"), editable=False),
        ),
        migrations.RunSQL("DROP TRIGGER IF EXISTS portfolios_entry_balanced ON portfolios_posting",
                          migrations.RunSQL.noop),
    ]
