"""Writing events to the outbox (inside the caller's transaction) and draining them (inside the worker's)."""
import logging
import os
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django_redis import get_redis_connection
from prometheus_client import Counter
from psycopg.types.json import Jsonb

from brokerx.db import execute_bound, insert_rows
from brokerx.enqueue import task_enqueue

from . import registry
from .models import OutboxEvent, OutboxStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
DRAIN_BATCH = int(os.environ.get("BROKERX_OUTBOX_BATCH", "500"))  # events per drain transaction
# The drain task (outbox.tasks), kicked by name: the tasks module imports these services.
OUTBOX_DRAIN_TASK = "outbox.drain"
events_processed = Counter("outbox_events_processed_total", "Outbox events handled", ["topic", "outcome"])


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** attempts, 300))


KICK_MARK_TTL = 5  # seconds


def kick_mark_key(queue: str, partition_key: str) -> str:
    return cache.make_key(f"outbox-kick:{queue}:{partition_key}")


def kick_mark_clear(queue: str, partition_key: str) -> None:
    try:
        get_redis_connection("default").delete(kick_mark_key(queue, partition_key))
    except Exception:  # without Redis the marks expire on their own
        logger.warning("could not clear the kick mark", exc_info=True)


class _Kicker:
    """Sends drain kicks from a background thread, merging the kicks of one (queue, partition) made meanwhile.

    A request only records the pair (no I/O on its path). Every kick the thread sends leaves after the
    commits that asked for it, so merging never leaves an event without a drain started after its commit.
    """

    def __init__(self) -> None:
        self._pending: set[tuple[str, str]] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def request(self, queue: str, partition_key: str) -> None:
        with self._wake:
            self._pending.add((queue, partition_key))
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # (Re)started lazily: a forked worker process does not inherit the parent's thread.
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="outbox-kicker", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                batch, self._pending = self._pending, set()
            for queue, partition_key in batch:
                try:
                    # At most one kick waiting per partition: the drain clears the mark before it claims, so
                    # an event committed after that clearing gets a kick of its own. The mark expires, so a
                    # kick lost with its message stops holding back the next ones (the sweep covers the gap).
                    if get_redis_connection("default").set(kick_mark_key(queue, partition_key), 1, nx=True,
                                                           ex=KICK_MARK_TTL):
                        task_enqueue(OUTBOX_DRAIN_TASK, args=(queue, partition_key), queue=queue)
                except Exception:  # the beat sweep delivers it anyway
                    logger.warning("outbox kick failed; the sweep will deliver", exc_info=True)


_kicker = _Kicker()


def kick_now(queue: str, partition_key: str) -> None:
    """Ask a worker to drain (queue, partition) for events already committed (no I/O on the caller's path)."""
    _kicker.request(queue, partition_key)


def kick_after_commit(queue: str, partition_key: str) -> None:
    """Ask a worker to drain (queue, partition) once this transaction commits; once per transaction."""
    marker = ("outbox-kick", queue, partition_key)
    if any(getattr(func, "_bx_marker", None) == marker for _sids, func, _robust in connection.run_on_commit):
        return

    def kick() -> None:
        kick_now(queue, partition_key)

    kick._bx_marker = marker
    transaction.on_commit(kick)


def outbox_emit(*, topic: str, payload: dict, aggregate_type: str = "", aggregate_id: str | int = "",
                partition_key: str = "", queue: str | None = None) -> OutboxEvent:
    """Record a domain event in the current transaction. Topics without a consumer are recorded as done."""
    has_handler = registry.handler_for(topic) is not None
    queue = queue or registry.queue_for(topic)
    event = OutboxEvent.objects.create(
        topic=topic, queue=queue, partition_key=partition_key, aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id), payload=payload,
        status=OutboxStatus.PENDING if has_handler else OutboxStatus.DONE,
        processed_at=None if has_handler else timezone.now(),
    )
    if has_handler:
        kick_after_commit(queue, partition_key)
    return event


EVENT_COLUMNS = {"event_id": "uuid", "topic": "text", "queue": "text", "partition_key": "text",
                 "aggregate_type": "text", "aggregate_id": "text", "payload": "jsonb", "status": "text",
                 "attempts": "integer", "available_at": "timestamptz", "last_error": "text",
                 "created_at": "timestamptz", "processed_at": "timestamptz"}


@dataclass(slots=True)
class EventDraft:
    """An event for `outbox_emit_many` (a plain object: batch writers build hundreds per transaction)."""

    topic: str
    payload: dict
    aggregate_type: str = ""
    aggregate_id: str | int = ""
    partition_key: str = ""
    queue: str = ""
    available_at: datetime | None = None  # not before (None: now); a later one is left to the beat sweep


def outbox_emit_many(events: list[EventDraft]) -> None:
    """Bulk variant for batch writers (the matching worker): one INSERT for many events (ids not read back)."""
    now = timezone.now()
    kicks = set()
    rows = []
    for event in events:
        queue = event.queue or registry.queue_for(event.topic)
        available_at = event.available_at or now
        if registry.handler_for(event.topic) is None:
            status, processed_at = OutboxStatus.DONE, now
        else:
            status, processed_at = OutboxStatus.PENDING, None
            if available_at <= now:
                kicks.add((queue, event.partition_key))
        rows.append((uuid.uuid4(), event.topic, queue, event.partition_key, event.aggregate_type,
                     str(event.aggregate_id), Jsonb(event.payload), status, 0, available_at, "", now, processed_at))
    insert_rows("outbox_outboxevent", EVENT_COLUMNS, rows)
    for queue, partition_key in kicks:
        kick_after_commit(queue, partition_key)


