"""Recording execution reports (numbered per user, in the caller's transaction) and pushing them after commit."""
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from brokerx.db import insert_rows
from brokerx.push import group_publish
from outbox.services import outbox_emit

from .models import ExecutionReport, Notification, NotificationPreference
from .selectors import EMAIL_PREFERENCES, preference_for_user

logger = logging.getLogger(__name__)


REPORT_COLUMNS = {
    "user_id": "bigint", "seq": "bigint", "order_id": "bigint", "client_order_id": "text", "symbol": "text",
    "side": "text", "exec_type": "text", "order_status": "text", "last_qty": "numeric", "last_px": "numeric",
    "cum_qty": "numeric", "leaves_qty": "numeric", "avg_px": "numeric", "fee": "numeric", "liquidity": "text",
    "trade_id": "bigint", "reason": "text", "created_at": "timestamptz",
}


@dataclass(slots=True)
class ReportDraft:
    """An execution report before it is numbered and stored (a plain object: a batch builds thousands)."""

    user_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    exec_type: str
    order_status: str
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal | None
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    fee: Decimal | None = None
    liquidity: str = ""
    trade_id: int | None = None
    reason: str = ""
    seq: int | None = None
    created_at: datetime | None = None
    pk: int | None = None


def user_stream_group(user_id: int) -> str:
    return f"orders.user.{user_id}"


def _next_seqs(counts: dict[int, int]) -> dict[int, int]:
    """Reserve `count` sequence numbers per user in one statement; returns the first of each user's block.

    Users are numbered in id order so two transactions never wait on each other's counters in a cycle.
    """
    user_ids = sorted(counts)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO notifications_streamcounter AS c (user_id, last_seq)
            SELECT u, n FROM unnest(%s::bigint[], %s::bigint[]) AS t(u, n) ORDER BY u
            ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + EXCLUDED.last_seq
            RETURNING user_id, last_seq
            """,
            [user_ids, [counts[u] for u in user_ids]],
        )
        return {user_id: last - counts[user_id] + 1 for user_id, last in cursor.fetchall()}


def report_payload(report: "ExecutionReport | ReportDraft", order_json: dict | None = None) -> dict:
    def s(value: Decimal | None):
        return None if value is None else str(value)

    return {
        "seq": report.seq, "order_id": report.order_id, "client_order_id": report.client_order_id,
        "symbol": report.symbol, "side": report.side, "exec_type": report.exec_type,
        "order_status": report.order_status, "last_qty": s(report.last_qty), "last_px": s(report.last_px),
        "cum_qty": s(report.cum_qty), "leaves_qty": s(report.leaves_qty), "avg_px": s(report.avg_px),
        "fee": s(report.fee), "liquidity": report.liquidity, "trade_id": report.trade_id, "reason": report.reason,
        "timestamp": (report.created_at or timezone.now()).isoformat(), "order": order_json,
    }


def execution_reports_record(reports: list[ReportDraft], *, orders: dict | None = None) -> list[ReportDraft]:
    """Number and store reports and push them to their owners after commit; sets each draft's seq and pk.

    `orders` maps order id -> the native order JSON to embed in the pushed message (optional).
    """
    if not reports:
        return []
    counts: dict[int, int] = defaultdict(int)
    for report in reports:
        counts[report.user_id] += 1
    first = _next_seqs(counts)
    now = timezone.now()
    for report in reports:
        report.seq = first[report.user_id]
        first[report.user_id] += 1
        report.created_at = now
    ids = insert_rows("notifications_executionreport", REPORT_COLUMNS,
                      [tuple(getattr(r, name) for name in REPORT_COLUMNS) for r in reports], returning="id")
    for report, report_id in zip(reports, ids, strict=True):
        report.pk = report_id
    messages = [(report.user_id, report_payload(report, (orders or {}).get(report.order_id))) for report in reports]
    transaction.on_commit(lambda: push_reports(messages))
    if any(r.exec_type in ("trade", "canceled", "rejected", "expired") for r in reports):
        outbox_emit(topic="execution.reports", payload={"report_ids": [r.pk for r in reports]},
                    aggregate_type="execution_report", aggregate_id=reports[0].pk)
    return reports


def push_reports(messages: list[tuple[int, dict]]) -> None:
    """At most once, in order, one round trip: the database is the record; a client that sees a gap re-syncs
    over REST. Runs after the commit, in the committing thread."""
    try:
        group_publish([(user_stream_group(user_id), {"type": "execution.report", "report": payload})
                       for user_id, payload in messages])
    except Exception:
        logger.warning("execution report push failed; clients recover over REST", exc_info=True)


def notification_create(*, user_id: int, kind: str, title: str, body: str = "",
                        data: dict | None = None) -> Notification:
    return Notification.objects.create(user_id=user_id, kind=kind, title=title, body=body, data=data or {})


def notifications_mark_read(*, user, ids: list[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())


def preference_update(*, user_id: int, changes: dict[str, bool]) -> NotificationPreference:
    """Store validated e-mail preferences (the row is created on the first change; no change writes nothing)."""
    if not changes:
        return preference_for_user(user_id)
    unknown = set(changes) - set(EMAIL_PREFERENCES)
    if unknown:
        raise ValueError(f"unknown e-mail preferences {sorted(unknown)}")
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user_id=user_id)
        for field, value in changes.items():
            setattr(preference, field, value)
        preference.save(update_fields=list(changes))
    return preference
