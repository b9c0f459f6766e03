"""OrderEntryMiddleware: token and API-key orders answered ahead of the browser middleware, through order entry."""
from decimal import Decimal

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.services import api_key_create, api_key_revoke, jwt_issue
from orders.models import Order
from orders.services import OrderRequest, order_place
from tests.trading_fixtures import assert_books_balanced

ORDER = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "10", "limit_price": "100.00"}


def key_client(user, scope="trade"):
    key = api_key_create(user=user, name="bot", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")
    client.key = key
    return client


@pytest.mark.django_db
def test_an_api_key_places_an_order_and_gets_the_ack(instrument, make_trader):
    client = key_client(make_trader(cash="50000"))

    response = client.post("/api/v1/orders", ORDER, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "new" and body["version"] == 1 and Decimal(body["leaves_qty"]) == 10
    assert body["client_order_id"] == str(body["id"])
    assert response["X-RateLimit-Limit"] and response["X-RateLimit-Remaining"]
    assert Order.objects.get(pk=body["id"]).reserved_amount == Decimal(body["reserved_amount"])
    assert_books_balanced()


@pytest.mark.django_db
def test_a_jwt_places_an_order_and_a_repeat_client_order_id_returns_it(instrument, make_trader):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issue(user=make_trader(cash='50000'))['access']}")

    first = client.post("/api/v1/orders", {**ORDER, "client_order_id": "j-1"}, format="json")
    again = client.post("/api/v1/orders", {**ORDER, "client_order_id": "j-1"}, format="json")

    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status", "code"), [
    ({**ORDER, "qty": "abc"}, 400, "validation_error"),
    ({**ORDER, "qty": 1.00001}, 400, "validation_error"),
    ({**ORDER, "side": "short"}, 400, "validation_error"),
    ({**ORDER, "leverage": 10}, 400, "validation_error"),
    ({**ORDER, "client_order_id": "no spaces"}, 400, "validation_error"),
    ({**ORDER, "symbol": "NOPE"}, 422, "unknown_symbol"),
    ({**ORDER, "limit_price": "100.001"}, 422, "invalid_tick_size"),
    ({**ORDER, "qty": "400"}, 422, "insufficient_buying_power"),
])
def test_bad_input_gets_the_error_shape_and_writes_nothing(instrument, make_trader, body, status, code):
    client = key_client(make_trader(cash="1000"))

    response = client.post("/api/v1/orders", body, format="json")

    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["message"]
    assert Order.objects.count() == 0
    assert_books_balanced()


@pytest.mark.django_db
def test_malformed_json_and_bad_credentials(instrument, make_trader):
    client = key_client(make_trader(cash="1000"))
    assert client.post("/api/v1/orders", "{", content_type="application/json").json()["code"] == "malformed_request"
    assert client.post("/api/v1/orders", "[1]", content_type="application/json").status_code == 400

    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="ApiKey BXnope:nope")
    assert bad.post("/api/v1/orders", ORDER, format="json").status_code == 401
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert bad.post("/api/v1/orders", ORDER, format="json").status_code == 401


@pytest.mark.django_db
def test_a_read_only_or_revoked_key_cannot_trade(instrument, make_trader):
    trader = make_trader(cash="50000")
    read_only = key_client(trader, scope="read")
    assert read_only.post("/api/v1/orders", ORDER, format="json").json()["code"] == "insufficient_scope"

    trading = key_client(trader)
    api_key_revoke(api_key=trading.key.api_key)
    assert trading.post("/api/v1/orders", ORDER, format="json").status_code == 401
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_an_unverified_trader_cannot_trade(instrument, make_trader):
    trader = make_trader(cash="50000")
    client = key_client(trader)
    trader.email_verified_at = None
    trader.save(update_fields=["email_verified_at"])

    response = client.post("/api/v1/orders", ORDER, format="json")

    assert response.status_code == 403 and response.json()["code"] == "email_not_verified"


@pytest.mark.django_db
@override_settings(RATE_LIMITS={"orders": "3/min"})
def test_order_entry_is_rate_limited_per_user(instrument, make_trader):
    client = key_client(make_trader(cash="50000"))

    statuses = [client.post("/api/v1/orders", {**ORDER, "qty": "1"}, format="json") for _ in range(4)]

    assert [r.status_code for r in statuses] == [201, 201, 201, 429]
    assert int(statuses[-1]["Retry-After"]) > 0 and statuses[-1].json()["code"] == "rate_limited"
    assert Order.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_accepting_an_order_is_one_database_round_trip(instrument, make_trader, django_assert_num_queries):
    trader = make_trader(cash="50000")
    request = OrderRequest(symbol="ACME", side="buy", type="limit", time_in_force="day", qty=Decimal("1"),
                           limit_price=Decimal("100.00"))
    order_place(user=trader, request=request)  # warms the instrument cache

    with django_assert_num_queries(1):
        order, created = order_place(user=trader, request=request)

    assert created and Order.objects.get(pk=order.pk).status == "new"
    assert_books_balanced()


def _samples(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return sum(s.value for metric in REGISTRY.collect() for s in metric.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.django_db
def test_order_entry_runs_ahead_of_the_browser_middleware_and_keeps_headers_and_metrics(instrument, make_trader):
    client = key_client(make_trader(cash="50000"))
    by_view = {"view": "v1:orders", "method": "POST"}
    before = _samples("django_http_responses_total_by_status_view_method_total", status="201", **by_view)

    response = client.post("/api/v1/orders", ORDER, format="json", HTTP_X_REQUEST_ID="trace-123")

    assert response.status_code == 201
    assert response["X-Request-ID"] == "trace-123"
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still answers
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert response.wsgi_request.resolver_match.view_name == "v1:orders"
    assert not hasattr(response.wsgi_request, "session"), "served before SessionMiddleware"
    assert _samples("django_http_responses_total_by_status_view_method_total", status="201", **by_view) == before + 1


@pytest.mark.django_db
def test_order_entry_checks_the_host_and_writes_nothing_for_a_foreign_one(instrument, make_trader):
    client = key_client(make_trader(cash="50000"))

    response = client.post("/api/v1/orders", ORDER, format="json", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_other_requests_on_the_orders_path_still_go_through_drf(instrument, make_trader):
    client = key_client(make_trader(cash="50000"))
    client.post("/api/v1/orders", ORDER, format="json")

    listing = client.get("/api/v1/orders")

    assert listing.status_code == 200 and listing.json()["results"][0]["symbol"] == "ACME"


@pytest.mark.django_db
def test_order_entry_under_a_script_prefix(instrument, make_trader):
    from django.urls import set_script_prefix

    client = key_client(make_trader(cash="50000"))
    try:
        # The first request of a process deployed under /brokerx/: Django's WSGI handler sets the prefix from
        # SCRIPT_NAME before the middleware runs (the test client's handler does not, so it is set here).
        set_script_prefix("/brokerx/")
        response = client.post("/api/v1/orders", ORDER, format="json", SCRIPT_NAME="/brokerx")
    finally:
        set_script_prefix("/")
    assert response.status_code == 201
    assert not hasattr(response.wsgi_request, "session"), "served by OrderEntryMiddleware, not DRF"
