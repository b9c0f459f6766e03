"""Ledger invariants kept by Postgres, so SQL written anywhere (order functions, batch settlement) stays safe.

- portfolios_posting_apply: AFTER INSERT statement trigger on postings; locks the client accounts it touches
  in primary-key order and adds the postings to their maintained `balance` (house accounts keep NULL).
- portfolios_ledgeraccount_balance_nonnegative (CHECK, in 0001): a client balance below zero is refused at
  the statement that would cause it.
- portfolios_entry_balanced: DEFERRABLE INITIALLY DEFERRED constraint trigger on postings; at commit each
  journal entry must sum to zero per asset. One indexed aggregate per entry: the postings of an entry fire
  one after another, and a transaction-local note skips the postings already covered by a check.
- portfolios_posting_append_only / portfolios_journalentry_append_only: UPDATE and DELETE refused.
- portfolios_ledgeraccount_guard: a balance changes only through postings; owner, kind and asset never.
- portfolios_accounts_open(owner_id, kinds[], asset): opens accounts idempotently (ON CONFLICT DO NOTHING).
"""
from django.db import migrations

FORWARD = r"""
CREATE FUNCTION portfolios_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Lock first, in primary-key order, so concurrent writers of several accounts cannot deadlock.
    PERFORM 1 FROM portfolios_ledgeraccount
      WHERE id IN (SELECT account_id FROM inserted) AND owner_id IS NOT NULL
      ORDER BY id FOR UPDATE;
    UPDATE portfolios_ledgeraccount AS a
       SET balance = a.balance + s.total
      FROM (SELECT account_id, sum(amount) AS total FROM inserted GROUP BY account_id) AS s
     WHERE a.id = s.account_id AND a.owner_id IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER portfolios_posting_apply
    AFTER INSERT ON portfolios_posting
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION portfolios_posting_apply();

CREATE FUNCTION portfolios_entry_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    note text := current_setting('portfolios.checked_entry', true);
    row record;
    last_id bigint := 0;
BEGIN
    IF note IS NOT NULL AND note <> ''
       AND split_part(note, ':', 1)::bigint = NEW.entry_id
       AND split_part(note, ':', 2)::bigint >= NEW.id THEN
        RETURN NULL;  -- this posting was part of the entry when it was last checked
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

CREATE FUNCTION portfolios_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER portfolios_posting_append_only
    BEFORE UPDATE OR DELETE ON portfolios_posting
    FOR EACH ROW EXECUTE FUNCTION portfolios_refuse_change();

CREATE TRIGGER portfolios_journalentry_append_only
    BEFORE UPDATE OR DELETE ON portfolios_journalentry
    FOR EACH ROW EXECUTE FUNCTION portfolios_refuse_change();

CREATE FUNCTION portfolios_ledgeraccount_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger accounts are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.owner_id IS DISTINCT FROM OLD.owner_id OR NEW.kind <> OLD.kind OR NEW.asset <> OLD.asset
       OR NEW.may_go_negative <> OLD.may_go_negative THEN
        RAISE EXCEPTION 'ledger account % identity is immutable', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    -- Depth 1 is a statement from a client; the posting trigger's own UPDATE runs at depth 2.
    IF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'ledger account % balance changes only through postings', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER portfolios_ledgeraccount_guard
    BEFORE UPDATE OR DELETE ON portfolios_ledgeraccount
    FOR EACH ROW EXECUTE FUNCTION portfolios_ledgeraccount_guard();

CREATE FUNCTION portfolios_accounts_open(p_owner_id bigint, p_kinds text[], p_asset text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO portfolios_ledgeraccount (owner_id, kind, asset, balance, may_go_negative, created_at)
    SELECT p_owner_id, k, p_asset,
           CASE WHEN p_owner_id IS NULL THEN NULL ELSE 0 END,
           p_owner_id IS NULL,
           now()
      FROM unnest(p_kinds) AS k
    ON CONFLICT (owner_id, kind, asset) DO NOTHING
$$;
"""

REVERSE = r"""
DROP FUNCTION IF EXISTS portfolios_accounts_open(bigint, text[], text);
DROP TRIGGER IF EXISTS portfolios_ledgeraccount_guard ON portfolios_ledgeraccount;
DROP FUNCTION IF EXISTS portfolios_ledgeraccount_guard();
DROP TRIGGER IF EXISTS portfolios_journalentry_append_only ON portfolios_journalentry;
DROP TRIGGER IF EXISTS portfolios_posting_append_only ON portfolios_posting;
DROP FUNCTION IF EXISTS portfolios_refuse_change();
DROP TRIGGER IF EXISTS portfolios_entry_balanced ON portfolios_posting;
DROP FUNCTION IF EXISTS portfolios_entry_check_balanced();
DROP TRIGGER IF EXISTS portfolios_posting_apply ON portfolios_posting;
DROP FUNCTION IF EXISTS portfolios_posting_apply();
"""


class Migration(migrations.Migration):
    dependencies = [("portfolios", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
