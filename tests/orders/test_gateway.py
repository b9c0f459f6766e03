"""The order gateway (orders/api/gateway.py): what it answers alone must read exactly as Django's answer would,
and everything it cannot answer alone must reach Django untouched.

Requests go through the real ASGI stack (the gateway in front of Django's ASGI handler) with real Redis and
Postgres; the gateway's own connections see only committed rows, hence transactional tests.
"""
import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.core.asgi import get_asgi_application
from django.test import override_settings

from accounts.services import api_key_create, api_key_revoke, jwt_issue
from orders.api.gateway import OrderGateway
from orders.models import Order, OrderEvent
from orders.selectors import instrument_get
from outbox.models import OutboxEvent
from tests.trading_fixtures import assert_books_balanced

ORDER = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": "10", "limit_price": "100.00"}

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """Django's ASGI handler, noting each request it is given (the ones the gateway passed on)."""

    def __init__(self, django):
        self.django = django
        self.seen = 0

    async def __call__(self, scope, receive, send):
        self.seen += 1
        return await self.django(scope, receive, send)


@pytest.fixture(scope="module")
def django_app():
    return get_asgi_application()


@pytest.fixture
def gateway(django_app):
    recorder = Recorder(django_app)
    gateway = OrderGateway(recorder)
    gateway.recorder = recorder
    return gateway


def send(app, requests: list[dict], *, concurrently: bool = False) -> list[dict]:
    """POST each {"auth", "body", "headers"} through `app`; the replies, each with `django`: Django answered it.
    The instrument is read just before (the gateway answers only for one this process read < 1 s ago)."""
    instrument_get("ACME")
    recorder = getattr(app, "recorder", None)

    async def one(request):
        body = request.get("raw")
        if body is None:
            body = json.dumps(request.get("body", ORDER)).encode()
        named = {"host": "testserver", "content-type": "application/json", "content-length": str(len(body)),
                 **{k.lower(): v for k, v in request.get("headers", {}).items()}}
        headers = [(k.encode(), v.encode()) for k, v in named.items()] + request.get("more_headers", [])
        if request.get("auth"):
            headers.append((b"authorization", request["auth"].encode()))
        before = recorder.seen if recorder else 0
        reply = await HttpCommunicator(app, "POST", "/api/v1/orders", body=body, headers=headers).get_response(
            timeout=20)
        reply["headers"] = {k.decode().lower(): v.decode() for k, v in reply["headers"]}
        json_reply = reply["headers"].get("content-type") == "application/json"
        reply["json"] = json.loads(reply["body"]) if json_reply else None  # DisallowedHost: Django's HTML 400
        reply["django"] = recorder is None or recorder.seen > before
        return reply

    async def run():
        try:
            if concurrently:
                return list(await asyncio.gather(*(one(r) for r in requests)))
            return [await one(r) for r in requests]
        finally:
            if isinstance(app, OrderGateway):
                await app.aclose()

    return async_to_sync(run)()


def api_key_auth(user, scope="trade") -> str:
    created = api_key_create(user=user, name="bot", scope=scope)
    return f"ApiKey {created.api_key.key_id}:{created.secret}"


def test_a_key_seen_once_is_answered_by_the_gateway_with_the_ack(gateway, instrument, make_trader):
    auth = api_key_auth(make_trader(cash="50000"))

    first, second = send(gateway, [{"auth": auth}, {"auth": auth, "headers": {"X-Request-ID": "trace-9"}}])

    assert first["django"] and not second["django"], "the first request caches the key; the second needs no Django"
    assert first["status"] == second["status"] == 201, second["json"]
    ack = second["json"]
    assert set(ack) == set(first["json"])
    assert ack["status"] == "new" and ack["version"] == 1 and ack["client_order_id"] == str(ack["id"])
    order = Order.objects.get(pk=ack["id"])
    assert str(order.reserved_amount) == ack["reserved_amount"] and order.leaves_qty == Decimal("10")
    assert OrderEvent.objects.filter(order=order).count() == 1
    assert OutboxEvent.objects.filter(topic="order.created", aggregate_id=str(order.pk)).exists()
    headers = second["headers"]
    assert headers["x-request-id"] == "trace-9"
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
    assert int(headers["x-ratelimit-remaining"]) == int(first["headers"]["x-ratelimit-remaining"]) - 1
    assert {k for k in first["headers"] if k != "vary"} <= set(headers) | {"cross-origin-opener-policy"}
    assert_books_balanced()


