"""The balanced-entry check reads every entry of the committing transaction in one query.

portfolios_entry_balanced stays a DEFERRABLE INITIALLY DEFERRED constraint trigger per journal entry, but its first
firing checks, set-wise, all entries of the transaction (by `txid`, indexed) from its own id up: each sums to zero
per asset and has postings. It notes the highest id it checked in a transaction-local setting, and later firings
for entries up to that id return at once. At commit a batch of hundreds of entries costs one aggregate instead of
two queries per entry. Entries of one transaction get increasing ids, so an entry inserted after a check (after
SET CONSTRAINTS ... IMMEDIATE) has a higher id and is checked by its own firing. As before, a writer that sets the
constraint IMMEDIATE must insert each entry with its postings in one statement.
"""
from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION portfolios_entry_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    checked_upto bigint := coalesce(nullif(current_setting('portfolios.entries_checked_upto', true), ''), '0')::bigint;
    bad record;
    last_id bigint;
BEGIN
    IF NEW.id <= checked_upto THEN
        RETURN NULL;
    END IF;
    SELECT max(e.id) INTO last_id FROM portfolios_journalentry AS e WHERE e.txid = NEW.txid AND e.id >= NEW.id;
    SELECT e.id, a.asset, coalesce(sum(p.amount), 0) AS total, count(p.id) AS postings INTO bad
      FROM portfolios_journalentry AS e
      LEFT JOIN portfolios_posting AS p ON p.entry_id = e.id
      LEFT JOIN portfolios_ledgeraccount AS a ON a.id = p.account_id
     WHERE e.txid = NEW.txid AND e.id BETWEEN NEW.id AND last_id
     GROUP BY e.id, a.asset
    HAVING count(p.id) = 0 OR sum(p.amount) <> 0
     ORDER BY e.id
     LIMIT 1;
    IF FOUND THEN
        IF bad.postings = 0 THEN
            RAISE EXCEPTION 'journal entry % has no postings', bad.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'portfolios_entry_balanced';
        END IF;
        RAISE EXCEPTION 'journal entry % does not balance: % sums to %', bad.id, bad.asset, bad.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'portfolios_entry_balanced';
    END IF;
    PERFORM set_config('portfolios.entries_checked_upto', last_id::text, true);
    RETURN NULL;
END
$$;
"""

REVERSE = r"""
CREATE OR REPLACE FUNCTION portfolios_entry_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT a.asset, sum(p.amount) AS total INTO bad
      FROM portfolios_posting AS p JOIN portfolios_ledgeraccount AS a ON a.id = p.account_id
     WHERE p.entry_id = NEW.id
     GROUP BY a.asset
    HAVING sum(p.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % does not balance: % sums to %', NEW.id, bad.asset, bad.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'portfolios_entry_balanced';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM portfolios_posting WHERE entry_id = NEW.id) THEN
        RAISE EXCEPTION 'journal entry % has no postings', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'portfolios_entry_balanced';
    END IF;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0004_journalentry_txid")]

    operations = [
        migrations.AddIndex(
            model_name="journalentry",
            index=models.Index(fields=["txid", "id"], name="portfolios_entry_txid_id"),
        ),
        migrations.RunSQL(FORWARD, REVERSE),
    ]
