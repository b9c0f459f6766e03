"""The notifications API (list, unread count, mark read, e-mail preferences) and the outbox handlers behind it:
in-app notifications per execution report (idempotent) and fill e-mails per batch on the `low` queue."""
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.handlers import on_execution_reports
from notifications.models import ExecutionReport, Notification, NotificationPreference
from notifications.services import notification_create
from orders.models import Instrument, Order
from orders.selectors import instrument_cache_invalidate
from orders.services import OrderRequest, order_cancel, order_place
from outbox.models import OutboxEvent, OutboxStatus
from outbox.services import outbox_drain
from tests.trading_fixtures import assert_books_balanced, committed, match

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"code", "message", "details"}
DEFAULTS = {"email_fills": True, "email_cancels": False, "email_deposits": True}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS and body["code"] == code and body["message"], body
    assert isinstance(body["details"], dict)
    return body


@pytest.fixture
def two_users(make_trader):
    return make_trader(), make_trader()


def _notify(user, n: int, kind: str = "fill") -> list[Notification]:
    return [notification_create(user_id=user.pk, kind=kind, title=f"{kind} {i}", data={"i": i}) for i in range(n)]


# --- list and unread count ------------------------------------------------------------------------------------------

def test_the_list_shows_only_the_callers_notifications_newest_first_with_the_unread_count(two_users):
    mine, theirs = two_users
    own = _notify(mine, 3)
    _notify(theirs, 2, kind="cancel")
    Notification.objects.filter(pk=own[0].pk).update(read_at=timezone.now())

    body = client_for(mine).get("/api/v1/notifications").json()
    assert [n["id"] for n in body["results"]] == [own[2].pk, own[1].pk, own[0].pk]
    assert body["count"] == 3 and body["unread"] == 2
    assert {n["kind"] for n in body["results"]} == {"fill"}
    assert set(body["results"][0]) == {"id", "kind", "title", "body", "data", "read_at", "created_at"}
    assert body["results"][0]["read_at"] is None and body["results"][2]["read_at"] is not None

    unread = client_for(mine).get("/api/v1/notifications", {"unread": "1"}).json()
    assert [n["id"] for n in unread["results"]] == [own[2].pk, own[1].pk] and unread["unread"] == 2
    assert client_for(theirs).get("/api/v1/notifications").json()["unread"] == 2


def test_anonymous_callers_get_401_in_the_error_shape(two_users):
    anonymous = APIClient()
    assert_error(anonymous.get("/api/v1/notifications"), 401, "not_authenticated")
    assert_error(anonymous.post("/api/v1/notifications/read", {}, format="json"), 401, "not_authenticated")
    assert_error(anonymous.get("/api/v1/notifications/preferences"), 401, "not_authenticated")
    assert_error(anonymous.patch("/api/v1/notifications/preferences", {"email_fills": False}, format="json"),
                 401, "not_authenticated")
    assert not NotificationPreference.objects.exists()


# --- mark read ------------------------------------------------------------------------------------------------------

def test_mark_read_by_ids_then_all_never_touches_another_users(two_users):
    mine, theirs = two_users
    n1, n2, n3 = _notify(mine, 3)
    (other,) = _notify(theirs, 1)
    client = client_for(mine)

    response = client.post("/api/v1/notifications/read", {"ids": [n1.pk, other.pk]}, format="json")
    assert response.status_code == 200 and response.json() == {"marked": 1}
    assert set(Notification.objects.filter(read_at__isnull=False).values_list("pk", flat=True)) == {n1.pk}
    first_read_at = Notification.objects.get(pk=n1.pk).read_at
    assert client.get("/api/v1/notifications").json()["unread"] == 2

    response = client.post("/api/v1/notifications/read", {}, format="json")
    assert response.json() == {"marked": 2}
    assert not Notification.objects.filter(user=mine, read_at__isnull=True).exists()
    assert Notification.objects.get(pk=n1.pk).read_at == first_read_at  # already read: left as it was
    assert Notification.objects.get(pk=other.pk).read_at is None
    assert client.post("/api/v1/notifications/read", {}, format="json").json() == {"marked": 0}
    assert client_for(theirs).get("/api/v1/notifications").json()["unread"] == 1
    assert client.post("/api/v1/notifications/read", {"ids": []}, format="json").json() == {"marked": 0}


@pytest.mark.parametrize("payload", [{"ids": ["x"]}, {"ids": "1"}, {"ids": None}, {"ids": [{"id": 1}]}])
def test_mark_read_with_bad_ids_is_a_400_and_marks_nothing(two_users, payload):
    mine, _ = two_users
    _notify(mine, 2)

    body = assert_error(client_for(mine).post("/api/v1/notifications/read", payload, format="json"), 400,
                        "validation_error")
    assert "ids" in body["details"]
    assert Notification.objects.filter(read_at__isnull=True).count() == 2


