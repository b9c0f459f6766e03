"""Outbox consumers of the notifications context: in-app notifications and confirmation e-mails.

In-app notifications are made on the `default` queue, one per noteworthy execution report and one per ended
deposit, and are always on. Each creates, with them, an `email.*` event on the `low` queue for the traders
whose preferences ask for it (fills, and cancels and expiries: one e-mail per trader per
NOTIFICATIONS_EMAIL_WINDOW_SECONDS window, see `email_window_end`; deposits: one each, at once). Redelivered events
create nothing twice; an e-mail already sent for an event is not sent again.
"""
import logging
import math
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from outbox.registry import handler
from outbox.services import EventDraft, outbox_emit, outbox_emit_many

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
    due = email_window_end(timezone.now())
    outbox_emit_many([EventDraft(topic=topic, payload={"user_id": user_id, "report_ids": by_user[user_id]},
                                 aggregate_type="user", aggregate_id=user_id, available_at=due)
                      for user_id in sorted(users_wanting_email(user_ids=by_user, preference=preference))])


def email_window_end(now: datetime) -> datetime:
    """When the fill and cancel e-mails of `now` go out: the end of its NOTIFICATIONS_EMAIL_WINDOW_SECONDS window.

    Every e-mail event of one window becomes due at the same moment, so one drain of the `low` queue takes them
    together and each trader gets one message for the window's fills (not one per matching batch, several a
    second while they trade actively). The private stream and in-app notifications stay real time.
    """
    window = settings.NOTIFICATIONS_EMAIL_WINDOW_SECONDS
    if window <= 0:
        return now
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.ceil(epoch / window) * window, tz=UTC)


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

def _sent_key(event) -> str:
    return f"notifications:email-sent:{event.event_id}"


def _already_sent(events) -> set:
    """Event ids whose e-mail went out (marks in Redis, one round trip for the batch)."""
    keys = {_sent_key(event): event.event_id for event in events}
    try:
        return {keys[key] for key in cache.get_many(list(keys))}
    except Exception:  # without Redis, a duplicate is better than a lost confirmation
        logger.warning("could not read the e-mail sent marks", exc_info=True)
        return set()


def _mark_sent(events) -> None:
    try:
        cache.set_many({_sent_key(event): 1 for event in events}, timeout=EMAIL_SENT_TTL)
    except Exception:
        logger.warning("could not record the e-mail sent marks", exc_info=True)


def _send(*, user, subject: str, template: str, context: dict, events) -> None:
    """Send one e-mail on behalf of `events` and remember that they are done.

    The marks live in Redis, not in the drain's transaction: when a later e-mail of the same batch fails, the
    batch is rolled back and retried event by event, and the e-mails already sent must not go out twice.
    """
    send_mail(subject, render_to_string(template, {"user": user, **context}), settings.DEFAULT_FROM_EMAIL,
              [user.email])
    _mark_sent(events)


def _users(events) -> dict:
    return get_user_model().objects.in_bulk({event.payload["user_id"] for event in events})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _send_report_emails(events, *, template: str, context_name: str, subject, related: tuple = ()) -> None:
    """One e-mail per trader for all of the batch's events of that trader, listing their reports in order.

    Each event is one matching batch's reports of one trader; when the `low` queue lags (a busy market), one
    drain holds many events of the same trader, and the trader gets one message for them rather than a burst.
    Events whose e-mail already went out (a redelivery) are skipped.
    """
    users = _users(events)
    sent = _already_sent(events)
    pending: dict[int, list] = defaultdict(list)
    for event in events:
        if event.event_id not in sent and event.payload["user_id"] in users:
            pending[event.payload["user_id"]].append(event)
    wanted = {(user_id, report_id) for user_id, user_events in pending.items()
              for event in user_events for report_id in event.payload["report_ids"]}
    reports: dict[int, list[ExecutionReport]] = defaultdict(list)
    query = ExecutionReport.objects.filter(pk__in=[report_id for _, report_id in wanted]).order_by("user_id", "seq")
    for report in query.select_related(*related):
        if (report.user_id, report.pk) in wanted:  # an event lists its own trader's reports only
            reports[report.user_id].append(report)
    for user_id, user_events in pending.items():
        if reports[user_id]:
            _send(user=users[user_id], subject=subject(reports[user_id]), template=template,
                  context={context_name: reports[user_id]}, events=user_events)


@handler("email.fill_confirmation", queue="low")
def send_fill_confirmations(events) -> None:
    """Fill confirmations (the fallback of the private stream): one e-mail per trader per drained batch."""
    _send_report_emails(events, template="notifications/email/fills.txt", context_name="fills",
                        subject=lambda fills: f"BrokerX: {_plural(len(fills), 'fill')} executed")


def _cancels_subject(cancels: list[ExecutionReport]) -> str:
    what = "expired" if all(r.exec_type == "expired" for r in cancels) else "canceled"
    return f"BrokerX: {_plural(len(cancels), 'order')} {what}"


@handler("email.cancel_confirmation", queue="low")
def send_cancel_confirmations(events) -> None:
    """Canceled or expired orders (for traders with `email_cancels` on): one e-mail per trader per drained batch."""
    _send_report_emails(events, template="notifications/email/cancels.txt", context_name="cancels",
                        subject=_cancels_subject, related=("order",))


@handler("email.deposit", queue="low")
def send_deposit_confirmations(events) -> None:
    """One e-mail per settled or declined deposit (for traders with `email_deposits` on)."""
    users, sent = _users(events), _already_sent(events)
    for event in events:
        user = users.get(event.payload["user_id"])
        if user is None or event.event_id in sent:
            continue
        deposit = event.payload
        _send(user=user, subject=f"BrokerX: {_deposit_title(deposit)}", template="notifications/email/deposit.txt",
              context={"deposit": deposit}, events=[event])
