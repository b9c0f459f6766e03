"""Deposit notifications, the e-mails behind the `email_cancels` and `email_deposits` preferences, and how
quantities and prices read in notification titles and e-mails.

Deposits are settled by the real settle task (the simulated payment gateway answers at once); orders are matched
by the real matching drain; outbox events are delivered by `outbox_drain` on their queue, as the workers do.
"""
import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from matching.services import book_forget
from notifications import handlers
from notifications.formatting import format_price, format_qty
from notifications.models import Notification, NotificationPreference
from orders.models import Order
from orders.services import OrderRequest, order_cancel, order_place, orders_expire_day
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_drain
from portfolios.models import Deposit
from portfolios.services import deposit_create, deposit_settle
from portfolios.tasks import deposit_settle_task
from tests.trading_fixtures import assert_books_balanced, balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """run(func, ...): call it and run its after-commit work as a real commit would (kicks, pushes)."""

    def call(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    book_forget()
    yield call
    book_forget()


def deliver(run, queue: str) -> int:
    return run(outbox_drain, queue=queue)


def redeliver(run, topic: str, queue: str) -> int:
    """Put the handled events of `topic` back in the queue (a worker died after handling, before its commit was
    seen) and deliver them again."""
    OutboxEvent.objects.filter(topic=topic).update(status=OutboxStatus.PENDING, processed_at=None,
                                                   available_at=timezone.now())
    return deliver(run, queue)


def prefer(user, **changes) -> None:
    client = APIClient()
    client.force_authenticate(user)
    assert client.patch("/api/v1/notifications/preferences", changes, format="json").status_code == 200


def deposit(user, amount: str, simulate: str | None = None) -> Deposit:
    """A deposit through the service, then settled (or declined) by the settle task asking the gateway."""
    created = deposit_create(user=user, amount=Decimal(amount), simulate=simulate)
    deposit_settle_task.apply(args=(created.pk,))
    return Deposit.objects.get(pk=created.pk)


def place(run, user, side: str, qty: str, price: str, coid: str, tif: str = "gtc") -> Order:
    order, _ = run(order_place, user=user, request=OrderRequest(
        symbol="ACME", side=side, type="limit", time_in_force=tif, qty=Decimal(qty), limit_price=Decimal(price),
        client_order_id=coid))
    return order


def match(run) -> None:
    run(outbox_drain, queue="critical", partition_key="ACME")


def cancel(run, user, order: Order) -> None:
    run(order_cancel, user=user, order_id=order.pk, version=Order.objects.get(pk=order.pk).version)


def notes(user, kind: str) -> list[tuple]:
    return list(Notification.objects.filter(user=user, kind=kind).order_by("id").values_list("title", "body", "data"))


# --- formatting ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "qty", "price"), [
    (Decimal("4.0000"), "4", "4.00"),
    (Decimal("100.0000"), "100", "100.00"),
    (Decimal("100.5000"), "100.5", "100.50"),
    (Decimal("100.1250"), "100.125", "100.125"),
    (Decimal("0.0001"), "0.0001", "0.0001"),
    (Decimal("0.0000"), "0", "0.00"),
    ("250.0000", "250", "250.00"),  # amounts travel as strings in event payloads
    (None, "", ""),
])
def test_quantities_lose_trailing_zeros_and_prices_keep_two_decimals(value, qty, price):
    assert (format_qty(value), format_price(value)) == (qty, price)


def test_fill_titles_and_the_fill_email_read_the_same_numbers(run, instrument, make_trader):
    seller, buyer = make_trader(shares={"ACME": "20"}), make_trader(cash="20000")
    place(run, seller, "sell", "4", "100.00", "s-1")
    place(run, seller, "sell", "2", "100.50", "s-2")
    match(run)
    place(run, buyer, "buy", "6", "101.00", "b-1")
    match(run)
    deliver(run, "default")

    assert [title for title, _body, _data in notes(buyer, "fill")] == ["Buy 4 ACME @ 100.00", "Buy 2 ACME @ 100.50"]
    assert [title for title, _body, _data in notes(seller, "fill")] == ["Sell 4 ACME @ 100.00",
                                                                        "Sell 2 ACME @ 100.50"]
    deliver(run, "low")
    body = next(m.body for m in mail.outbox if m.to == [buyer.email])
    assert "BUY 4 ACME @ 100.00" in body and "BUY 2 ACME @ 100.50" in body
    assert ".0000" not in body and "&amp;" not in body
    assert_books_balanced()


