"""Redis rate limits per user (or client IP) and endpoint: 429 with Retry-After, X-RateLimit-* headers on every reply.

Counters are fixed windows anchored at the first hit of a key: one Lua script (`_HIT`, run by EVALSHA) counts
the hit, starts the window's expiry on a key that has none and returns the count and the time left, atomically
and in one command, so the key disappears by itself when its window ends.

Usage:
- DRF: add `RedisRateThrottle` (or a subclass) to `throttle_classes`; the view may set `throttle_scope`
  and `throttle_rate` ("20/min"); `settings.RATE_LIMITS[scope]` overrides the view's rate.
- Plain Django views: `@rate_limit(scope="signup", rate="5/hour", key="ip")`.
- Anything else: `hit(key, parse_rate("5/min"))` returns a `Usage`.

Without Redis (down, too slow, or its circuit open) a limit fails open or closed, decided per use (ADR 009): the
order limit and the per-user API limits fail open (`Usage.enforced` false, no X-RateLimit-* headers; Postgres
keeps every account's own checks), the per-IP limits of anonymous endpoints (sign-up, sign-in) fail closed: the
Redis fault propagates and the request is answered 503 with Retry-After (brokerx/error_responses.py).
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_redis import get_redis_connection
from prometheus_client import Counter
from redis.commands.core import Script
from rest_framework.throttling import BaseThrottle

from brokerx.api.errors import ApiError, error_body
from brokerx.faults import REDIS_FAULTS
from brokerx.middleware import SyncAndAsyncMiddleware

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
          "d": 86400, "day": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")
_USAGE_ATTR = "_ratelimit_usage"


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds


@dataclass(frozen=True)
class Usage:
    allowed: bool
    limit: int
    remaining: int
    reset_in: int  # seconds until the window ends
    enforced: bool = True  # False: Redis was unavailable and the limit failed open


rate_limits_unenforced = Counter("rate_limit_unenforced_total", "Rate-limit hits let through without Redis")


@functools.lru_cache(maxsize=256)
def parse_rate(rate: str) -> Rate:
    """'5/min', '100/hour', '10/30s' -> Rate."""
    match = _RATE_RE.match(rate.lower())
    if not match or match.group(3) not in _UNITS:
        raise ValueError(f"Invalid rate {rate!r}; expected e.g. '5/min' or '10/30s'")
    count, multiplier, unit = match.groups()
    return Rate(limit=int(count), window=int(multiplier or 1) * _UNITS[unit])


def redis_key(key: str) -> str:
    # The cache's own prefix keeps these keys inside this deployment's (and test run's) namespace.
    return cache.make_key(f"rl:{key}")


# KEYS[1] counter; ARGV[1] cost, ARGV[2] window in seconds -> {count, seconds left}. One command per hit (a
# MULTI pipeline of three commands cost the web process several times the CPU to pack and parse).
_HIT_LUA = b"""
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""
_HIT = Script(None, _HIT_LUA)


def hit(key: str, rate: Rate, *, cost: int = 1, fail_open: bool = False) -> Usage:
    """Count `cost` against `key` and say whether the caller is still within `rate`. Without Redis: an allowed,
    unenforced Usage when `fail_open`, else the Redis fault is raised."""
    try:
        count, ttl = _HIT(keys=[redis_key(key)], args=[cost, rate.window], client=get_redis_connection("default"))
    except REDIS_FAULTS:
        if not fail_open:
            raise
        rate_limits_unenforced.inc()
        return Usage(allowed=True, limit=rate.limit, remaining=rate.limit, reset_in=rate.window, enforced=False)
    reset_in = ttl if ttl > 0 else rate.window
    return Usage(allowed=count <= rate.limit, limit=rate.limit, remaining=max(0, rate.limit - count), reset_in=reset_in)


def peek(key: str) -> tuple[int, int]:
    """(count, seconds left) of `key` without counting a hit; (0, 0) when no window is open."""
    counter = redis_key(key)
    pipe = get_redis_connection("default").pipeline(transaction=False)
    pipe.get(counter)
    pipe.ttl(counter)
    value, ttl = pipe.execute()
    return (int(value or 0), max(0, ttl or 0))


