-- A ledger account's balance changes only through postings; its identity never changes; it is never deleted.
CREATE OR REPLACE FUNCTION portfolios_ledgeraccount_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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

DROP TRIGGER IF EXISTS portfolios_ledgeraccount_guard ON portfolios_ledgeraccount;
CREATE TRIGGER portfolios_ledgeraccount_guard
    BEFORE UPDATE OR DELETE ON portfolios_ledgeraccount
    FOR EACH ROW EXECUTE FUNCTION portfolios_ledgeraccount_guard();
