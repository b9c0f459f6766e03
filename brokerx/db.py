"""Set-wise SQL helpers for batch writers (many rows in one statement with one array parameter per column), and
the retry of a transaction Postgres aborted to break a deadlock."""
import functools
import logging
import random
import re
import time

import psycopg
from django.db import OperationalError, connection

logger = logging.getLogger(__name__)
DEADLOCK_DETECTED = "40P01"
DEADLOCK_ATTEMPTS = 3

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*( ?\[\])?$")


def insert_rows(table: str, columns: dict[str, str], rows: list[tuple], *, returning: str | None = None) -> list:
    """INSERT rows through unnest(): one statement and len(columns) parameters, however many rows.

    `columns` maps column name -> Postgres type (e.g. {"order_id": "bigint", "data": "jsonb"}); rows are
    tuples in that order. Returns the RETURNING values in insertion order (when `returning` is given).
    """
    if not rows:
        return []
    names = list(columns)
    # Table, columns and types come from code, never from input; refuse anything else all the same.
    for identifier in (table, *names, *columns.values(), *(returning.split(", ") if returning else [])):
        if not _IDENTIFIER.match(identifier):
            raise ValueError(f"not an SQL identifier: {identifier!r}")
    arrays = [[row[i] for row in rows] for i in range(len(names))]
    # %b: arrays travel in binary, dumped by psycopg's C code.
    unnest = ", ".join(f"%b::{columns[name]}[]" for name in names)
    # WITH ORDINALITY keeps the rows (and so the ids they get) in the caller's order.
    column_list = ", ".join(names)
    sql = f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM unnest({unnest}) "  # noqa: S608
    sql += f"WITH ORDINALITY AS t({column_list}, _n) ORDER BY _n"  # (identifiers checked above)
    if returning:
        sql += f" RETURNING {returning}"
    return execute_bound(sql, arrays, fetch=bool(returning))


def execute_bound(sql: str, params: list, *, fetch: bool = False) -> list:
    """Run one statement with server-side parameter binding (psycopg dumps the arrays in C, where Django's
    client-side binding would render them as SQL text in Python), inside Django's current transaction."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()] if fetch else []


def deadlock_backoff(attempt: int) -> float:
    """Seconds a deadlock victim waits before running again: a few milliseconds, random, longer each attempt, so
    the transaction that survived takes the contested rows first instead of meeting the retry there again."""
    return random.uniform(0.002, 0.010) * attempt  # noqa: S311 - jitter, not a secret


def retry_deadlocks(fn):
    """Run `fn` again (up to DEADLOCK_ATTEMPTS times in all) when Postgres aborted it to break a deadlock.

    For functions that are a whole transaction when called outside one (an `atomic` block or one statement in
    autocommit): a deadlock victim's transaction wrote nothing, so it may simply run again once the other side
    is through. Hot rows (traders' accounts, locked by every order and every settlement) make such cycles
    possible under load however carefully the lock order is kept. The retry waits `deadlock_backoff` first: run
    at once, it could take the first of the contested rows again before the survivor, woken by the abort, got
    it, and close the same cycle. Inside a caller's transaction the error goes
    to the caller: its own locks may be part of the cycle, and only it can start over.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return fn(*args, **kwargs)
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                sqlstate = getattr(getattr(exc.__cause__, "diag", None), "sqlstate", None)
                if sqlstate != DEADLOCK_DETECTED or attempt == DEADLOCK_ATTEMPTS:
                    raise
                logger.warning("deadlock victim; running it again", extra={"function": fn.__qualname__,
                                                                            "attempt": attempt})
                time.sleep(deadlock_backoff(attempt))
                attempt += 1

    return wrapper
