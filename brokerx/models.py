"""Cross-context records of the platform: idempotency keys of API writes."""
from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` for one endpoint: claimed while in flight, then the stored response."""

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # "METHOD path" of the endpoint, so one key may be used once per endpoint.
    scope = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_FLIGHT)
    # Changes when a stale claim is taken over, so a slow first owner cannot complete it any more.
    claim_token = models.UUIDField()
    claimed_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key", "scope"], name="brokerx_idempotencykey_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.scope} {self.key} {self.status}"
