"""The balanced-entry check reads every entry of the committing transaction in one query.

portfolios_entry_balanced stays a DEFERRABLE INITIALLY DEFERRED constraint trigger per journal entry, but its first
firing checks, set-wise, all entries of the transaction (by `txid`, indexed) from its own id up: each sums to zero
per asset and has postings. It notes the highest id it checked in a transaction-local setting, and later firings
for entries up to that id return at once. At commit a batch of hundreds of entries costs one aggregate instead of
two queries per entry. Entries of one transaction get increasing ids, so an entry inserted after a check (after
SET CONSTRAINTS ... IMMEDIATE) has a higher id and is checked by its own firing. As before, a writer that sets the
constraint IMMEDIATE must insert each entry with its postings in one statement.

The function lives in `portfolios/sql/portfolios_entry_check_balanced.sql` (ADR 008); this migration keeps the
index the check reads.
"""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0004_journalentry_txid")]

    operations = [
        migrations.AddIndex(
            model_name="journalentry",
            index=models.Index(fields=["txid", "id"], name="portfolios_entry_txid_id"),
        ),
    ]
