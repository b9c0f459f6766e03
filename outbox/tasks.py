"""Celery tasks that deliver outbox events: a drain per (queue, partition), and a beat sweep for missed kicks."""
import time

from celery import shared_task

from . import services

DRAIN_TIME_BUDGET = 2.0  # seconds one task drains a partition before it yields to other partitions


@shared_task(name=services.OUTBOX_DRAIN_TASK, ignore_result=True, acks_late=True)
def outbox_drain(queue: str, partition_key: str = "") -> int:
    """Drain until the partition is empty, so events committed while it ran need no kick of their own."""
    services.kick_mark_clear(queue, partition_key)  # before claiming: later commits must kick again
    started, total = time.monotonic(), 0
    while claimed := services.outbox_drain(queue=queue, partition_key=partition_key):
        total += claimed
        if time.monotonic() - started > DRAIN_TIME_BUDGET:
            # More may be waiting: continue in a fresh task so other partitions get a turn.
            outbox_drain.apply_async(args=[queue, partition_key], queue=queue)
            break
    return total


@shared_task(name="outbox.purge", ignore_result=True)
def outbox_purge() -> int:
    """Delete delivered events past their retention (beat, `low` queue)."""
    return services.outbox_purge()


@shared_task(name="outbox.sweep", ignore_result=True)
def outbox_sweep() -> int:
    """Kick a drain for every partition with due events: recovers kicks lost with a broker restart."""
    partitions = services.outbox_due_partitions()
    for queue, partition_key in partitions:
        outbox_drain.apply_async(args=[queue, partition_key], queue=queue)
    return len(partitions)