def partition_lock_key(queue: str, partition_key: str) -> int:
    return zlib.crc32(f"outbox:{queue}:{partition_key}".encode()) - 2**31


def outbox_drain(*, queue: str, partition_key: str = "", batch_size: int = DRAIN_BATCH) -> int:
    """Handle up to `batch_size` due events of a queue (and partition), in id order; returns how many were claimed.

    A partition is drained by one worker at a time (transaction-level advisory lock taken before the claim, so
    two workers never split one partition's events between them out of order). Handler effects and the `done`
    mark commit together: a worker killed mid-batch leaves the events pending for the next drain.
    """
    with transaction.atomic():
        if partition_key:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [partition_lock_key(queue, partition_key)])
        claimed = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxStatus.PENDING, queue=queue, partition_key=partition_key,
                    available_at__lte=timezone.now())
            .order_by("id")[:batch_size]
        )
        if not claimed:
            return 0
        done: list[OutboxEvent] = []
        # Consecutive events with the same consumer form one batch (a consumer may own several topics,
        # e.g. matching takes order.created/replaced/canceled of a symbol together, in order).
        for handle, group in groupby(claimed, key=lambda e: registry.handler_for(e.topic)):
            batch = list(group)
            topic = batch[0].topic
            if handle is None:
                done.extend(batch)
                continue
            try:
                with transaction.atomic():
                    handle(batch)
                done.extend(batch)
                events_processed.labels(topic, "done").inc(len(batch))
            except Exception:
                logger.warning("outbox batch failed; retrying events one by one", extra={"topic": topic},
                               exc_info=True)
                done.extend(_handle_one_by_one(handle, batch))
        if done:
            # One bound array instead of an IN list the ORM prepares id by id (a batch holds hundreds).
            execute_bound("UPDATE outbox_outboxevent SET status = %s, processed_at = %s WHERE id = ANY(%s)",
                          [OutboxStatus.DONE.value, timezone.now(), [e.pk for e in done]])
    return len(claimed)


def _handle_one_by_one(handle, batch: list[OutboxEvent]) -> list[OutboxEvent]:
    succeeded = []
    for event in batch:
        try:
            with transaction.atomic():
                handle([event])
            succeeded.append(event)
            events_processed.labels(event.topic, "done").inc()
        except Exception as exc:
            event.attempts += 1
            event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if event.attempts >= MAX_ATTEMPTS:
                event.status = OutboxStatus.DEAD
                events_processed.labels(event.topic, "dead").inc()
                logger.error("outbox event dead-lettered", extra={"event_id": str(event.event_id)})
            else:
                event.available_at = timezone.now() + _backoff(event.attempts)
                events_processed.labels(event.topic, "retry").inc()
            event.save(update_fields=["attempts", "last_error", "status", "available_at"])
    return succeeded


PURGE_BATCH = 5000


def outbox_purge(*, older_than: timedelta | None = None, batch_size: int = PURGE_BATCH,
                 time_budget: float = 60.0) -> int:
    """Delete delivered events older than OUTBOX_RETENTION_DAYS; returns how many.

    The outbox is a delivery queue, not the record (orders, trades, the ledger and execution reports are), and
    consumers dedupe on their own keys, so a delivered event has no use once no retry can refer to it. Dead
    letters stay until staff retry or inspect them. Rows go `batch_size` at a time, each batch its own short
    transaction, for at most `time_budget` seconds per call (the next beat run continues).
    """
    if connection.in_atomic_block:
        raise RuntimeError("outbox_purge commits batch by batch; call it outside a transaction")
    cutoff = timezone.now() - (older_than or timedelta(days=settings.OUTBOX_RETENTION_DAYS))
    total, started = 0, time.monotonic()
    while time.monotonic() - started < time_budget:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                DELETE FROM outbox_outboxevent WHERE id IN (
                    SELECT id FROM outbox_outboxevent
                     WHERE created_at < %s AND status = %s AND processed_at < %s
                     LIMIT %s)
                """, [cutoff, OutboxStatus.DONE.value, cutoff, batch_size])
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch_size:
            break
    if total:
        logger.info("outbox purged", extra={"deleted": total, "cutoff": cutoff.isoformat()})
    return total


def outbox_due_partitions() -> list[tuple[str, str]]:
    """(queue, partition) pairs with due pending events: what the beat sweep kicks."""
    return list(
        OutboxEvent.objects.filter(status=OutboxStatus.PENDING, available_at__lte=timezone.now())
        .values_list("queue", "partition_key").distinct()
    )


def outbox_retry_dead(*, event_ids: list[int]) -> int:
    """Back-office: put dead-lettered events back in the queue."""
    return OutboxEvent.objects.filter(pk__in=event_ids, status=OutboxStatus.DEAD).update(
        status=OutboxStatus.PENDING, attempts=0, available_at=timezone.now(), last_error="")
