"""Outbox consumers of the notifications context: in-app notifications and confirmation e-mails."""
from collections import defaultdict

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from outbox.registry import handler
from outbox.services import outbox_emit

from .models import ExecutionReport, Notification, NotificationKind, NotificationPreference

_KIND_BY_EXEC = {"trade": NotificationKind.FILL, "canceled": NotificationKind.CANCEL,
                 "expired": NotificationKind.CANCEL, "rejected": NotificationKind.REJECTION}


def _title(report: ExecutionReport) -> str:
    if report.exec_type == "trade":
        return f"{report.side.capitalize()} {report.last_qty:f} {report.symbol} @ {report.last_px:f}"
    return f"Order {report.client_order_id} {report.exec_type}: {report.side} {report.symbol}"


@handler("execution.reports", queue="default")
def on_execution_reports(events) -> None:
    report_ids = [rid for event in events for rid in event.payload["report_ids"]]
    reports = [r for r in ExecutionReport.objects.filter(pk__in=report_ids).order_by("id")
               if r.exec_type in _KIND_BY_EXEC]
    # Idempotent: a redelivered event finds its notifications already there.
    existing = set(Notification.objects.filter(data__report_id__in=[r.pk for r in reports])
                   .values_list("data__report_id", flat=True))
    Notification.objects.bulk_create([
        Notification(user_id=r.user_id, kind=_KIND_BY_EXEC[r.exec_type], title=_title(r),
                     body=r.reason, data={"report_id": r.pk, "order_id": r.order_id, "seq": r.seq})
        for r in reports if r.pk not in existing
    ])
    fills_by_user: dict[int, list[int]] = defaultdict(list)
    for r in reports:
        if r.exec_type == "trade" and r.pk not in existing:
            fills_by_user[r.user_id].append(r.pk)
    if not fills_by_user:
        return
    wants_email = {p.user_id: p.email_fills for p in NotificationPreference.objects.filter(user_id__in=fills_by_user)}
    for user_id, ids in fills_by_user.items():
        if wants_email.get(user_id, True):
            outbox_emit(topic="email.fill_confirmation", payload={"user_id": user_id, "report_ids": ids},
                        aggregate_type="user", aggregate_id=user_id)


@handler("email.fill_confirmation", queue="low")
def send_fill_confirmations(events) -> None:
    """One e-mail per batch of fills (the fallback confirmation of the private stream)."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk({event.payload["user_id"] for event in events})
    for event in events:
        user = users.get(event.payload["user_id"])
        if user is None:
            continue
        fills = list(ExecutionReport.objects.filter(pk__in=event.payload["report_ids"], user=user).order_by("seq"))
        if not fills:
            continue
        context = {"user": user, "fills": fills}
        subject = f"BrokerX: {len(fills)} fill{'s' if len(fills) > 1 else ''} executed"
        send_mail(subject, render_to_string("notifications/email/fills.txt", context), settings.DEFAULT_FROM_EMAIL,
                  [user.email])