def test_fills_of_several_batches_waiting_on_the_low_queue_make_one_email_per_trader(run, instrument, make_trader):
    seller, buyer = make_trader(shares={"ACME": "20"}), make_trader(cash="20000")
    for n, price in enumerate(("100.00", "100.50", "101.00")):  # three matching batches, three e-mail events each
        place(run, seller, "sell", "2", price, f"s-{n}")
        match(run)
        place(run, buyer, "buy", "2", price, f"b-{n}")
        match(run)
        deliver(run, "default")
    assert OutboxEvent.objects.filter(topic="email.fill_confirmation").count() == 6

    deliver(run, "low")  # a lagging queue: one drain takes all six

    assert sorted((m.to[0], m.subject) for m in mail.outbox) == sorted([
        (buyer.email, "BrokerX: 3 fills executed"), (seller.email, "BrokerX: 3 fills executed")])
    body = next(m.body for m in mail.outbox if m.to == [buyer.email])
    assert body.index("@ 100.00") < body.index("@ 100.50") < body.index("@ 101.00")  # in stream order
    assert "SELL" not in body
    redeliver(run, "email.fill_confirmation", "low")
    assert len(mail.outbox) == 2
    assert_books_balanced()


@pytest.mark.parametrize(("now", "window", "due"), [
    ("2026-11-22T10:00:07+00:00", 30, "2026-11-22T10:00:30+00:00"),
    ("2026-11-22T10:00:30+00:00", 30, "2026-11-22T10:00:30+00:00"),
    ("2026-11-22T10:00:30.001+00:00", 30, "2026-11-22T10:01:00+00:00"),
    ("2026-11-22T10:59:59+00:00", 3600, "2026-11-22T11:00:00+00:00"),
    ("2026-11-22T10:00:07+00:00", 0, "2026-11-22T10:00:07+00:00"),
])
def test_an_email_window_ends_on_its_boundary(settings, now, window, due):
    settings.NOTIFICATIONS_EMAIL_WINDOW_SECONDS = window
    assert handlers.email_window_end(dt.datetime.fromisoformat(now)) == dt.datetime.fromisoformat(due)


def test_fill_emails_wait_for_the_end_of_their_window_and_then_go_out_as_one(run, settings, instrument, make_trader):
    settings.NOTIFICATIONS_EMAIL_WINDOW_SECONDS = 3600  # no test run straddles its end
    seller, buyer = make_trader(shares={"ACME": "20"}), make_trader(cash="20000")
    for n, price in enumerate(("100.00", "100.50")):  # two matching batches, two e-mail events per trader
        place(run, seller, "sell", "1", price, f"s-{n}")
        place(run, buyer, "buy", "1", price, f"b-{n}")
        match(run)
        deliver(run, "default")
    events = OutboxEvent.objects.filter(topic="email.fill_confirmation")
    assert events.count() == 4
    (due,) = set(events.values_list("available_at", flat=True))
    assert due == handlers.email_window_end(events.first().created_at) > timezone.now()

    deliver(run, "low")
    assert mail.outbox == []  # the in-app notifications are there already
    assert len(notes(buyer, "fill")) == 2

    events.update(available_at=timezone.now() - dt.timedelta(seconds=1))  # the window has ended
    deliver(run, "low")
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == sorted([
        (buyer.email, "BrokerX: 2 fills executed"), (seller.email, "BrokerX: 2 fills executed")])
    assert_books_balanced()


# --- deposits -------------------------------------------------------------------------------------------------------

def test_a_settled_deposit_is_one_event_in_its_transaction_then_one_notification_and_one_email(run, make_trader):
    trader = make_trader()
    pending = deposit_create(user=trader, amount=Decimal("250"))
    assert not OutboxEvent.objects.filter(topic__startswith="deposit.").exists()  # nothing until it ends

    assert deposit_settle_task.apply(args=(pending.pk,)).result == "settled"
    assert deposit_settle_task.apply(args=(pending.pk,)).result == "skipped"  # a repeated delivery
    assert deposit_settle(deposit_id=pending.pk).status == Deposit.Status.SETTLED  # a replay of the service
    (event,) = OutboxEvent.objects.filter(topic__startswith="deposit.")
    assert (event.topic, event.queue, event.status, event.aggregate_id) == (
        "deposit.settled", "default", OutboxStatus.PENDING, str(pending.pk))
    assert event.payload == {"user_id": trader.pk, "deposit_id": pending.pk, "amount": "250.0000",
                             "currency": "USD"}
    assert not Notification.objects.exists()  # the `default` queue makes it

    deliver(run, "default")
    assert notes(trader, "deposit") == [("Deposit of 250.00 USD settled", "The cash is available to trade.", {
        "deposit_id": pending.pk, "status": "settled", "amount": "250.0000", "currency": "USD"})]
    (email_event,) = OutboxEvent.objects.filter(topic="email.deposit")
    assert email_event.queue == "low" and email_event.payload["deposit_id"] == pending.pk
    assert mail.outbox == []

    deliver(run, "low")
    (message,) = mail.outbox
    assert message.to == [trader.email] and message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.subject == "BrokerX: Deposit of 250.00 USD settled"
    assert f"deposit #{pending.pk} of 250.00 USD has settled" in message.body

    # Redelivered (a worker died before its ack): no second notification, e-mail event or e-mail.
    redeliver(run, "deposit.settled", "default")
    redeliver(run, "email.deposit", "low")
    handlers.on_deposit_ended([event])
    assert Notification.objects.count() == 1 and OutboxEvent.objects.filter(topic="email.deposit").count() == 1
    assert len(mail.outbox) == 1
    assert balance(trader, "cash_available") == Decimal("250")
    assert_books_balanced()