def test_mark_read_with_malformed_json_is_a_400(two_users):
    mine, _ = two_users
    _notify(mine, 1)
    response = client_for(mine).post("/api/v1/notifications/read", data="{nope", content_type="application/json")
    assert_error(response, 400, "malformed_request")
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


# --- preferences ----------------------------------------------------------------------------------------------------

def test_preferences_default_then_update_partially(two_users):
    mine, theirs = two_users
    client = client_for(mine)
    assert client.get("/api/v1/notifications/preferences").json() == DEFAULTS

    response = client.patch("/api/v1/notifications/preferences", {"email_fills": False}, format="json")
    assert response.status_code == 200 and response.json() == {**DEFAULTS, "email_fills": False}
    response = client.patch("/api/v1/notifications/preferences", {"email_cancels": True}, format="json")
    assert response.json() == {**DEFAULTS, "email_fills": False, "email_cancels": True}

    stored = NotificationPreference.objects.get(user=mine)
    assert (stored.email_fills, stored.email_cancels, stored.email_deposits) == (False, True, True)
    assert client.get("/api/v1/notifications/preferences").json() == {**DEFAULTS, "email_fills": False,
                                                                      "email_cancels": True}
    assert client_for(theirs).get("/api/v1/notifications/preferences").json() == DEFAULTS


@pytest.mark.parametrize(("payload", "field"), [
    ({"email_fills": "maybe", "email_cancels": True}, "email_fills"),
    ({"email_deposits": [True]}, "email_deposits"),
    ({"email_cancels": None}, "email_cancels"),
    (["email_fills"], "non_field_errors"),
])
def test_bad_preferences_are_a_400_in_the_error_shape_and_change_nothing(two_users, payload, field):
    mine, _ = two_users
    client = client_for(mine)
    client.patch("/api/v1/notifications/preferences", {"email_fills": False}, format="json")

    body = assert_error(client.patch("/api/v1/notifications/preferences", payload, format="json"), 400,
                        "validation_error")
    assert field in body["details"]
    stored = NotificationPreference.objects.get(user=mine)
    assert (stored.email_fills, stored.email_cancels, stored.email_deposits) == (False, False, True)
    assert NotificationPreference.objects.count() == 1


@pytest.mark.parametrize("payload", [
    {"email_fills": "maybe"}, {"email_cancels": None}, {"email_fills": False, "email_deposits": [True]},
    ["email_fills"], "true",
])
def test_a_refused_preferences_patch_writes_nothing_not_even_the_default_row(two_users, payload):
    mine, _ = two_users
    client = client_for(mine)

    assert_error(client.patch("/api/v1/notifications/preferences", payload, format="json"), 400, "validation_error")
    assert NotificationPreference.objects.count() == 0
    assert client.get("/api/v1/notifications/preferences").json() == DEFAULTS  # reading writes nothing either
    assert client.patch("/api/v1/notifications/preferences", {}, format="json").json() == DEFAULTS
    assert NotificationPreference.objects.count() == 0


def test_preferences_refuse_other_methods(two_users):
    mine, _ = two_users
    assert_error(client_for(mine).put("/api/v1/notifications/preferences", DEFAULTS, format="json"), 405,
                 "method_not_allowed")
    assert_error(client_for(mine).delete("/api/v1/notifications/preferences"), 405, "method_not_allowed")
    assert_error(client_for(mine).get("/api/v1/notifications/read"), 405, "method_not_allowed")


# --- the outbox handlers --------------------------------------------------------------------------------------------

@pytest.fixture
def trading(instrument, fresh_books):
    """The ACME market with fresh books: `match()` and the helpers below run after-commit work."""


def deliver(queue: str) -> int:
    with committed():
        return outbox_drain(queue=queue)


def place(user, side, qty, price, coid=None) -> Order:
    with committed():
        order, _ = order_place(user=user, request=OrderRequest(
            symbol="ACME", side=side, type="limit", time_in_force="gtc", qty=Decimal(qty),
            limit_price=Decimal(price), client_order_id=coid))
    return order


def cancel(user, order) -> None:
    with committed():
        order_cancel(user=user, order_id=order.pk, version=Order.objects.get(pk=order.pk).version)


def halt() -> None:
    Instrument.objects.filter(symbol="ACME").update(trading_status="halted")
    instrument_cache_invalidate("ACME")


def snapshot() -> tuple:
    return (sorted(Notification.objects.values_list("user_id", "kind", "data__report_id")),
            OutboxEvent.objects.filter(topic="email.fill_confirmation").count())


