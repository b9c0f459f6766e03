"""Order classes and trailing stops through the native API: the ACK shows the legs, the detail too, replace of a
trail, cancel of a class, and malformed legs refused in the documented error shape with nothing written."""

import pytest

from orders.models import Order
from tests.trading_fixtures import assert_books_balanced, match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]

BRACKET = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "10",
           "limit_price": "100.00", "order_class": "bracket", "take_profit": {"limit_price": "108.00"},
           "stop_loss": {"stop_price": "95.00", "limit_price": "94.50"}}


@pytest.fixture
def trader_client(api_client, instrument, make_trader):
    trader = make_trader(cash="50000", shares={"ACME": "20"})
    api_client.force_authenticate(trader)
    api_client.trader = trader
    return api_client


def test_a_bracket_ack_shows_its_held_legs_and_the_detail_too(trader_client):
    response = trader_client.post("/api/v1/orders", BRACKET, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["order_class"], body["parent_id"], body["status"]) == ("bracket", None, "new")
    take_profit, stop_loss = body["legs"]
    assert (take_profit["type"], take_profit["side"], take_profit["status"], take_profit["qty"]) == (
        "limit", "sell", "held", "0.0000")
    assert (stop_loss["type"], stop_loss["stop_price"], stop_loss["limit_price"]) == (
        "stop_limit", "95.0000", "94.5000")
    assert take_profit["parent_id"] == stop_loss["parent_id"] == body["id"]
    detail = trader_client.get(f"/api/v1/orders/{body['id']}").json()
    assert [leg["id"] for leg in detail["legs"]] == [take_profit["id"], stop_loss["id"]]
    assert trader_client.get(f"/api/v1/orders/{take_profit['id']}").json()["legs"] == []
    match()

    # Canceling a leg cancels the class: the entry and both legs, with the entry's cash released.
    canceled = trader_client.post(f"/api/v1/orders/{stop_loss['id']}/cancel", {}, format="json")
    assert canceled.status_code == 200, canceled.json()
    match()
    assert set(Order.objects.values_list("status", flat=True)) == {"canceled"}
    assert_books_balanced()


def test_a_trailing_stop_by_api_and_its_trail_replaced(trader_client, make_trader):
    seller, buyer = make_trader(shares={"ACME": "1"}), make_trader(cash="1000")
    for user, side in ((seller, "sell"), (buyer, "buy")):
        trader_client.force_authenticate(user)
        trader_client.post("/api/v1/orders", {"symbol": "ACME", "side": side, "type": "limit", "qty": "1",
                                              "limit_price": "100.00"}, format="json")
    match()
    trader_client.force_authenticate(trader_client.trader)
    response = trader_client.post("/api/v1/orders", {"symbol": "ACME", "side": "sell", "type": "trailing_stop",
                                                     "time_in_force": "gtc", "qty": "5", "trail_percent": "1.5"},
                                  format="json")
    assert response.status_code == 201, response.json()
    match()
    order = trader_client.get(f"/api/v1/orders/{response.json()['id']}").json()
    assert (order["trail_percent"], order["hwm"], order["stop_price"]) == ("1.50", "100.0000", "98.5000")

    replaced = trader_client.patch(f"/api/v1/orders/{order['id']}", {"version": order["version"],
                                                                     "trail_percent": "3"}, format="json")
    assert replaced.status_code == 200, replaced.json()
    match()
    order = trader_client.get(f"/api/v1/orders/{order['id']}").json()
    assert (order["trail_percent"], order["hwm"], order["stop_price"]) == ("3.00", "100.0000", "97.0000")
    assert_books_balanced()


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"take_profit": {"limit_price": "108.00", "stop_price": "1"}}, 400, "validation_error"),
    ({"take_profit": "108.00"}, 400, "validation_error"),
    ({"stop_loss": {"limit_price": "94.00"}}, 400, "validation_error"),
    ({"order_class": "ladder"}, 400, "validation_error"),
    ({"take_profit": {"limit_price": "94.00"}}, 422, "invalid_legs"),
    ({"side": "sell"}, 422, "invalid_order_class"),
    ({"time_in_force": "ioc"}, 422, "invalid_time_in_force"),
])
def test_malformed_classes_are_refused_in_the_error_shape_and_write_nothing(trader_client, change, status, code):
    response = trader_client.post("/api/v1/orders", {**BRACKET, **change}, format="json")

    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert not Order.objects.exists()
    assert_books_balanced()
