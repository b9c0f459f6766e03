"""The staff audit trail is append-only: Postgres refuses UPDATE and DELETE of its rows.

The function and its trigger live in `accounts/sql/accounts_staffauditlog_append_only.sql` (applied after migrate,
ADR 008). Kept, empty, for the migration history.
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_auth_mfa_api_keys_audit"),
    ]

    operations = []
