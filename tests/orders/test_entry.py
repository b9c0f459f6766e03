"""Order entry is one path: every door (token, API key, browser session, /v2/orders) refuses the same bad order
for the same reason, writes nothing, and an Idempotency-Key on POST /api/v1/orders is honoured."""
import threading
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client
from django_otp.plugins.otp_email.models import EmailDevice
from rest_framework.test import APIClient

from accounts.services import api_key_create, jwt_issue
from orders.models import Order, OrderEvent
from outbox.models import OutboxEvent
from portfolios.models import JournalEntry
from tests.trading_fixtures import assert_books_balanced

ORDER = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "day", "qty": "10", "limit_price": "100.00"}


class Door:
    """One way into order entry: posts an order body and says why it was refused."""

    name = ""

    def __init__(self, user):
        self.user = user

    def post(self, body):
        raise NotImplementedError

    def reason(self, response, case) -> str:
        """The refusal in the native vocabulary: the code, and for invalid fields the field named."""
        body = response.json()
        return body["code"] if body["code"] != "validation_error" else f"validation_error:{sorted(body['details'])}"


class TokenDoor(Door):
    name = "token"

    def __init__(self, user):
        super().__init__(user)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issue(user=user)['access']}")

    def post(self, body):
        return self.client.post("/api/v1/orders", body, format="json")


class ApiKeyDoor(TokenDoor):
    name = "api-key"

    def __init__(self, user):
        Door.__init__(self, user)
        key = api_key_create(user=user, name="bot", scope="trade")
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")


class SessionDoor(Door):
    """The browser's way: an MFA-verified session cookie and the CSRF token, through the DRF view."""

    name = "session"

    def __init__(self, user):
        super().__init__(user)
        device, _ = EmailDevice.objects.get_or_create(user=user, name="email", defaults={"confirmed": True})
        self.client = Client(enforce_csrf_checks=True)
        self.client.force_login(user)
        session = self.client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
        self.client.get("/trade/")
        self.csrf = self.client.cookies["csrftoken"].value

    def post(self, body):
        return self.client.post("/api/v1/orders", body, content_type="application/json", HTTP_X_CSRFTOKEN=self.csrf)


class AlpacaDoor(Door):
    """/v2/orders: Alpaca's error shape {"code": int, "message": str}; the reason is in the message."""

    name = "alpaca"
    # Refusals that Alpaca itself words in its own way (clients of Alpaca match on these messages).
    ALPACA_WORDING = {"insufficient_buying_power": "insufficient buying power",
                      "insufficient_shares": "insufficient qty available for order",
                      "unknown_symbol": 'asset "NOPE" not found'}

    def __init__(self, user):
        super().__init__(user)
        key = api_key_create(user=user, name="alpaca", scope="trade")
        self.client = APIClient()
        self.client.credentials(HTTP_APCA_API_KEY_ID=key.api_key.key_id, HTTP_APCA_API_SECRET_KEY=key.secret)

    def post(self, body):
        return self.client.post("/v2/orders", body, format="json")

    def reason(self, response, case) -> str:
        body = response.json()
        assert isinstance(body["code"], int) and set(body) == {"code", "message"}, body
        native_code, native_message, field = case
        if native_code in self.ALPACA_WORDING:
            return native_code if body["message"] == self.ALPACA_WORDING[native_code] else body["message"]
        if field is not None:
            name, _, message = body["message"].partition(": ")
            return f"validation_error:{[name]}" if message == native_message else body["message"]
        return native_code if body["message"] == native_message else body["message"]


DOORS = [TokenDoor, ApiKeyDoor, SessionDoor, AlpacaDoor]