def test_one_notification_per_fill_cancel_and_rejection_report_and_redelivery_adds_none(trading, make_trader):
    seller, buyer = make_trader(shares={"ACME": "20"}), make_trader(cash="20000")
    place(seller, "sell", "10", "100.00", "s-1")
    match()
    place(buyer, "buy", "4", "100.00", "b-1")  # s-1 partially filled, b-1 filled
    match()
    resting = place(buyer, "buy", "1", "95.00", "b-2")
    match()
    cancel(buyer, resting)
    place(buyer, "buy", "1", "100.00", "b-3")
    halt()  # before b-3 reaches the book: rejected there (saga compensated)
    match()

    noted = ExecutionReport.objects.filter(exec_type__in=["trade", "canceled", "rejected"])
    assert sorted(noted.values_list("exec_type", flat=True)) == ["canceled", "rejected", "trade", "trade"]
    assert ExecutionReport.objects.filter(exec_type="new").count() == 3  # s-1, b-1, b-2: no notification for these
    assert Notification.objects.count() == 0  # the outbox delivers them, on the `default` queue
    assert OutboxEvent.objects.filter(topic="execution.reports", queue="default", status="pending").exists()

    deliver("default")

    kind_of = {"trade": "fill", "canceled": "cancel", "rejected": "rejection"}
    expected = sorted((r.user_id, kind_of[r.exec_type], r.pk) for r in noted)
    assert snapshot()[0] == expected
    for note in Notification.objects.all():
        report = ExecutionReport.objects.get(pk=note.data["report_id"])
        assert (note.data["order_id"], note.data["seq"], note.read_at) == (report.order_id, report.seq, None)
        assert "ACME" in note.title and report.side in note.title.lower()
    assert Notification.objects.get(kind="rejection").body == "symbol_halted"
    assert Notification.objects.get(kind="cancel").body == "user"
    first = snapshot()
    assert first[1] == 2  # one fill e-mail event per user with fills (both want them by default)

    # The same events delivered again (a worker died after handling, before its ack): nothing is added.
    events = list(OutboxEvent.objects.filter(topic="execution.reports").order_by("id"))
    OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(status=OutboxStatus.PENDING, processed_at=None)
    assert deliver("default") >= len(events)
    assert snapshot() == first
    on_execution_reports(events)  # and once more straight to the handler
    assert snapshot() == first
    assert set(OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("status", flat=True)) == {
        OutboxStatus.DONE}
    assert_books_balanced()


def test_fill_emails_go_out_one_per_batch_on_the_low_queue_and_follow_the_preference(trading, make_trader):
    seller, buyer = make_trader(shares={"ACME": "20"}), make_trader(cash="20000")
    response = client_for(seller).patch("/api/v1/notifications/preferences", {"email_fills": False}, format="json")
    assert response.status_code == 200
    place(seller, "sell", "4", "100.00", "s-1")
    place(seller, "sell", "6", "100.50", "s-2")
    match()
    place(buyer, "buy", "10", "101.00", "b-1")  # two fills for each side, in one matching batch
    match()

    deliver("default")
    emails = list(OutboxEvent.objects.filter(topic="email.fill_confirmation"))
    assert [(e.queue, e.payload["user_id"]) for e in emails] == [("low", buyer.pk)]
    buyer_fills = list(ExecutionReport.objects.filter(user=buyer, exec_type="trade").order_by("seq"))
    assert emails[0].payload["report_ids"] == [r.pk for r in buyer_fills]
    assert mail.outbox == []  # e-mail is the `low` queue's job
    # In-app notifications are always on, e-mail preference or not.
    assert Notification.objects.filter(user=seller, kind="fill").count() == 2

    deliver("low")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [buyer.email] and message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.subject == "BrokerX: 2 fills executed"
    assert [f"#{r.seq}" for r in buyer_fills] == ["#2", "#3"]
    assert "#2  BUY 4 ACME @ 100" in message.body and "#3  BUY 6 ACME @ 100.5" in message.body
    assert "order b-1" in message.body
    assert deliver("low") == 0 and len(mail.outbox) == 1  # sent once

    # The seller turns fill e-mails on: the next batch mails both, one fill each.
    client_for(seller).patch("/api/v1/notifications/preferences", {"email_fills": True}, format="json")
    place(buyer, "buy", "1", "99.00", "b-2")
    match()
    place(seller, "sell", "1", "99.00", "s-3")
    match()
    deliver("default")
    deliver("low")
    assert sorted((m.to[0], m.subject) for m in mail.outbox[1:]) == sorted([
        (buyer.email, "BrokerX: 1 fill executed"), (seller.email, "BrokerX: 1 fill executed")])
    seller_mail = next(m for m in mail.outbox[1:] if m.to == [seller.email])
    assert "SELL 1 ACME @ 99" in seller_mail.body and "order s-3" in seller_mail.body
    assert "s-1" not in seller_mail.body  # the fills of the batch it was off for are not mailed late
    assert_books_balanced()
