"""The orders API: ACK shape, error shape, filters, versions on replace/cancel, and no access to others' orders."""
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import Order
from tests.trading_fixtures import assert_books_balanced

pytestmark = pytest.mark.django_db

ORDER = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "10", "limit_price": "100.00"}


@pytest.fixture
def trader_client(api_client, instrument, make_trader):
    trader = make_trader(cash="50000")
    api_client.force_authenticate(trader)
    api_client.trader = trader
    return api_client


def test_post_order_returns_the_ack(trader_client):
    response = trader_client.post("/api/v1/orders", ORDER, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "new" and body["version"] == 1 and body["id"]
    assert Decimal(body["leaves_qty"]) == 10 and body["symbol"] == "ACME"
    assert_books_balanced()


def test_repeated_client_order_id_answers_200_with_the_same_order(trader_client):
    first = trader_client.post("/api/v1/orders", {**ORDER, "client_order_id": "my-1"}, format="json")
    again = trader_client.post("/api/v1/orders", {**ORDER, "client_order_id": "my-1"}, format="json")

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


@pytest.mark.parametrize(("body", "status", "code"), [
    ({**ORDER, "qty": "abc"}, 400, "validation_error"),
    ({**ORDER, "side": "sideways"}, 400, "validation_error"),
    ({**ORDER, "symbol": "ZZZZ"}, 422, "unknown_symbol"),
    ({**ORDER, "limit_price": "150.00"}, 422, "price_out_of_band"),
    ({**ORDER, "qty": "1000"}, 422, "insufficient_buying_power"),
])
def test_bad_orders_get_a_clear_4xx_in_the_error_shape_and_write_nothing(trader_client, body, status, code):
    response = trader_client.post("/api/v1/orders", body, format="json")

    assert response.status_code == status
    payload = response.json()
    assert payload["code"] == code and payload["message"] and isinstance(payload["details"], dict)
    assert Order.objects.count() == 0


def test_malformed_json_is_a_400(trader_client):
    response = trader_client.post("/api/v1/orders", data="{nope", content_type="application/json")

    assert response.status_code == 400 and response.json()["code"] == "malformed_request"


def test_unverified_and_anonymous_users_cannot_trade(api_client, instrument, make_trader):
    assert api_client.post("/api/v1/orders", ORDER, format="json").status_code == 401

    trader = make_trader(cash="50000")
    trader.email_verified_at = None
    trader.save(update_fields=["email_verified_at"])
    api_client.force_authenticate(trader)
    response = api_client.post("/api/v1/orders", ORDER, format="json")

    assert response.status_code == 403 and response.json()["code"] == "email_not_verified"


def test_list_filters_and_get_one(trader_client):
    trader_client.post("/api/v1/orders", ORDER, format="json")
    second = trader_client.post("/api/v1/orders", {**ORDER, "side": "buy", "qty": "2"}, format="json").json()
    trader_client.post(f"/api/v1/orders/{second['id']}/cancel", {"version": 1}, format="json")

    open_orders = trader_client.get("/api/v1/orders?status=open").json()["results"]
    closed = trader_client.get("/api/v1/orders?status=closed").json()["results"]
    assert [o["status"] for o in open_orders] == ["new"]
    assert [o["id"] for o in closed] == [second["id"]]
    assert trader_client.get("/api/v1/orders?symbol=OTHER").json()["count"] == 0
    assert trader_client.get(f"/api/v1/orders/{second['id']}").json()["status"] == "canceled"
    since = (timezone.now() - timezone.timedelta(minutes=1)).isoformat()
    time.sleep(0.15)  # changes are listed once past orders.selectors.CHANGES_MARGIN
    assert trader_client.get("/api/v1/orders", {"updated_after": since}).json()["count"] == 2
    assert trader_client.get("/api/v1/orders?after=yesterday").status_code == 400


def test_a_leg_without_its_price_is_a_400_naming_the_leg(trader_client):
    body = {**ORDER, "order_class": "bracket", "take_profit": {}, "stop_loss": {"stop_price": "95.00"}}

    response = trader_client.post("/api/v1/orders", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["details"] == {"take_profit": ["limit_price: This field is required."]}
    assert Order.objects.count() == 0


def test_held_legs_are_listed_as_open_not_closed(trader_client):
    # Given a bracket whose entry has not filled: its two legs are held, quantity 0, and can still be canceled.
    entry = trader_client.post("/api/v1/orders", {**ORDER, "order_class": "bracket",
                                                  "take_profit": {"limit_price": "105.00"},
                                                  "stop_loss": {"stop_price": "95.00"}}, format="json").json()
    legs = [leg["id"] for leg in entry["legs"]]

    open_orders = trader_client.get("/api/v1/orders?status=open").json()["results"]
    closed = trader_client.get("/api/v1/orders?status=closed").json()["results"]

    assert sorted(o["id"] for o in open_orders) == sorted([entry["id"], *legs])
    assert {o["status"] for o in open_orders if o["id"] in legs} == {"held"}
    assert closed == []
    assert [o["id"] for o in trader_client.get("/api/v1/orders?status=held").json()["results"]] == legs[::-1]


def test_replace_and_cancel_need_the_current_version(trader_client):
    order = trader_client.post("/api/v1/orders", ORDER, format="json").json()

    replaced = trader_client.patch(f"/api/v1/orders/{order['id']}", {"version": 1, "qty": "5"}, format="json")
    assert replaced.status_code == 200 and replaced.json()["version"] == 2

    stale = trader_client.post(f"/api/v1/orders/{order['id']}/cancel", {"version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version" and stale.json()["details"]["current"]["version"] == 2

    canceled = trader_client.post(f"/api/v1/orders/{order['id']}/cancel", {"version": 2}, format="json")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = trader_client.post(f"/api/v1/orders/{order['id']}/cancel", {"version": 3}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "order_not_open"
    events = trader_client.get(f"/api/v1/orders/{order['id']}/events").json()["results"]
    assert [e["type"] for e in events] == ["accepted", "replaced", "canceled"]
    assert_books_balanced()


def test_a_user_cannot_see_or_touch_another_users_order(trader_client, api_client, make_trader):
    order = trader_client.post("/api/v1/orders", ORDER, format="json").json()
    from rest_framework.test import APIClient

    intruder = APIClient()
    intruder.force_authenticate(make_trader(cash="1000"))

    assert intruder.get(f"/api/v1/orders/{order['id']}").status_code == 404
    assert intruder.get(f"/api/v1/orders/{order['id']}/events").status_code == 404
    assert intruder.patch(f"/api/v1/orders/{order['id']}", {"version": 1, "qty": "1"}, format="json").status_code == 404
    assert intruder.post(f"/api/v1/orders/{order['id']}/cancel", {"version": 1}, format="json").status_code == 404
    assert intruder.get("/api/v1/orders").json()["count"] == 0
    assert Order.objects.get(pk=order["id"]).status == "new"


def test_symbols_are_public(api_client, instrument):
    response = api_client.get("/api/v1/market/symbols")

    assert response.status_code == 200
    assert [s["symbol"] for s in response.json()] == ["ACME"]
