"""Execution reports (the durable record behind the private order stream) and in-app notifications."""
from django.conf import settings
from django.db import models


class ExecType(models.TextChoices):
    NEW = "new", "New"
    TRADE = "trade", "Trade"
    CANCELED = "canceled", "Canceled"
    REPLACED = "replaced", "Replaced"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    TRIGGERED = "triggered", "Stop triggered"


class StreamCounter(models.Model):
    """The last sequence number given on a user's private stream (row-locked while a report is numbered)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True)
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.last_seq}"


class ExecutionReport(models.Model):
    """A FIX-like execution report: what happened to an order, numbered 1, 2, 3... per user without gaps."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="execution_reports")
    seq = models.BigIntegerField()
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="execution_reports")
    client_order_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=16)
    side = models.CharField(max_length=4)
    exec_type = models.CharField(max_length=10, choices=ExecType.choices)
    order_status = models.CharField(max_length=16)
    last_qty = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    last_px = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    cum_qty = models.DecimalField(max_digits=18, decimal_places=4)
    leaves_qty = models.DecimalField(max_digits=18, decimal_places=4)
    avg_px = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    fee = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    liquidity = models.CharField(max_length=5, blank=True, default="")  # maker / taker on trades
    trade_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="execution_report_seq_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}#{self.seq} {self.exec_type} order {self.order_id}"


class NotificationKind(models.TextChoices):
    FILL = "fill", "Fill"
    CANCEL = "cancel", "Cancel"
    REJECTION = "rejection", "Rejection"
    DEPOSIT = "deposit", "Deposit"


class Notification(models.Model):
    """An in-app notification shown to the trader (unread until marked read)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=NotificationKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    # What the notification is about ("report:<id>", "deposit:<id>"): at most one notification per source, so a
    # redelivered event adds none (looked up through the unique index, not by scanning `data`).
    source = models.CharField(max_length=40, null=True, blank=True, unique=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="notification_user_recent_idx")]

    def __str__(self) -> str:
        return self.title


class NotificationPreference(models.Model):
    """Which e-mails a trader wants; in-app notifications are always on."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="notification_preference")
    email_fills = models.BooleanField(default=True)
    email_cancels = models.BooleanField(default=False)
    email_deposits = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"e-mail preferences of {self.user_id}"
