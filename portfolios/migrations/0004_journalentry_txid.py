"""The balanced-entry check fires once per journal entry instead of once per posting.

- portfolios_journalentry.txid defaults to txid_current() (the top-level transaction, also inside savepoints).
- portfolios_posting_apply (statement trigger) now first refuses postings to an entry created by another
  transaction, so an entry's postings are all inserted by the transaction that inserts the entry.
- portfolios_entry_balanced is therefore a DEFERRABLE INITIALLY DEFERRED constraint trigger on the journal
  entry: at commit, one indexed aggregate per entry checks it sums to zero per asset and has postings.
  (A writer that sets this constraint IMMEDIATE must insert each entry with its postings in one statement.)
"""
from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION portfolios_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted AS i JOIN portfolios_journalentry AS e ON e.id = i.entry_id
                WHERE e.txid <> txid_current()) THEN
        RAISE EXCEPTION 'postings can only be added to a journal entry by the transaction that created it'
            USING ERRCODE = 'restrict_violation';
    END IF;
    -- Lock first, in primary-key order, so concurrent writers of several accounts cannot deadlock.
    PERFORM 1 FROM portfolios_ledgeraccount
      WHERE id IN (SELECT account_id FROM inserted) AND owner_id IS NOT NULL
      ORDER BY id FOR NO KEY UPDATE;
    UPDATE portfolios_ledgeraccount AS a
       SET balance = a.balance + s.total
      FROM (SELECT account_id, sum(amount) AS total FROM inserted GROUP BY account_id) AS s
     WHERE a.id = s.account_id AND a.owner_id IS NOT NULL;
    RETURN NULL;
END
$$;

DROP TRIGGER portfolios_entry_balanced ON portfolios_posting;
DROP FUNCTION portfolios_entry_check_balanced();

CREATE FUNCTION portfolios_entry_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
    -- Checked once: an entry must have its postings when the check runs (at commit, by default).
    IF NOT EXISTS (SELECT 1 FROM portfolios_posting WHERE entry_id = NEW.id) THEN
        RAISE EXCEPTION 'journal entry % has no postings', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'portfolios_entry_balanced';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER portfolios_entry_balanced
    AFTER INSERT ON portfolios_journalentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION portfolios_entry_check_balanced();
"""

REVERSE = r"""
DROP TRIGGER portfolios_entry_balanced ON portfolios_journalentry;
DROP FUNCTION portfolios_entry_check_balanced();

CREATE FUNCTION portfolios_entry_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    note text := current_setting('portfolios.checked_entry', true);
    row record;
    last_id bigint := 0;
BEGIN
    IF note IS NOT NULL AND note <> ''
       AND split_part(note, ':', 1)::bigint = NEW.entry_id
       AND split_part(note, ':', 2)::bigint >= NEW.id THEN
        RETURN NULL;
    END IF;
    FOR row IN
        SELECT a.asset, sum(p.amount) AS total, max(p.id) AS last_id
          FROM portfolios_posting AS p JOIN portfolios_ledgeraccount AS a ON a.id = p.account_id
         WHERE p.entry_id = NEW.entry_id
         GROUP BY a.asset
    LOOP
        IF row.total <> 0 THEN
            RAISE EXCEPTION 'journal entry % does not balance: % sums to %', NEW.entry_id, row.asset, row.total
                USING ERRCODE = 'check_violation', CONSTRAINT = 'portfolios_entry_balanced';
        END IF;
        last_id := greatest(last_id, row.last_id);
    END LOOP;
    PERFORM set_config('portfolios.checked_entry', NEW.entry_id::text || ':' || last_id::text, true);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER portfolios_entry_balanced
    AFTER INSERT ON portfolios_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION portfolios_entry_check_balanced();

CREATE OR REPLACE FUNCTION portfolios_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM portfolios_ledgeraccount
      WHERE id IN (SELECT account_id FROM inserted) AND owner_id IS NOT NULL
      ORDER BY id FOR NO KEY UPDATE;
    UPDATE portfolios_ledgeraccount AS a
       SET balance = a.balance + s.total
      FROM (SELECT account_id, sum(amount) AS total FROM inserted GROUP BY account_id) AS s
     WHERE a.id = s.account_id AND a.owner_id IS NOT NULL;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0003_posting_apply_no_key_lock")]

    operations = [
        migrations.AddField(
            model_name="journalentry",
            name="txid",
            field=models.BigIntegerField(db_default=models.Func(function="txid_current"), editable=False),
        ),
        migrations.RunSQL(FORWARD, REVERSE),
    ]
