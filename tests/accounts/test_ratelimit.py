"""brokerx.ratelimit: Redis fixed windows, 429 + Retry-After in the error shape, X-RateLimit-* headers."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from brokerx import ratelimit
from brokerx.ratelimit import RedisRateThrottle, parse_rate, rate_limit
from tests.accounts.conftest import url
from tests.factories import UserFactory


class LimitedView(APIView):
    throttle_classes = [RedisRateThrottle]
    throttle_scope = "test-limited"
    throttle_rate = "2/min"

    def get(self, request):
        return Response({"ok": True})


def _get(user):
    request = APIRequestFactory().get("/x")
    force_authenticate(request, user=user)
    return LimitedView.as_view()(request)


def test_parse_rate():
    assert parse_rate("5/min") == ratelimit.Rate(5, 60)
    assert parse_rate("10/30s") == ratelimit.Rate(10, 30)
    assert parse_rate("100/hour") == ratelimit.Rate(100, 3600)
    with pytest.raises(ValueError):
        parse_rate("lots")


def test_hit_counts_in_one_window():
    rate = ratelimit.Rate(2, 60)
    usages = [ratelimit.hit("unit", rate) for _ in range(3)]
    assert [u.allowed for u in usages] == [True, True, False]
    assert [u.remaining for u in usages] == [1, 0, 0]
    assert 0 < usages[-1].reset_in <= 60
    assert ratelimit.peek("unit")[0] == 3


def test_a_window_ends_by_itself_and_the_next_hit_opens_a_new_one():
    rate = ratelimit.Rate(1, 1)
    assert ratelimit.hit("short", rate).allowed
    assert not ratelimit.hit("short", rate).allowed
    time.sleep(1.2)
    usage = ratelimit.hit("short", rate)
    assert usage.allowed and usage.remaining == 0


def test_a_counter_left_without_expiry_gets_one():
    from django_redis import get_redis_connection

    redis_key = ratelimit.redis_key("stale")
    get_redis_connection("default").set(redis_key, 5)  # no TTL: would otherwise block the key forever
    usage = ratelimit.hit("stale", ratelimit.Rate(10, 30))
    assert usage.remaining == 4 and 0 < usage.reset_in <= 30
    assert 0 < get_redis_connection("default").ttl(redis_key) <= 30


def test_the_script_is_loaded_again_after_a_redis_flush():
    from django_redis import get_redis_connection

    ratelimit.hit("flushed", ratelimit.Rate(5, 60))
    get_redis_connection("default").script_flush()
    assert ratelimit.hit("flushed", ratelimit.Rate(5, 60)).remaining == 3


def test_concurrent_hits_allow_exactly_the_limit():
    rate = ratelimit.Rate(10, 60)
    barrier = threading.Barrier(8)

    def burst(_):
        barrier.wait()
        return [ratelimit.hit("race", rate).allowed for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        results = [allowed for batch in pool.map(burst, range(8)) for allowed in batch]
    assert results.count(True) == 10
    assert ratelimit.peek("race")[0] == 40


@pytest.mark.django_db
def test_throttle_is_per_user_and_answers_429_with_retry_after():
    alice, bob = UserFactory(), UserFactory()
    responses = [_get(alice) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    limited = responses[-1]
    assert limited.data["code"] == "rate_limited" and limited.data["details"]["retry_after"] > 0
    assert int(limited["Retry-After"]) > 0
    assert _get(bob).status_code == 200


@pytest.mark.django_db
@override_settings(RATE_LIMITS={"test-limited": "1/min"})
def test_settings_override_a_views_rate():
    user = UserFactory()
    assert [_get(user).status_code for _ in range(2)] == [200, 429]


@pytest.mark.django_db
def test_headers_show_the_limit(authed_client):
    response = authed_client.get(url("auth-me"))
    assert response["X-RateLimit-Limit"] == "120"
    assert int(response["X-RateLimit-Remaining"]) == 119
    assert int(response["X-RateLimit-Reset"]) > 0


def test_decorator_for_plain_views():
    @rate_limit(scope="test-plain", rate="1/min", key="ip")
    def view(request):
        return HttpResponse("ok")

    first = view(RequestFactory().get("/", REMOTE_ADDR="10.9.9.9"))
    second = view(RequestFactory().get("/", REMOTE_ADDR="10.9.9.9"))
    other_ip = view(RequestFactory().get("/", REMOTE_ADDR="10.9.9.8"))

    assert (first.status_code, second.status_code, other_ip.status_code) == (200, 429, 200)
    assert int(second["Retry-After"]) > 0 and b"rate_limited" in second.content
