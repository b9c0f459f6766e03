-- Postings and journal entries are append-only: UPDATE and DELETE raise; a correction is a new entry.
CREATE OR REPLACE FUNCTION portfolios_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

DROP TRIGGER IF EXISTS portfolios_posting_append_only ON portfolios_posting;
CREATE TRIGGER portfolios_posting_append_only
    BEFORE UPDATE OR DELETE ON portfolios_posting
    FOR EACH ROW EXECUTE FUNCTION portfolios_refuse_change();

DROP TRIGGER IF EXISTS portfolios_journalentry_append_only ON portfolios_journalentry;
CREATE TRIGGER portfolios_journalentry_append_only
    BEFORE UPDATE OR DELETE ON portfolios_journalentry
    FOR EACH ROW EXECUTE FUNCTION portfolios_refuse_change();
