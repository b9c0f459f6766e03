-- The staff audit trail is append-only: UPDATE and DELETE of its rows raise.
CREATE OR REPLACE FUNCTION accounts_staffauditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'accounts_staffauditlog is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS accounts_staffauditlog_append_only ON accounts_staffauditlog;
CREATE TRIGGER accounts_staffauditlog_append_only
    BEFORE UPDATE OR DELETE ON accounts_staffauditlog
    FOR EACH ROW EXECUTE FUNCTION accounts_staffauditlog_append_only();
