"""Unhandled exceptions and Django's own error answers in each surface's shape; dependency faults answer 503 with
Retry-After; the Redis circuit breaker (ADR 009)."""
import json
import time

import django.db
import pytest
import redis
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpResponse, HttpResponseNotFound
from django.test import RequestFactory

from brokerx.error_responses import ErrorResponseMiddleware
from brokerx.faults import dependency_fault
from brokerx.redis_circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpen, GuardedConnection


def _answer(path: str, exc: Exception | None = None, response: HttpResponse | None = None):
    def view(request):
        if exc is not None:
            raise exc
        return response

    request = RequestFactory().post(path, data="{}", content_type="application/json")
    request.request_id = "rid-123"
    # As in Django's handler: the layer below the middleware turns the exception into a response.
    return ErrorResponseMiddleware(convert_exception_to_response(view))(request)


@pytest.mark.parametrize("exc", [django.db.OperationalError("server closed the connection"),
                                 django.db.InterfaceError("connection already closed"),
                                 redis.TimeoutError("Timeout reading"), CircuitOpen("open")])
def test_a_dependency_fault_on_the_native_api_is_a_json_503_with_retry_after(exc):
    response = _answer("/api/v1/orders", exc)
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    body = json.loads(response.content)
    assert body["code"] == "service_unavailable"
    assert body["details"]["request_id"] == "rid-123"
    assert set(body) == {"code", "message", "details"}


def test_a_bug_on_the_native_api_is_a_json_500_with_the_request_id():
    response = _answer("/api/v1/portfolio", ValueError("bug"))
    assert response.status_code == 500
    body = json.loads(response.content)
    assert body["code"] == "server_error" and body["details"] == {"request_id": "rid-123"}


def test_the_alpaca_surface_answers_in_alpacas_shape():
    response = _answer("/v2/orders", django.db.OperationalError("down"))
    assert response.status_code == 503 and response["Retry-After"] == "2"
    body = json.loads(response.content)
    assert set(body) == {"code", "message"} and body["code"] == 50300000
    bug = json.loads(_answer("/v2/account", KeyError("x")).content)
    assert bug["code"] == 50000000 and "rid-123" in bug["message"]


def test_pages_get_the_sites_503_page_and_bugs_its_500_page():
    response = _answer("/trade/", redis.ConnectionError("refused"))
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert b"Back in a moment" in response.content and b"BrokerX" in response.content
    response = _answer("/trade/", ValueError("bug"))
    assert response.status_code == 500 and b"Something went wrong" in response.content


def test_djangos_html_errors_on_api_paths_are_reshaped():
    response = _answer("/api/v1/nothing-here", response=HttpResponseNotFound("<h1>Not Found</h1>"))
    assert response.status_code == 404
    assert json.loads(response.content)["code"] == "not_found"


def test_a_wrapped_fault_is_recognised_by_its_cause():
    try:
        try:
            raise redis.TimeoutError("slow")
        except redis.TimeoutError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert dependency_fault(outer) == "redis"
    assert dependency_fault(ValueError()) is None


def test_the_circuit_opens_after_consecutive_failures_and_a_probe_closes_it():
    breaker = CircuitBreaker("test", failures=3, reset_seconds=0.2)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.success()
    for _ in range(3):
        breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    time.sleep(0.25)
    assert breaker.allow()  # the probe
    assert breaker.state == HALF_OPEN
    breaker.failure()  # the probe failed: open again
    assert breaker.state == OPEN and not breaker.allow()
    time.sleep(0.25)
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and breaker.allow()


def test_an_open_circuit_refuses_redis_calls_at_once():
    breaker = CircuitBreaker("test-conn", failures=1, reset_seconds=30)

    class Guarded(GuardedConnection):
        pass

    Guarded.breaker = breaker
    client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=Guarded, host="127.0.0.1", port=1,
                                                              socket_connect_timeout=0.5))
    with pytest.raises(redis.ConnectionError):
        client.ping()  # refused: counts as a failure, opens the circuit
    assert breaker.state == OPEN
    started = time.perf_counter()
    with pytest.raises(CircuitOpen):
        client.ping()
    assert time.perf_counter() - started < 0.05


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/fills?exec_type=tr%00ade", "/v2/orders?symbols=AA%00PL"])
def test_text_with_a_nul_character_is_a_400_in_the_surfaces_shape(make_trader, path):
    from rest_framework.test import APIClient

    from accounts.services import api_key_create

    key = api_key_create(user=make_trader(cash="0"), name="nul", scope="read")
    client = APIClient()
    client.raise_request_exception = False  # answered as a server would, not re-raised into the test
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}",
                       HTTP_APCA_API_KEY_ID=key.api_key.key_id, HTTP_APCA_API_SECRET_KEY=key.secret)

    response = client.get(path)

    assert response.status_code == 400, response.content
    body = response.json()
    assert "nul (0x00)" in body["message"].lower()
    assert body["code"] == ("malformed_request" if path.startswith("/api/") else 40000000)
