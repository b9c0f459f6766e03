"""Database code (SQL functions and triggers) lives in each app's sql/*.sql and is applied after migrate (ADR 008)."""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokerx import database_code

DEFINITIONS = """
    SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           pg_get_functiondef(p.oid)
      FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'
       AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'trigger ' || t.tgrelid::regclass::text || '.' || t.tgname, pg_get_triggerdef(t.oid)
      FROM pg_trigger AS t WHERE NOT t.tgisinternal
"""
FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(", re.IGNORECASE)
TRIGGER = re.compile(r"CREATE\s+(?:CONSTRAINT\s+)?TRIGGER\s+(\w+)\s.*?\bON\s+(\w+)", re.IGNORECASE | re.DOTALL)
ANY_CREATE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?(?:FUNCTION|TRIGGER|PROCEDURE)\b",
                        re.IGNORECASE)


def definitions(cursor) -> dict[str, str]:
    cursor.execute(DEFINITIONS)
    return dict(cursor.fetchall())


def names_in_files() -> set[str]:
    names = set()
    for sql_file in database_code.sql_files():
        text = sql_file.text()
        names |= {f"function {name}" for name in FUNCTION.findall(text)}
        names |= {f"trigger {table}.{name}" for name, table in TRIGGER.findall(text)}
    return names


def recorded() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name, checksum FROM {database_code.TABLE}")  # noqa: S608
        return dict(cursor.fetchall())


# --- every function and trigger comes from one file --------------------------------------------------------------

@pytest.mark.django_db
def test_every_function_and_trigger_in_the_database_comes_from_a_sql_file():
    with connection.cursor() as cursor:
        in_database = {name.split("(")[0] for name in definitions(cursor)}
    in_files = names_in_files()
    assert {"function orders_place", "trigger portfolios_journalentry.portfolios_entry_balanced"} <= in_files
    assert in_database == in_files


def test_no_migration_creates_a_function_or_trigger():
    ours = [c for c in apps.get_app_configs() if Path(c.path).is_relative_to(settings.BASE_DIR)]
    found = [str(path) for c in ours for path in Path(c.path, "migrations").glob("*.py")
             if ANY_CREATE.search(path.read_text())]
    assert len(ours) >= 5
    assert found == []


@pytest.mark.django_db
def test_every_file_says_what_it_does_and_can_run_again_without_changing_anything():
    files = database_code.sql_files()
    assert {f.app_label for f in files} == {"accounts", "portfolios", "orders"}
    with connection.cursor() as cursor:
        before = definitions(cursor)
        for sql_file in files:
            text = sql_file.text()
            assert text.startswith("-- "), sql_file.name
            cursor.execute(text)
            cursor.execute(text)
        assert definitions(cursor) == before


# --- only changed files are applied -------------------------------------------------------------------------------

def _probe_file(tmp_path, name: str, value: int) -> database_code.SqlFile:
    path = tmp_path / f"{name}.sql"
    path.write_text(f"-- A probe.\nCREATE OR REPLACE FUNCTION {name}() RETURNS int LANGUAGE sql\n"
                    f"AS $$ SELECT {value} $$;\n")
    return database_code.SqlFile(f"brokerx/sql/{path.name}", "brokerx", path)


def _call(function: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}()")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_changed_file_is_applied_again_and_an_unchanged_one_is_not(tmp_path, monkeypatch):
    real = database_code.sql_files()
    first = _probe_file(tmp_path, "dbcode_probe_a", 1)
    second = _probe_file(tmp_path, "dbcode_probe_b", 1)
    probes = [first, second]
    monkeypatch.setattr(database_code, "sql_files", lambda: [*real, *probes])

    assert database_code.apply_changed() == [first.name, second.name]
    assert _call("dbcode_probe_a") == 1
    with CaptureQueriesContext(connection) as queries:  # nothing changed: one SELECT (in a savepoint here)
        assert database_code.apply_changed() == []
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert statements == [f"SELECT name, checksum FROM {database_code.TABLE}"]  # noqa: S608

    with connection.cursor() as cursor:  # if the second file ran again, this would be undone
        cursor.execute("CREATE OR REPLACE FUNCTION dbcode_probe_b() RETURNS int LANGUAGE sql AS $$ SELECT 99 $$")
    before = recorded()
    _probe_file(tmp_path, "dbcode_probe_a", 2)

    assert database_code.apply_changed() == [first.name]
    assert (_call("dbcode_probe_a"), _call("dbcode_probe_b")) == (2, 99)
    after = recorded()
    assert after[first.name] == hashlib.sha256(first.path.read_bytes()).hexdigest() != before[first.name]
    assert {k: v for k, v in after.items() if k != first.name} == {k: v for k, v in before.items() if k != first.name}

    probes.remove(second)  # a file removed: its record goes (a migration drops its function)
    assert database_code.apply_changed() == []
    assert second.name not in recorded() and first.name in recorded()


@pytest.mark.django_db
def test_an_app_migrated_backwards_has_its_files_applied_again_once_migrated(monkeypatch):
    accounts = [f.name for f in database_code.sql_files() if f.app_label == "accounts"]
    monkeypatch.setattr(database_code, "apps_not_migrated", lambda connection: {"accounts"})
    assert database_code.apply_changed(migrated_backwards=True) == []
    assert accounts and not set(accounts) & set(recorded())

    monkeypatch.setattr(database_code, "apps_not_migrated", lambda connection: set())
    assert database_code.apply_changed() == accounts
    assert set(accounts) <= set(recorded())


@pytest.mark.django_db(transaction=True)
def test_a_flush_keeps_the_records_and_applies_nothing(capsys, django_assert_num_queries):
    before = recorded()
    call_command("flush", interactive=False, verbosity=1)
    assert recorded() == before and len(before) == len(database_code.sql_files())
    assert "Applied database code" not in capsys.readouterr().out
    with django_assert_num_queries(1):  # what each flush's post_migrate costs
        assert database_code.apply_changed() == []


# --- a database with stale code ends like a fresh one -------------------------------------------------------------

@pytest.fixture
def second_database():
    """An empty database beside the test database, dropped afterwards; yields its URL."""
    db = connection.settings_dict
    name = f"{db['NAME']}_dbcode"
    server = f"postgresql://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "brokerx.settings.test"}
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.django_db
def test_a_database_with_stale_code_and_no_records_migrates_to_the_definitions_of_a_fresh_one(second_database):
    with connection.cursor() as cursor:
        fresh = definitions(cursor)
    _migrate(second_database)
    posting_apply = next(f for f in database_code.sql_files() if f.name.endswith("/portfolios_posting_apply.sql"))
    stale = posting_apply.text().replace("FOR NO KEY UPDATE", "FOR UPDATE")  # its body before portfolios 0003
    assert stale != posting_apply.text()
    with psycopg.connect(second_database, autocommit=True) as other:
        other.execute(stale)
        other.execute("DROP TRIGGER portfolios_ledgeraccount_guard ON portfolios_ledgeraccount")
        other.execute(f"DELETE FROM {database_code.TABLE} WHERE name LIKE 'portfolios/%'")  # noqa: S608
        assert definitions(other.cursor()) != fresh

    output = _migrate(second_database)

    assert "No migrations to apply" in output and "portfolios_posting_apply.sql" in output
    assert "orders_place.sql" not in output  # unchanged and recorded: not run again
    with psycopg.connect(second_database) as other:
        assert definitions(other.cursor()) == fresh
        records = dict(other.execute(f"SELECT name, checksum FROM {database_code.TABLE}").fetchall())  # noqa: S608
    assert records == {f.name: f.checksum() for f in database_code.sql_files()}
