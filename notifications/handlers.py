"""Outbox consumers of the notifications context: in-app notifications and confirmation e-mails.

In-app notifications are made on the `default` queue, one per noteworthy execution report and one per ended
deposit, and are always on. Each creates, with them, an `email.*` event on the `low` queue for the traders
whose preferences ask for it (fills: one e-mail per batch; cancels and expiries: one per batch; deposits: one
each). Redelivered events create nothing twice; an e-mail already sent for an event is not sent again.
"""
import logging
from collections import defaultdict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string

from outbox.registry import handler
from outbox.services import outbox_emit

from .formatting import format_price, format_qty
from .models import ExecutionReport, Notification, NotificationKind
from .selectors import users_wanting_email

logger = logging.getLogger(__name__)

_KIND_BY_EXEC = {"trade": NotificationKind.FILL, "canceled": NotificationKind.CANCEL,
                 "expired": NotificationKind.CANCEL, "rejected": NotificationKind.REJECTION}
_CANCEL_EXEC_TYPES = ("canceled", "expired")
# How long "this event's e-mail went out" is remembered: beyond every retry of the outbox (8 attempts, backoff
# capped at 5 min) and a staff retry of a dead letter within the week.
EMAIL_SENT_TTL = 7 * 24 * 3600


def _title(report: ExecutionReport) -> str:
    if report.exec_type == "trade":
        return (f"{report.side.capitalize()} {format_qty(report.last_qty)} {report.symbol} "
                f"@ {format_price(report.last_px)}")
    return f"Order {report.client_order_id} {report.exec_type}: {report.side} {report.symbol}"


def _deposit_title(deposit: dict) -> str:
    verb = "settled" if deposit["status"] == "settled" else "declined"
    return f"Deposit of {format_price(deposit['amount'])} {deposit['currency']} {verb}"


def _noted(sources: set[str]) -> set[str]:
    """The sources among these that already have their notification."""
    return set(Notification.objects.filter(source__in=sources).values_list("source", flat=True))


@handler("execution.reports", queue="default")
def on_execution_reports(events) -> None:
    report_ids = [rid for event in events for rid in event.payload["report_ids"]]
    reports = [r for r in ExecutionReport.objects.filter(pk__in=report_ids).order_by("id")
               if r.exec_type in _KIND_BY_EXEC]
    # Idempotent: a redelivered event finds its notifications already there (and mails nothing again).
    existing = _noted({f"report:{r.pk}" for r in reports})
    new = [r for r in reports if f"report:{r.pk}" not in existing]
    Notification.objects.bulk_create([
        Notification(user_id=r.user_id, kind=_KIND_BY_EXEC[r.exec_type], title=_title(r), source=f"report:{r.pk}",
                     body=r.reason, data={"report_id": r.pk, "order_id": r.order_id, "seq": r.seq})
        for r in new
    ])
    _emit_report_emails("email.fill_confirmation", "email_fills", [r for r in new if r.exec_type == "trade"])
    _emit_report_emails("email.cancel_confirmation", "email_cancels",
                        [r for r in new if r.exec_type in _CANCEL_EXEC_TYPES])


def _emit_report_emails(topic: str, preference: str, reports: list[ExecutionReport]) -> None:
    """One e-mail event per user (a batch of reports), for the users whose `preference` is on."""
    by_user: dict[int, list[int]] = defaultdict(list)
    for r in reports:
        by_user[r.user_id].append(r.pk)
    for user_id in sorted(users_wanting_email(user_ids=by_user, preference=preference)):
        outbox_emit(topic=topic, payload={"user_id": user_id, "report_ids": by_user[user_id]},
                    aggregate_type="user", aggregate_id=user_id)


