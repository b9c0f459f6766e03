"""Reads for the back office's operations page: outbox backlog, Celery queues, invariants, halts, recent activity."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Min, Q
from django.utils import timezone

from brokerx.invariants import CHECKS, invariants_check
from brokerx.metrics import celery_queue_depths
from orders.models import Instrument, OrderStatus, TradingStatus
from outbox.models import OutboxEvent, OutboxStatus

# The activity charts cover this many minutes, the current one last.
ACTIVITY_MINUTES = 15
# Details shown per drifted check (the checker lists up to brokerx.invariants.LIMIT).
DETAILS_SHOWN = 3


@dataclass(frozen=True)
class TopicBacklog:
    topic: str
    pending: int
    dead: int
    oldest_pending: datetime | None


@dataclass(frozen=True)
class CheckResult:
    name: str
    violations: int
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violations == 0


@dataclass(frozen=True)
class InvariantsResult:
    checks: list[CheckResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def outbox_backlog() -> list[TopicBacklog]:
    """Pending and dead-lettered events per topic (delivered ones are not counted), most dead letters first."""
    rows = (OutboxEvent.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.DEAD])
            .values("topic")
            .annotate(pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
                      dead=Count("id", filter=Q(status=OutboxStatus.DEAD)),
                      oldest_pending=Min("created_at", filter=Q(status=OutboxStatus.PENDING)))
            .order_by("-dead", "-pending", "topic"))
    return [TopicBacklog(**row) for row in rows]


def queue_depths() -> dict[str, int] | None:
    """Messages waiting per Celery queue, or None when the broker cannot be read (the page still renders)."""
    try:
        return celery_queue_depths()
    except Exception:  # noqa: BLE001  (a broker outage is something this page should show, not fail on)
        return None


def invariants_summary() -> InvariantsResult:
    """Every invariant check's outcome, timed: the number of violations and the first few of them."""
    started = time.perf_counter()
    violations = invariants_check()
    seconds = time.perf_counter() - started
    by_check: dict[str, list[str]] = {name: [] for name in CHECKS}
    for violation in violations:
        by_check[violation.check].append(f"{violation.subject}: {violation.detail}")
    checks = [CheckResult(name, len(found), found[:DETAILS_SHOWN]) for name, found in by_check.items()]
    return InvariantsResult(checks=checks, seconds=seconds)


def halted_instruments() -> list[Instrument]:
    return list(Instrument.objects.filter(trading_status=TradingStatus.HALTED).order_by("symbol"))


def _per_minute(table: str, column: str, *, now: datetime, where: str = "TRUE", **params) -> list[tuple[datetime, int]]:
    """Rows of `table` per minute of `column` over the last ACTIVITY_MINUTES minutes up to `now`, zeros included."""
    sql = f"""
        WITH counted AS (
            SELECT date_trunc('minute', {column}) AS minute, count(*) AS n FROM {table}
             WHERE {column} >= date_trunc('minute', %(now)s::timestamptz) - %(span)s AND ({where})
             GROUP BY 1)
        SELECT m.minute, coalesce(c.n, 0)
          FROM generate_series(date_trunc('minute', %(now)s::timestamptz) - %(span)s,
                               date_trunc('minute', %(now)s::timestamptz), interval '1 minute') AS m(minute)
          LEFT JOIN counted AS c ON c.minute = m.minute
         ORDER BY m.minute"""  # noqa: S608  (table, column and where are this module's constants)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"now": now, "span": timedelta(minutes=ACTIVITY_MINUTES - 1), **params})
        return cursor.fetchall()


def orders_per_minute(*, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """Orders accepted per minute."""
    return _per_minute("orders_order", "created_at", now=now or timezone.now())


def fills_per_minute(*, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """Trades (fills) per minute."""
    return _per_minute("matching_trade", "executed_at", now=now or timezone.now())


def orders_refused_per_minute(*, now: datetime | None = None) -> list[tuple[datetime, int]]:
    """Orders rejected or canceled per minute, by the time they last changed."""
    return _per_minute("orders_order", "updated_at", now=now or timezone.now(), where="status = ANY(%(closed)s)",
                       closed=[OrderStatus.REJECTED.value, OrderStatus.CANCELED.value])
