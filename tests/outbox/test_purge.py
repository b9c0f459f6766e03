"""Retention of the outbox: delivered events go after OUTBOX_RETENTION_DAYS; pending events and dead letters stay."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_purge

pytestmark = pytest.mark.django_db(transaction=True)


def _event(status: str, age_days: float, n: int) -> OutboxEvent:
    at = timezone.now() - timedelta(days=age_days)
    return OutboxEvent.objects.create(topic="test.retention", payload={"n": n}, status=status, created_at=at,
                                      available_at=at, processed_at=at if status == OutboxStatus.DONE else None)


def test_purge_deletes_only_delivered_events_past_retention_in_batches():
    old_done = [_event(OutboxStatus.DONE, settings.OUTBOX_RETENTION_DAYS + 1, n) for n in range(5)]
    keep = [_event(OutboxStatus.DONE, settings.OUTBOX_RETENTION_DAYS - 1, 10),
            _event(OutboxStatus.PENDING, settings.OUTBOX_RETENTION_DAYS + 3, 11),  # never delivered
            _event(OutboxStatus.DEAD, settings.OUTBOX_RETENTION_DAYS + 3, 12)]  # for staff to see and retry

    assert outbox_purge(batch_size=2) == 5  # three batches: 2, 2, 1

    assert not OutboxEvent.objects.filter(pk__in=[e.pk for e in old_done]).exists()
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {e.pk for e in keep}
    assert outbox_purge() == 0


def test_purge_refuses_to_run_inside_a_transaction():
    with transaction.atomic(), pytest.raises(RuntimeError):
        outbox_purge()


def test_purge_is_scheduled_on_the_low_queue_and_finds_old_rows_by_a_brin_index():
    entry = settings.CELERY_BEAT_SCHEDULE["outbox-purge"]
    assert entry["task"] == "outbox.purge" and entry["options"]["queue"] == "low"
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'outbox_created_brin'")
        assert "USING brin (created_at)" in cursor.fetchone()[0]