# (body, native status, native code, the field refused for validation errors)
BAD_ORDERS = {
    "qty not a number": ({**ORDER, "qty": "abc"}, 400, "validation_error", "qty"),
    "qty zero": ({**ORDER, "qty": "0"}, 400, "validation_error", "qty"),
    "qty too precise": ({**ORDER, "qty": "1.00001"}, 400, "validation_error", "qty"),
    "unknown side": ({**ORDER, "side": "short"}, 400, "validation_error", "side"),
    "unknown type": ({**ORDER, "type": "iceberg"}, 400, "validation_error", "type"),
    "client_order_id with spaces": ({**ORDER, "client_order_id": "no spaces"}, 400, "validation_error",
                                    "client_order_id"),
    "unknown symbol": ({**ORDER, "symbol": "NOPE"}, 422, "unknown_symbol", None),
    "off the tick grid": ({**ORDER, "limit_price": "100.001"}, 422, "invalid_tick_size", None),
    "off the lot grid": ({**ORDER, "qty": "1.5"}, 422, "invalid_lot_size", None),
    "limit without price": ({k: v for k, v in ORDER.items() if k != "limit_price"}, 422, "missing_limit_price", None),
    "stop price on a limit": ({**ORDER, "stop_price": "99.00"}, 422, "unexpected_stop_price", None),
    "outside the price band": ({**ORDER, "limit_price": "150.00"}, 422, "price_out_of_band", None),
    "market good-till-canceled": ({"symbol": "ACME", "side": "buy", "type": "market", "time_in_force": "gtc",
                                   "qty": "1"}, 422, "invalid_time_in_force", None),
    "above buying power": ({**ORDER, "qty": "400"}, 422, "insufficient_buying_power", None),
    "selling shares not owned": ({**ORDER, "side": "sell", "qty": "5"}, 422, "insufficient_shares", None),
    "take_profit without its price": ({**ORDER, "order_class": "bracket", "take_profit": {},
                                       "stop_loss": {"stop_price": "95.00"}}, 400, "validation_error", "take_profit"),
    "a bracket that sells": ({**ORDER, "side": "sell", "order_class": "bracket", "take_profit": {"limit_price": "95"},
                              "stop_loss": {"stop_price": "105"}}, 422, "invalid_order_class", None),
    "a trailing stop without a trail": ({**ORDER, "type": "trailing_stop", "limit_price": None}, 422,
                                        "invalid_trail", None),
}
BRACKET = {**ORDER, "order_class": "bracket", "take_profit": {"limit_price": "105.00"},
           "stop_loss": {"stop_price": "95.00", "limit_price": "94.00"}}


def _written() -> tuple[int, int, int, int]:
    return (Order.objects.count(), OrderEvent.objects.count(), OutboxEvent.objects.count(),
            JournalEntry.objects.count())


@pytest.mark.django_db
@pytest.mark.parametrize("door_class", DOORS, ids=lambda door: door.name)
def test_every_door_refuses_the_same_bad_orders_for_the_same_reason_and_writes_nothing(
        instrument, make_trader, door_class):
    door = door_class(make_trader(cash="1000"))
    native = {name: TokenDoor(door.user).post(body) for name, (body, *_rest) in BAD_ORDERS.items()}
    before = _written()

    for name, (body, status, code, field) in BAD_ORDERS.items():
        response = door.post(body)
        expected = code if field is None else f"validation_error:{[field]}"
        native_message = (native[name].json()["details"][field][0] if field is not None
                          else native[name].json()["message"])

        assert 400 <= response.status_code < 500, (name, response.status_code)
        if door_class is not AlpacaDoor:
            assert response.status_code == status, (name, response.json())
        assert door.reason(response, (code, native_message, field)) == expected, (name, response.json())
    assert _written() == before
    assert_books_balanced()


@pytest.mark.django_db
@pytest.mark.parametrize("door_class", DOORS, ids=lambda door: door.name)
def test_every_door_places_a_bracket_with_its_held_legs(instrument, make_trader, door_class):
    door = door_class(make_trader(cash="5000"))

    response = door.post({**BRACKET, "client_order_id": f"bracket-{door.name}"})

    assert response.status_code in (200, 201), response.json()
    entry = Order.objects.get(client_order_id=f"bracket-{door.name}")
    legs = list(entry.legs.order_by("id").values_list("type", "status", "qty", "limit_price", "stop_price"))
    assert legs == [("limit", "held", 0, Decimal("105.00"), None),
                    ("stop_limit", "held", 0, Decimal("94.00"), Decimal("95.00"))]
    assert len(response.json()["legs"]) == 2
    assert_books_balanced()