def test_a_deposit_settlement_rolled_back_leaves_no_event(make_trader):
    trader = make_trader()
    pending = deposit_create(user=trader, amount=Decimal("80"))
    with pytest.raises(RuntimeError), transaction.atomic():
        deposit_settle(deposit_id=pending.pk)
        raise RuntimeError("the caller's transaction fails after the settlement")
    assert Deposit.objects.get(pk=pending.pk).status == Deposit.Status.PENDING
    assert not OutboxEvent.objects.filter(topic__startswith="deposit.").exists()
    assert_books_balanced()


def test_a_declined_deposit_is_noted_and_mailed_with_its_reason(run, make_trader):
    trader = make_trader()
    declined = deposit(trader, "100", simulate="fail")
    assert declined.status == Deposit.Status.FAILED
    (event,) = OutboxEvent.objects.filter(topic__startswith="deposit.")
    assert event.topic == "deposit.failed" and event.payload["reason"] == "Declined by the payment provider."

    deliver(run, "default")
    assert notes(trader, "deposit") == [("Deposit of 100.00 USD declined", "Declined by the payment provider.", {
        "deposit_id": declined.pk, "status": "failed", "amount": "100.0000", "currency": "USD"})]
    deliver(run, "low")
    (message,) = mail.outbox
    assert message.subject == "BrokerX: Deposit of 100.00 USD declined"
    assert "was declined: Declined by the payment provider." in message.body
    assert "Nothing was added to your account." in message.body
    assert balance(trader, "cash_available") == balance(trader, "cash_pending") == Decimal("0")
    assert_books_balanced()


def test_deposit_emails_follow_the_preference_and_the_notification_is_always_made(run, make_trader):
    quiet, default = make_trader(), make_trader()
    prefer(quiet, email_deposits=False)
    deposit(quiet, "40")
    deposit(default, "60.5")
    deposit(quiet, "10.13")  # declined by the simulated gateway (amount ending in .13)

    deliver(run, "default")
    assert [title for title, _b, _d in notes(quiet, "deposit")] == ["Deposit of 40.00 USD settled",
                                                                    "Deposit of 10.13 USD declined"]
    assert [title for title, _b, _d in notes(default, "deposit")] == ["Deposit of 60.50 USD settled"]
    assert [e.payload["user_id"] for e in OutboxEvent.objects.filter(topic="email.deposit")] == [default.pk]
    deliver(run, "low")
    assert [(m.to, m.subject) for m in mail.outbox] == [([default.email], "BrokerX: Deposit of 60.50 USD settled")]
    assert_books_balanced()


# --- cancels and expiries -------------------------------------------------------------------------------------------

def test_cancel_emails_are_off_by_default(run, instrument, make_trader):
    buyer = make_trader(cash="5000")
    order = place(run, buyer, "buy", "3", "95.00", "b-1")
    match(run)
    cancel(run, buyer, order)
    deliver(run, "default")

    assert [title for title, _b, _d in notes(buyer, "cancel")] == ["Order b-1 canceled: buy ACME"]
    assert not OutboxEvent.objects.filter(topic="email.cancel_confirmation").exists()
    deliver(run, "low")
    assert mail.outbox == []
    assert_books_balanced()


