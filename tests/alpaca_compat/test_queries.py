"""The Alpaca layer adds no database work to an order: POST /v2/orders costs what the native placement costs."""
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.services import OrderRequest, order_place


def test_post_order_costs_no_more_queries_than_the_native_placement(api_client, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    headers = {"HTTP_APCA_API_KEY_ID": key, "HTTP_APCA_API_SECRET_KEY": secret}
    body = {"symbol": "ACME", "qty": 1, "side": "buy", "type": "limit", "time_in_force": "day", "limit_price": 99}
    api_client.get("/v2/account", **headers)  # the key is cached from here on, as for any client after its first call

    with CaptureQueriesContext(connection) as native:
        order_place(user=user, request=OrderRequest(symbol="ACME", side="buy", type="limit", time_in_force="day",
                                                    qty=Decimal("1"), limit_price=Decimal("99")))
    with CaptureQueriesContext(connection) as alpaca:
        response = api_client.post("/v2/orders", body, format="json", **headers)

    assert response.status_code == 200, response.content
    assert len(alpaca) <= len(native), [q["sql"] for q in alpaca.captured_queries]


def test_get_orders_is_one_query(api_client, trader_with_key, alpaca_instrument, django_assert_num_queries):
    user, key, secret = trader_with_key(cash="10000")
    headers = {"HTTP_APCA_API_KEY_ID": key, "HTTP_APCA_API_SECRET_KEY": secret}
    for price in (97, 98, 99):
        api_client.post("/v2/orders", {"symbol": "ACME", "qty": 1, "side": "buy", "type": "limit",
                                       "time_in_force": "day", "limit_price": price}, format="json", **headers)

    with django_assert_num_queries(1):
        response = api_client.get("/v2/orders?status=all&symbols=ACME", **headers)

    assert response.status_code == 200 and len(response.json()) == 3


def test_get_orders_nested_is_two_queries_whatever_the_number_of_classes(api_client, trader_with_key,
                                                                          alpaca_instrument,
                                                                          django_assert_num_queries):
    _, key, secret = trader_with_key(cash="10000")
    headers = {"HTTP_APCA_API_KEY_ID": key, "HTTP_APCA_API_SECRET_KEY": secret}
    for price in (97, 98, 99):
        response = api_client.post("/v2/orders", {
            "symbol": "ACME", "qty": 1, "side": "buy", "type": "limit", "time_in_force": "gtc", "limit_price": price,
            "order_class": "bracket", "take_profit": {"limit_price": 105}, "stop_loss": {"stop_price": 90}},
            format="json", **headers)
        assert response.status_code == 200 and len(response.json()["legs"]) == 2, response.content

    with django_assert_num_queries(2):  # the first orders, then all their legs
        response = api_client.get("/v2/orders?status=all&nested=true", **headers)

    orders = response.json()
    assert response.status_code == 200 and [len(o["legs"]) for o in orders] == [2, 2, 2]
    assert {leg["status"] for o in orders for leg in o["legs"]} == {"held"}