@pytest.mark.django_db
@pytest.mark.parametrize("door_class", DOORS, ids=lambda door: door.name)
def test_every_door_places_a_good_order(instrument, make_trader, door_class):
    door = door_class(make_trader(cash="5000"))

    response = door.post({**ORDER, "client_order_id": f"good-{door.name}"})

    assert response.status_code in (200, 201), response.json()
    order = Order.objects.get(client_order_id=f"good-{door.name}")
    assert order.user == door.user and order.status == "new" and order.qty == 10
    assert OrderEvent.objects.filter(order=order, type="accepted").count() == 1
    assert_books_balanced()


@pytest.mark.django_db
def test_a_read_only_key_is_refused_by_the_same_check_on_both_api_doors(instrument, make_trader):
    trader = make_trader(cash="5000")
    key = api_key_create(user=trader, name="ro", scope="read")
    native, alpaca = APIClient(), APIClient()
    native.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")
    alpaca.credentials(HTTP_APCA_API_KEY_ID=key.api_key.key_id, HTTP_APCA_API_SECRET_KEY=key.secret)

    refused = native.post("/api/v1/orders", ORDER, format="json")
    alpaca_refused = alpaca.post("/v2/orders", ORDER, format="json")

    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert alpaca_refused.status_code == 403 and alpaca_refused.json()["message"] == refused.json()["message"]
    assert Order.objects.count() == 0


# --- Idempotency-Key on POST /api/v1/orders ----------------------------------------------------------------

def _key_client(user) -> APIClient:
    key = api_key_create(user=user, name="bot", scope="trade")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")
    return client


@pytest.mark.django_db
def test_an_idempotency_key_replays_the_first_answer_and_places_one_order(instrument, make_trader):
    client = _key_client(make_trader(cash="5000"))

    first = client.post("/api/v1/orders", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post("/api/v1/orders", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == 201 and again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert Order.objects.count() == 1 and OrderEvent.objects.filter(type="accepted").count() == 1
    assert_books_balanced()


@pytest.mark.django_db
def test_an_idempotency_key_with_another_body_is_refused(instrument, make_trader):
    client = _key_client(make_trader(cash="5000"))
    client.post("/api/v1/orders", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    other = client.post("/api/v1/orders", {**ORDER, "qty": "11"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_order_with_an_idempotency_key_is_replayed_but_invalid_fields_are_not_stored(
        instrument, make_trader):
    trader = make_trader(cash="500")
    client = _key_client(trader)

    poor = client.post("/api/v1/orders", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    poor_again = client.post("/api/v1/orders", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    invalid = client.post("/api/v1/orders", {**ORDER, "qty": "abc"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    fixed = client.post("/api/v1/orders", {**ORDER, "qty": "1"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4")

    assert poor.status_code == 422 and poor.json()["code"] == "insufficient_buying_power"
    assert poor_again.status_code == 422 and poor_again["Idempotent-Replayed"] == "true"
    assert invalid.status_code == 400
    assert fixed.status_code == 201, fixed.json()
    assert Order.objects.count() == 1
    assert_books_balanced()


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_with_the_same_idempotency_key_gets_409_or_the_replay(instrument, make_trader):
    trader = make_trader(cash="50000")
    key = api_key_create(user=trader, name="bot", scope="trade")
    answers: list[tuple[int, str]] = []
    barrier = threading.Barrier(6)

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")
        try:
            barrier.wait()
            response = client.post("/api/v1/orders", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k-race")
            answers.append((response.status_code, response.json().get("code", "")))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 6
    assert all(status == 201 or (status, code) == (409, "idempotency_in_flight") for status, code in answers), answers
    assert Order.objects.filter(user=trader).count() == 1
    assert Order.objects.get(user=trader).qty == Decimal("10")
    assert_books_balanced()
