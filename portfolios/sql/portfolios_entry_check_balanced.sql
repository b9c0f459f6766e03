-- At commit, every journal entry of the transaction must have postings and sum to zero per asset (ADR 004).
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

DROP TRIGGER IF EXISTS portfolios_entry_balanced ON portfolios_journalentry;
CREATE CONSTRAINT TRIGGER portfolios_entry_balanced
    AFTER INSERT ON portfolios_journalentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION portfolios_entry_check_balanced();