def test_a_token_places_and_a_repeated_client_order_id_returns_the_same_order(gateway, instrument, make_trader):
    auth = f"Bearer {jwt_issue(user=make_trader(cash='50000'))['access']}"
    body = {**ORDER, "client_order_id": "t-1"}

    replies = send(gateway, [{"auth": auth, "body": {**ORDER, "client_order_id": "t-0"}},
                             {"auth": auth, "body": body}, {"auth": auth, "body": body}])

    assert [r["django"] for r in replies] == [True, False, False]
    assert [r["status"] for r in replies] == [201, 201, 200]
    assert replies[2]["json"] == replies[1]["json"]
    assert Order.objects.count() == 2
    assert_books_balanced()


@pytest.mark.parametrize("body", [
    {**ORDER, "qty": "abc"},
    {**ORDER, "side": "short", "leverage": 10},
    {**ORDER, "limit_price": "100.001"},
    {**ORDER, "limit_price": "150.00"},
    {**ORDER, "qty": "400"},
    {**ORDER, "type": "market", "limit_price": None, "qty": "400"},
    {**ORDER, "side": "sell"},
    "[1]",
    "{",
])
def test_refusals_read_exactly_as_djangos_and_write_nothing(gateway, instrument, make_trader, body):
    auth = api_key_auth(make_trader(cash="1000"))
    request = {"auth": auth, **({"raw": body.encode()} if isinstance(body, str) else {"body": body})}

    warm, by_gateway = send(gateway, [{"auth": auth, "body": {**ORDER, "symbol": "NOPE"}}, request])
    (by_django,) = send(gateway.recorder.django, [request])

    assert warm["django"] and not by_gateway["django"]
    assert by_gateway["status"] == by_django["status"] and by_gateway["status"] in (400, 422)
    assert by_gateway["json"] == by_django["json"]
    assert Order.objects.count() == 0
    assert_books_balanced()


@override_settings(RATE_LIMITS={"orders": "3/min"})
def test_a_wrong_secret_goes_to_django_and_does_not_count_against_the_owner(gateway, instrument, make_trader):
    auth = api_key_auth(make_trader(cash="50000"))
    wrong = auth[:-4] + ("aaaa" if not auth.endswith("aaaa") else "bbbb")
    small = {**ORDER, "qty": "1"}

    replies = send(gateway, [{"auth": auth, "body": small}, *[{"auth": wrong, "body": small}] * 4,
                             {"auth": auth, "body": small}, {"auth": auth, "body": small},
                             {"auth": auth, "body": small}])

    assert [r["status"] for r in replies] == [201, 401, 401, 401, 401, 201, 201, 429]
    assert all(r["django"] for r in replies[1:5]) and not replies[-1]["django"]
    assert replies[-1]["json"]["code"] == "rate_limited" and int(replies[-1]["headers"]["retry-after"]) > 0
    assert Order.objects.count() == 3


def test_a_revoked_key_or_a_locked_trader_is_refused_at_once(gateway, instrument, make_trader, staff):
    trader = make_trader(cash="50000")
    created = api_key_create(user=trader, name="bot", scope="trade")
    auth = f"ApiKey {created.api_key.key_id}:{created.secret}"
    send(gateway, [{"auth": auth}, {"auth": auth}])

    api_key_revoke(api_key=created.api_key)
    (revoked,) = send(gateway, [{"auth": auth}])

    token = f"Bearer {jwt_issue(user=trader)['access']}"
    send(gateway, [{"auth": token}])
    from accounts.services import user_lock

    user_lock(user=trader, actor=staff, reason="test")
    (locked,) = send(gateway, [{"auth": token}])

    assert revoked["status"] == 401 and locked["status"] in (401, 403)
    assert Order.objects.count() == 3
    assert_books_balanced()