def test_with_email_cancels_on_one_email_per_batch_of_cancels_and_none_twice(run, instrument, make_trader):
    buyer, other = make_trader(cash="5000"), make_trader(cash="5000")
    prefer(buyer, email_cancels=True)
    seller = make_trader(shares={"ACME": "10"})
    first = place(run, buyer, "buy", "3", "95.00", "b-1")
    second = place(run, buyer, "buy", "2", "96.50", "b-2")
    theirs = place(run, other, "buy", "1", "95.00", "o-1")
    match(run)
    place(run, seller, "sell", "1", "96.50", "s-1")  # b-2 partly filled before its cancel
    match(run)
    deliver(run, "default")  # the fill's notifications and e-mail event are not part of this
    mail.outbox.clear()
    OutboxEvent.objects.filter(topic="email.fill_confirmation").update(status=OutboxStatus.DONE)
    for owner, order in ((buyer, first), (buyer, second), (other, theirs)):
        cancel(run, owner, order)

    deliver(run, "default")  # the three cancels' events reach the handler as one batch
    (event,) = OutboxEvent.objects.filter(topic="email.cancel_confirmation")
    assert (event.queue, event.payload["user_id"], len(event.payload["report_ids"])) == ("low", buyer.pk, 2)
    assert len(notes(other, "cancel")) == 1  # in-app, whatever the e-mail preference

    deliver(run, "low")
    (message,) = mail.outbox
    assert message.to == [buyer.email] and message.subject == "BrokerX: 2 orders canceled"
    assert "BUY 3 ACME @ 95.00  (order b-1, canceled: user, filled 0)" in message.body
    assert "BUY 2 ACME @ 96.50  (order b-2, canceled: user, filled 1)" in message.body
    assert "o-1" not in message.body

    redeliver(run, "execution.reports", "default")
    redeliver(run, "email.cancel_confirmation", "low")
    assert OutboxEvent.objects.filter(topic="email.cancel_confirmation").count() == 1 and len(mail.outbox) == 1
    assert balance(buyer, "cash_reserved") == Decimal("0")
    assert_books_balanced()


def test_expired_day_orders_are_mailed_as_expired(run, instrument, make_trader):
    buyer = make_trader(cash="5000")
    prefer(buyer, email_cancels=True)
    place(run, buyer, "buy", "1", "95.00", "d-1", tif="day")
    place(run, buyer, "buy", "2", "94.00", "d-2", tif="day")
    match(run)
    assert run(orders_expire_day, session_close=timezone.now() + dt.timedelta(seconds=1)) == 2

    deliver(run, "default")
    assert [title for title, body, _d in notes(buyer, "cancel")] == ["Order d-1 expired: buy ACME",
                                                                     "Order d-2 expired: buy ACME"]
    deliver(run, "low")
    (message,) = mail.outbox
    assert message.subject == "BrokerX: 2 orders expired"
    assert "(order d-1, expired: day_order_expired, filled 0)" in message.body
    assert balance(buyer, "cash_reserved") == Decimal("0")
    assert_books_balanced()


# --- e-mail delivery -----------------------------------------------------------------------------------------------

def test_an_email_failing_in_a_batch_does_not_resend_the_ones_already_sent(run, make_trader, monkeypatch):
    first, second = make_trader(), make_trader()
    deposit(first, "20")
    deposit(second, "30")
    deliver(run, "default")
    sent, refused = [], []
    real_send = handlers.send_mail

    def flaky_send(subject, body, sender, recipients):
        if recipients == [second.email] and not refused:  # the server refuses it once
            refused.append(recipients)
            sent.append(["refused"])
            raise ConnectionError("SMTP server unavailable")
        sent.append(recipients)
        return real_send(subject, body, sender, recipients)

    monkeypatch.setattr(handlers, "send_mail", flaky_send)
    # The batch fails on the second e-mail, is rolled back and retried event by event: the first e-mail is not
    # sent again, the second goes out on its retry.
    deliver(run, "low")
    assert sent == [[first.email], ["refused"], [second.email]]
    assert sorted(m.to[0] for m in mail.outbox) == sorted([first.email, second.email])
    assert set(OutboxEvent.objects.filter(topic="email.deposit").values_list("status", flat=True)) == {"done"}
    assert_books_balanced()


def test_preferences_are_read_with_their_defaults_for_traders_without_a_row(make_trader):
    from notifications.selectors import users_wanting_email

    fresh, stored = make_trader(), make_trader()
    NotificationPreference.objects.create(user=stored, email_fills=False, email_cancels=True, email_deposits=False)
    users = [fresh.pk, stored.pk]
    assert users_wanting_email(user_ids=users, preference="email_fills") == {fresh.pk}
    assert users_wanting_email(user_ids=users, preference="email_cancels") == {stored.pk}
    assert users_wanting_email(user_ids=users, preference="email_deposits") == {fresh.pk}
    assert NotificationPreference.objects.count() == 1
    with pytest.raises(ValueError):
        users_wanting_email(user_ids=users, preference="email_everything")
