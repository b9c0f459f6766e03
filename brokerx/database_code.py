"""Applies the database code (SQL functions and triggers in each app's `sql/*.sql`) whose text changed, after migrate.

Each file holds the one live definition of its objects and is safe to run again (CREATE OR REPLACE FUNCTION,
DROP TRIGGER IF EXISTS + CREATE TRIGGER). After every `migrate` (`post_migrate`, once per run) the files whose
sha256 differs from the one recorded in `brokerx_database_code` are run in one transaction and their new
checksums recorded: the repeatable migrations of Flyway. When nothing changed this costs one SELECT. See ADR 008.

The bookkeeping table is created here, not by a model: TransactionTestCase's flush truncates every model table
and then sends post_migrate, which would then find no checksums and run every file again after each such test.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.db import ProgrammingError, connections, transaction
from django.db.migrations.loader import MigrationLoader

TABLE = "brokerx_database_code"
UNDEFINED_TABLE = "42P01"
# Two migrate runs at once (two deploy jobs) apply the files one after the other, not into each other.
LOCK_KEY = 0x62726B7864627363  # "brkxdbsc"


@dataclass(frozen=True)
class SqlFile:
    name: str  # "<app label>/sql/<file name>": the key of its bookkeeping row
    app_label: str
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def sql_files() -> list[SqlFile]:
    """Every installed app's `sql/*.sql`: apps in INSTALLED_APPS order, then files by name."""
    found = []
    for app_config in apps.get_app_configs():
        for path in sorted(Path(app_config.path, "sql").glob("*.sql")):
            found.append(SqlFile(f"{app_config.label}/sql/{path.name}", app_config.label, path))
    return found


def _recorded(cursor) -> dict[str, str]:
    cursor.execute(f"SELECT name, checksum FROM {TABLE}")  # noqa: S608  (a constant)
    return dict(cursor.fetchall())


def _recorded_if_any(connection) -> dict[str, str]:
    """The recorded checksums; none where the table does not exist yet (a fresh database)."""
    # Inside a caller's transaction a failed statement would abort it: try in a savepoint there.
    guard = transaction.atomic(using=connection.alias) if connection.in_atomic_block else nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            return _recorded(cursor)
    except ProgrammingError as error:
        if getattr(error.__cause__, "sqlstate", None) != UNDEFINED_TABLE:
            raise
        return {}


def apps_not_migrated(connection) -> set[str]:
    """Apps with a migration not applied: their tables may be missing, so their files wait for the next migrate."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return {app_label for app_label, name in loader.graph.leaf_nodes()
            if (app_label, name) not in loader.applied_migrations}


def apply_changed(*, using: str = "default", migrated_backwards: bool = False, stdout=None) -> list[str]:
    """Run the files whose text changed since they were last applied, in one transaction; return their names.

    After a migration was unapplied (`migrated_backwards`), the records of every app not fully migrated are
    forgotten, so that its files run again once it is: unapplying its first migration drops its triggers."""
    files = sql_files()
    checksums = {f.name: f.checksum() for f in files}
    connection = connections[using]
    recorded = _recorded_if_any(connection)
    if not migrated_backwards and recorded == checksums:
        return []
    applied = []
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, checksum text NOT NULL, "
                       "applied_at timestamptz NOT NULL DEFAULT now())")
        recorded = _recorded(cursor)  # again, under the lock: another migrate may have applied some meanwhile
        waiting = apps_not_migrated(connection)
        for sql_file in files:
            if sql_file.app_label in waiting or recorded.get(sql_file.name) == checksums[sql_file.name]:
                continue
            cursor.execute(sql_file.text())
            cursor.execute(f"INSERT INTO {TABLE} (name, checksum) VALUES (%s, %s) "  # noqa: S608  (a constant)
                           "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
                           [sql_file.name, checksums[sql_file.name]])
            applied.append(sql_file.name)
        # No record stays of a removed file (a migration drops its objects) or of an app not fully migrated.
        forget = [name for name in recorded if name not in checksums or name.split("/", 1)[0] in waiting]
        if forget:
            cursor.execute(f"DELETE FROM {TABLE} WHERE name = ANY(%s)", [forget])  # noqa: S608  (a constant)
    if stdout is not None:
        for name in applied:
            stdout.write(f"  Applied database code {name}\n")
    return applied


def apply_after_migrate(sender, *, using: str, verbosity: int = 1, plan=None, stdout=None, **kwargs) -> None:
    """post_migrate receiver, connected for one app so it runs once per migrate (and per flush: one SELECT)."""
    migrated_backwards = any(backward for _migration, backward in plan or ())
    apply_changed(using=using, migrated_backwards=migrated_backwards, stdout=stdout if verbosity >= 1 else None)