def reset(key: str) -> None:
    get_redis_connection("default").delete(redis_key(key))


def client_ip(request: HttpRequest) -> str:
    """The caller's address; X-Forwarded-For is trusted only for the number of proxies in NUM_PROXIES."""
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES")
    remote_addr = request.META.get("REMOTE_ADDR") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies and forwarded:
        addrs = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addrs:
            return addrs[-min(num_proxies, len(addrs))]
    return remote_addr


class RateLimited(ApiError):
    status_code = 429
    default_code = "rate_limited"

    def __init__(self, usage: Usage, *, scope: str):
        super().__init__(
            f"Rate limit exceeded: {usage.limit} requests per window. Retry in {usage.reset_in} s.",
            details={"retry_after": usage.reset_in, "limit": usage.limit, "scope": scope},
        )
        self.wait = usage.reset_in  # the error handler turns it into Retry-After


def remember_usage(request: HttpRequest, usage: Usage) -> None:
    """Note a limit the request passed through, for RateLimitHeadersMiddleware's X-RateLimit-* headers."""
    # When several limits apply, the headers show the tightest one; one not enforced promises nothing.
    if not usage.enforced:
        return
    request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    current = getattr(request, _USAGE_ATTR, None)
    if current is None or usage.remaining < current.remaining:
        setattr(request, _USAGE_ATTR, usage)


def _identity(request: HttpRequest, user, key: str) -> str:
    if key == "user" and user is not None and user.is_authenticated:
        return f"u{user.pk}"
    return f"ip{client_ip(request)}"


class RedisRateThrottle(BaseThrottle):
    """DRF throttle: per authenticated user (else per IP) and per scope; raises 429 in the native error shape."""

    scope: str | None = None
    rate: str = "120/min"
    key: str = "user"  # "user" (falls back to IP for anonymous callers) or "ip"
    fail_open: bool = True  # without Redis, signed-in callers go on (Postgres checks their account anyway)

    def allow_request(self, request, view) -> bool:
        scope = self.scope or getattr(view, "throttle_scope", None) or type(view).__name__
        rate = parse_rate(settings.RATE_LIMITS.get(scope) or getattr(view, "throttle_rate", None) or self.rate)
        django_request = getattr(request, "_request", request)
        usage = hit(f"{scope}:{_identity(django_request, request.user, self.key)}", rate, fail_open=self.fail_open)
        remember_usage(django_request, usage)
        if not usage.allowed:
            raise RateLimited(usage, scope=scope)
        return True


class IpRateThrottle(RedisRateThrottle):
    """The same limit keyed by client IP only (for anonymous endpoints: sign-up, login, resend). Fails closed:
    without Redis nothing would slow down credential stuffing or sign-up abuse, so those endpoints answer 503."""

    key = "ip"
    fail_open = False


def rate_limit(*, scope: str, rate: str, key: str = "user", fail_open: bool = False,
               on_limited: Callable[[HttpRequest, Usage], HttpResponse] | None = None):
    """Decorator for plain Django views; answers 429 (JSON error shape unless `on_limited` renders something).
    Without Redis the view is answered 503 unless `fail_open`."""
    parsed = parse_rate(rate)

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            effective = parse_rate(settings.RATE_LIMITS[scope]) if scope in settings.RATE_LIMITS else parsed
            usage = hit(f"{scope}:{_identity(request, getattr(request, 'user', None), key)}", effective,
                        fail_open=fail_open)
            remember_usage(request, usage)
            if not usage.allowed:
                if on_limited is not None:
                    response = on_limited(request, usage)
                else:
                    exc = RateLimited(usage, scope=scope)
                    response = JsonResponse(error_body(exc.code, exc.message, exc.details), status=429)
                response["Retry-After"] = str(usage.reset_in)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class RateLimitHeadersMiddleware(SyncAndAsyncMiddleware):
    """Adds X-RateLimit-Limit / -Remaining / -Reset to responses of requests that passed a rate limit."""

    def after(self, request, response):
        usage = getattr(request, _USAGE_ATTR, None)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage.limit)
            response["X-RateLimit-Remaining"] = str(usage.remaining)
            response["X-RateLimit-Reset"] = str(math.ceil(usage.reset_in))
        return response
