# The staff audit trail is append-only: Postgres refuses UPDATE and DELETE of its rows.
from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION accounts_staffauditlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'accounts_staffauditlog is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_staffauditlog_append_only
    BEFORE UPDATE OR DELETE ON accounts_staffauditlog
    FOR EACH ROW EXECUTE FUNCTION accounts_staffauditlog_append_only();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS accounts_staffauditlog_append_only ON accounts_staffauditlog;
DROP FUNCTION IF EXISTS accounts_staffauditlog_append_only();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_auth_mfa_api_keys_audit"),
    ]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