def test_what_the_gateway_cannot_answer_alone_reaches_django_whole(gateway, instrument, make_trader):
    auth = api_key_auth(make_trader(cash="50000"))
    big = json.dumps({**ORDER, "client_order_id": "big", "padding": "x" * 70_000}).encode()

    replies = send(gateway, [
        {"auth": auth},
        {"auth": auth, "headers": {"Idempotency-Key": "idem-1"}},  # the DRF view keeps idempotency records
        {"auth": auth, "headers": {"Host": "evil.example"}},
        {"auth": auth, "more_headers": [(b"host", b"evil.example")]},  # a second Host: Django joins the two
        {"auth": auth, "raw": big},
        {"auth": auth, "body": {**ORDER, "symbol": "ZZZZ"}},  # a symbol this process has not read
        {"auth": "Basic dXNlcjpwYXNz"},
    ])

    assert [r["django"] for r in replies] == [True] * len(replies), [(r["status"], r["json"]) for r in replies]
    assert [r["status"] for r in replies] == [201, 201, 400, 400, 400, 422, 401]
    assert replies[4]["json"]["code"] == "validation_error" and "padding" in str(replies[4]["json"]["details"])
    assert Order.objects.count() == 2


def test_twenty_concurrent_orders_over_buying_power_accept_exactly_the_affordable(gateway, instrument, make_trader):
    auth = api_key_auth(make_trader(cash="10100"))  # ten orders of 1,000 (+ fees) fit; not eleven
    send(gateway, [{"auth": auth, "body": {**ORDER, "symbol": "NOPE"}}])

    replies = send(gateway, [{"auth": auth, "body": {**ORDER, "qty": "10", "client_order_id": f"c{i}"}}
                             for i in range(20)], concurrently=True)

    assert not any(r["django"] for r in replies)
    accepted = [r for r in replies if r["status"] == 201]
    refused = [r for r in replies if r["status"] == 422]
    assert len(accepted) + len(refused) == 20
    assert {r["json"]["code"] for r in refused} == {"insufficient_buying_power"}
    reserved = sum(Decimal(r["json"]["reserved_amount"]) for r in accepted)
    assert reserved <= Decimal("10100") < reserved + Decimal(accepted[0]["json"]["reserved_amount"])
    assert Order.objects.count() == len(accepted)
    assert_books_balanced()


def test_the_gateway_counts_its_answers_in_djangos_request_metrics(gateway, instrument, make_trader):
    from prometheus_client import REGISTRY

    def count(status):
        return sum(s.value for m in REGISTRY.collect() for s in m.samples
                   if s.name == "django_http_responses_total_by_status_view_method_total"
                   and s.labels.get("view") == "v1:orders" and s.labels.get("status") == status)

    auth = api_key_auth(make_trader(cash="50000"))
    before = count("201"), count("422")

    send(gateway, [{"auth": auth}, {"auth": auth}, {"auth": auth, "body": {**ORDER, "qty": "0.5"}}])

    assert (count("201"), count("422")) == (before[0] + 2, before[1] + 1)


@override_settings(RATE_LIMITS={"orders": "3/min"})
def test_a_revoked_token_or_a_refused_caller_does_not_spend_the_owners_quota(gateway, instrument, make_trader):
    from accounts.services import token_family_revoke

    trader = make_trader(cash="50000")
    small = {**ORDER, "qty": "1"}
    pair = jwt_issue(user=trader)
    revoked = f"Bearer {pair['access']}"
    read_only = api_key_auth(trader, scope="read")
    first = send(gateway, [{"auth": revoked, "body": small}, {"auth": revoked, "body": small},
                           *[{"auth": read_only, "body": small}] * 3])
    token_family_revoke(refresh=pair["refresh"])

    refused = send(gateway, [{"auth": revoked, "body": small}] * 4)
    fresh = f"Bearer {jwt_issue(user=trader)['access']}"
    last = send(gateway, [{"auth": fresh, "body": small}] * 2)

    assert [r["status"] for r in first] == [201, 201, 403, 403, 403]
    assert not first[-1]["django"], "a read-only key verified once is refused by the gateway itself"
    assert [r["status"] for r in refused] == [401] * 4
    assert [r["status"] for r in last] == [201, 429], "two orders and one more: the refusals counted nothing"
    assert Order.objects.count() == 3
    assert_books_balanced()
