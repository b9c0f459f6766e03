"""Outbox delivery: handlers run in the claiming transaction, failures retry then dead-letter, nothing is doubled."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.utils import timezone

from outbox import registry
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import MAX_ATTEMPTS, outbox_drain, outbox_emit, outbox_retry_dead

handled: list[tuple[str, int]] = []
_lock = threading.Lock()
failing_ids: set[int] = set()


@registry.handler("test.recorded", queue="default")
def _record(events):
    # Fail before recording anything, as a handler whose database effects roll back would.
    for event in events:
        if event.payload["n"] in failing_ids:
            raise RuntimeError(f"cannot handle {event.payload['n']}")
    with _lock:
        handled.extend((event.partition_key, event.payload["n"]) for event in events)


@pytest.fixture(autouse=True)
def _reset():
    handled.clear()
    failing_ids.clear()
    yield


@pytest.mark.django_db
def test_event_without_consumer_is_recorded_as_done():
    event = outbox_emit(topic="test.unconsumed", payload={"x": 1})

    assert event.status == OutboxStatus.DONE


@pytest.mark.django_db
def test_drain_runs_the_handler_in_order_and_marks_done():
    for n in range(5):
        outbox_emit(topic="test.recorded", payload={"n": n}, partition_key="AAPL")

    claimed = outbox_drain(queue="default", partition_key="AAPL")

    assert claimed == 5
    assert handled == [("AAPL", n) for n in range(5)]
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {OutboxStatus.DONE}
    assert outbox_drain(queue="default", partition_key="AAPL") == 0


@pytest.mark.django_db
def test_a_failing_event_is_retried_with_backoff_then_dead_lettered_without_blocking_others():
    failing_ids.add(1)
    for n in range(3):
        outbox_emit(topic="test.recorded", payload={"n": n})

    outbox_drain(queue="default")

    assert sorted(handled) == [("", 0), ("", 2)]
    bad = OutboxEvent.objects.get(payload__n=1)
    assert bad.status == OutboxStatus.PENDING and bad.attempts == 1 and "cannot handle 1" in bad.last_error
    assert bad.available_at > timezone.now()

    for _ in range(MAX_ATTEMPTS - 1):
        OutboxEvent.objects.filter(pk=bad.pk).update(available_at=timezone.now())
        outbox_drain(queue="default")
    bad.refresh_from_db()
    assert bad.status == OutboxStatus.DEAD and bad.attempts == MAX_ATTEMPTS

    failing_ids.clear()
    assert outbox_retry_dead(event_ids=[bad.pk]) == 1
    outbox_drain(queue="default")
    bad.refresh_from_db()
    assert bad.status == OutboxStatus.DONE
    assert ("", 1) in handled


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_handle_each_event_exactly_once_and_keep_partition_order():
    with transaction.atomic():
        for n in range(200):
            outbox_emit(topic="test.recorded", payload={"n": n}, partition_key=f"P{n % 2}")
    barrier = threading.Barrier(6)

    def drain(partition: str) -> None:
        barrier.wait()
        try:
            while outbox_drain(queue="default", partition_key=partition, batch_size=7):
                pass
        finally:
            connection.close()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(drain, ["P0", "P1", "P0", "P1", "P0", "P1"]))

    assert sorted(n for _, n in handled) == list(range(200))
    for partition in ("P0", "P1"):
        sequence = [n for p, n in handled if p == partition]
        assert sequence == sorted(sequence)
    assert OutboxEvent.objects.filter(status=OutboxStatus.PENDING).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_an_event_kicked_after_commit(celery_worker_default):
    with transaction.atomic():
        outbox_emit(topic="test.recorded", payload={"n": 42})
        assert handled == []  # nothing is delivered before commit

    deadline = time.monotonic() + 60  # generous: a loaded CI machine, and older kicks queued before ours
    while time.monotonic() < deadline and ("", 42) not in handled:
        time.sleep(0.05)
    assert ("", 42) in handled
    assert OutboxEvent.objects.get(payload__n=42).status == OutboxStatus.DONE


@pytest.mark.django_db(transaction=True)
def test_the_sweep_delivers_an_event_whose_kick_was_lost(celery_worker_default, monkeypatch):
    import outbox.services as services
    from outbox.tasks import outbox_sweep

    monkeypatch.setattr(services, "kick_after_commit", lambda queue, partition_key: None)  # the broker lost it
    with transaction.atomic():
        outbox_emit(topic="test.recorded", payload={"n": 7}, partition_key="LOST")
    time.sleep(0.5)
    assert ("LOST", 7) not in handled

    assert outbox_sweep() >= 1

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ("LOST", 7) not in handled:
        time.sleep(0.05)
    assert ("LOST", 7) in handled
