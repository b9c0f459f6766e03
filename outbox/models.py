"""The transactional outbox table: one row per domain event, claimed by workers with SKIP LOCKED."""
import uuid

from django.contrib.postgres.indexes import BrinIndex
from django.db import models


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    DEAD = "dead", "Dead letter"


class OutboxEvent(models.Model):
    """A domain event. Delivered when a worker runs its topic's handler and marks it done in one transaction."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    topic = models.CharField(max_length=64)
    queue = models.CharField(max_length=16, default="default")
    # Events with the same partition key are handled in id order, one worker at a time (e.g. a symbol).
    partition_key = models.CharField(max_length=64, blank=True, default="")
    aggregate_type = models.CharField(max_length=32, blank=True, default="")
    aggregate_id = models.CharField(max_length=64, blank=True, default="")
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(db_default=models.functions.Now())
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=models.functions.Now())
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["queue", "partition_key", "id"], name="outbox_pending_idx",
                         condition=models.Q(status="pending")),
            models.Index(fields=["topic", "aggregate_id"], name="outbox_aggregate_idx"),
            # Rows arrive in created_at order: a BRIN index finds the purge's old rows for a few pages of index.
            BrinIndex(fields=["created_at"], name="outbox_created_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk} ({self.status})"