@handler("deposit.settled", queue="default")
@handler("deposit.failed", queue="default")
def on_deposit_ended(events) -> None:
    """A `deposit` notification per settled or declined deposit (and its e-mail, if the trader wants them)."""
    existing = _noted({f"deposit:{e.payload['deposit_id']}" for e in events})
    ended: list[dict] = []  # what the notification and the e-mail say, per deposit not yet noted
    for event in events:
        source = f"deposit:{event.payload['deposit_id']}"
        if source in existing:
            continue
        existing.add(source)
        ended.append({**{k: event.payload[k] for k in ("user_id", "deposit_id", "amount", "currency")},
                      "status": "settled" if event.topic == "deposit.settled" else "failed",
                      "reason": event.payload.get("reason", "")})
    Notification.objects.bulk_create([
        Notification(user_id=d["user_id"], kind=NotificationKind.DEPOSIT, title=_deposit_title(d),
                     source=f"deposit:{d['deposit_id']}",
                     body="The cash is available to trade." if d["status"] == "settled" else d["reason"],
                     data={k: d[k] for k in ("deposit_id", "status", "amount", "currency")})
        for d in ended
    ])
    wanting = users_wanting_email(user_ids={d["user_id"] for d in ended}, preference="email_deposits")
    for d in ended:
        if d["user_id"] in wanting:
            outbox_emit(topic="email.deposit", payload=d, aggregate_type="user", aggregate_id=d["user_id"])


# --- e-mail (the `low` queue) --------------------------------------------------------------------------------------

def _send_once(event, *, user, subject: str, template: str, context: dict) -> None:
    """Send the e-mail of one outbox event, unless it already went out.

    The mark lives in Redis, not in the drain's transaction: when a later e-mail of the same batch fails, the
    batch is rolled back and retried event by event, and the e-mails already sent must not go out twice.
    """
    key = f"notifications:email-sent:{event.event_id}"
    try:
        if cache.get(key):
            return
    except Exception:  # without Redis, a duplicate is better than a lost confirmation
        logger.warning("could not read the e-mail sent mark", exc_info=True)
    send_mail(subject, render_to_string(template, {"user": user, **context}), settings.DEFAULT_FROM_EMAIL,
              [user.email])
    try:
        cache.set(key, 1, timeout=EMAIL_SENT_TTL)
    except Exception:
        logger.warning("could not record the e-mail sent mark", exc_info=True)


def _users(events) -> dict:
    return get_user_model().objects.in_bulk({event.payload["user_id"] for event in events})


def _reports_of(event, user) -> list[ExecutionReport]:
    return list(ExecutionReport.objects.filter(pk__in=event.payload["report_ids"], user=user)
                .select_related("order").order_by("seq"))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@handler("email.fill_confirmation", queue="low")
def send_fill_confirmations(events) -> None:
    """One e-mail per batch of fills (the fallback confirmation of the private stream)."""
    users = _users(events)
    for event in events:
        user = users.get(event.payload["user_id"])
        fills = _reports_of(event, user) if user else []
        if fills:
            _send_once(event, user=user, subject=f"BrokerX: {_plural(len(fills), 'fill')} executed",
                       template="notifications/email/fills.txt", context={"fills": fills})


@handler("email.cancel_confirmation", queue="low")
def send_cancel_confirmations(events) -> None:
    """One e-mail per batch of canceled or expired orders (for traders with `email_cancels` on)."""
    users = _users(events)
    for event in events:
        user = users.get(event.payload["user_id"])
        cancels = _reports_of(event, user) if user else []
        if cancels:
            what = "expired" if all(r.exec_type == "expired" for r in cancels) else "canceled"
            _send_once(event, user=user, subject=f"BrokerX: {_plural(len(cancels), 'order')} {what}",
                       template="notifications/email/cancels.txt", context={"cancels": cancels})


@handler("email.deposit", queue="low")
def send_deposit_confirmations(events) -> None:
    """One e-mail per settled or declined deposit (for traders with `email_deposits` on)."""
    users = _users(events)
    for event in events:
        user = users.get(event.payload["user_id"])
        if user is None:
            continue
        deposit = event.payload
        _send_once(event, user=user, subject=f"BrokerX: {_deposit_title(deposit)}",
                   template="notifications/email/deposit.txt", context={"deposit": deposit})
