"""The order gateway: token and API-key `POST /api/v1/orders` answered on the web process's event loop.

HTTP otherwise reaches Django through a pool of threads (brokerx/asgi.py). For order entry that hand-off was
most of the latency: timing the phases of the accept path at 300 orders/s with the workers paused, a request
spent ~1 ms (p50) to ~12 ms (p99) in each step that holds no I/O of its own (reading the body from the event
loop, parsing it) and as long again around each Redis and Postgres call, all of it waiting to get the
interpreter back from the other threads. Here one coroutine does the same work with no thread: the cached
credentials and the rate-limit hit in one Redis round trip (two for a key this process has not verified yet),
the checks in Python, `orders_place` on an asyncio Postgres connection, the ACK.

It is off unless `ORDER_GATEWAY` is set (ADR 007). With the web processes alone on the cores it costs ~30% less
web CPU per order and accepts ~25% more orders/s than the thread pool; on one 2-core box shared with Postgres
and the workers it measured slower (the event loop's one thread queues every request behind the others' CPU
work while the workers take the cores it frees), so `make run` keeps the thread pool.

It answers only what it can answer alone; everything else goes on to Django unchanged (body included), whose
lean path (`orders/api/fast.py`) answers with the same shapes and steps:
- credentials not in the cache (a key or user not read in the last minute), failing or malformed credentials,
  an API key whose `last_used_at` is due in this process;
- an instrument this process has not read in the last second (Django's path reads and keeps it);
- a Host that is not allowed, a request Django would redirect to HTTPS, `USE_X_FORWARDED_HOST`, bodies over
  64 KiB, `Idempotency-Key`, cookies-only callers (CSRF).
What may go on to Django is decided before the rate limit counts the request, except for credentials known
before the Redis read (a signed token, a key this process verified): their hit is taken with the read, and taken
back when the cached credentials fail or the caller may not trade, as Django's path never counts those.
Both paths share the parsing, the checks, the refusals and `Placement` (orders/services.py); tests run the
same requests through both and compare.
"""
import asyncio
import hashlib
import json
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.security import SecurityMiddleware
from django.urls import get_script_prefix, reverse

from brokerx.db import deadlock_backoff
from brokerx.observability import REQUEST_ID_HEADER, request_id_from, request_id_var
from brokerx.ratelimit import HIT_LUA, redis_key, usage_of

from .. import services
from ..errors import OrderError
from ..models import Order
from ..selectors import NOT_LOCAL, instrument_get_local, order_as_dict
from . import fast

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
DEADLOCK_ATTEMPTS = 3
VIEW_NAME = "v1:orders"


_HIT_SHA = hashlib.sha1(HIT_LUA).hexdigest()  # noqa: S324  (Redis names scripts by their SHA-1)
_UNCOUNT_LUA = ("local n = tonumber(redis.call('GET', KEYS[1])) "
                "if n and n > 0 then return redis.call('DECR', KEYS[1]) end return 0")


class _Pass(Exception):
    """This request is Django's to answer."""


@dataclass(frozen=True)
class _Credential:
    cache_keys: list[str]  # read from Redis (as Django's cache stores them)
    user_id: int | None  # known before that read: a signed token's, or that of a key this process verified
    verify: Callable[[list], tuple]  # the values read -> (user, api_key or None); raises _Pass


class OrderGateway:
    """ASGI middleware in front of Django's HTTP side (see the module's docstring)."""

    def __init__(self, app):
        self.app = app
        self._path: str | None = None
        self._keys: dict = {}  # key id -> the ApiKey last verified in this process (its owner, its secret's hash)
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> _Clients

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path(scope):
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        scheme = headers.get(b"authorization", b"").strip().partition(b" ")[0].lower()
        if scheme not in (b"bearer", b"apikey") or b"idempotency-key" in headers or b"idempotency_key" in headers:
            return await self.app(scope, receive, send)
        body, ended, small = await _read_body(receive)
        if small:
            started = time.perf_counter()
            token = request_id_var.set(_request_id(headers))
            try:
                reply = await self.answer(scope, headers, body)
            except _Pass:
                reply = None
            except Exception:
                logger.exception("order gateway failed; answering 500")
                reply = fast.error_reply(500, "server_error", "The order could not be processed.")
            finally:
                request_id_var.reset(token)
            if reply is not None:
                return await self.respond(scope, headers, reply, started, send)
        await self.app(scope, _replay(body, ended, receive), send)

    def path(self, scope) -> str:
        if self._path is None:
            # The script prefix Django strips (a deployment under a sub-path) stays in the ASGI path.
            self._path = scope.get("root_path", "") + "/" + reverse(VIEW_NAME)[len(get_script_prefix()):]
        return self._path

    # --- answering ------------------------------------------------------------------------------------------

    async def answer(self, scope, headers: dict, body: bytes) -> fast.Reply:
        _check_transport(scope, headers)
        credential = self.credential(headers[b"authorization"].decode("latin-1").strip())
        order_request, invalid = fast.read_order(body, {})
        instrument = NOT_LOCAL if order_request is None else instrument_get_local(order_request.symbol)
        if order_request is not None and instrument is NOT_LOCAL:
            raise _Pass
        rate = fast.order_rate()
        if credential.user_id is None:  # nothing counts before the credentials are proven
            (values,) = await self.redis_round_trip(credential.cache_keys)
            user, api_key = credential.verify(values)
            refusal = fast.user_refusal(user, api_key)
            if refusal is not None:
                return refusal
            ((count, ttl),) = await self.redis_round_trip(count_for=user.pk, rate=rate)
        else:  # one round trip: the cached credentials, and the hit on the owner's rate limit
            values, (count, ttl) = await self.redis_round_trip(credential.cache_keys, count_for=credential.user_id,
                                                               rate=rate)
            # As Django's path, nothing counts for credentials that fail or a caller refused: the hit is taken
            # back (a revoked token's holder cannot spend its owner's quota).
            try:
                user, api_key = credential.verify(values)
            except _Pass:
                await self.uncount(credential.user_id)
                raise
            refusal = fast.user_refusal(user, api_key)
            if refusal is not None:
                await self.uncount(user.pk)
                return refusal
        usage = usage_of(count, ttl, rate)
        limit_headers = fast.rate_limit_headers(usage)
        refusal = fast.rate_limit_refusal(usage, limit_headers)
        if refusal is not None:
            return refusal
        if invalid is not None:
            status, error, _headers = invalid
            return status, error, limit_headers
        try:
            instrument, price = services.order_check_against(instrument, request=order_request)
            placement = services.Placement.of(user_id=user.pk, request=order_request, instrument=instrument,
                                              price=price)
            created, order_id = await self.place(placement)
        except OrderError as exc:
            return fast.error_reply(exc.http_status, exc.code, exc.message, exc.details, limit_headers)
        if not created:  # a repeated client_order_id: the order it placed, as it is now
            return 200, order_as_dict(await self.order_get(order_id)), limit_headers
        placement.submitted(committed=True)
        return 201, order_as_dict(placement.order(order_id)), limit_headers

    def credential(self, authorization: str) -> "_Credential":
        """What the cache must say for these credentials to hold (a malformed or bad token goes to Django)."""
        from rest_framework.exceptions import APIException

        from accounts.authentication import parse_api_key_credentials
        from accounts.selectors import api_key_cache_key, user_cache_key
        from accounts.services.api_keys import (
            api_key_last_used_due,
            api_key_secret_matches,
            api_key_verify,
            api_key_well_formed,
        )
        from accounts.services.tokens import access_token_parse, check_user_may_sign_in, family_revoked_cache_key

        django_cache = _cache()
        scheme, _, credentials = authorization.partition(" ")
        try:
            if scheme.lower() == "bearer":
                _access, user_id, family_id = access_token_parse(credentials.strip())
            else:
                key_id, secret = parse_api_key_credentials(credentials.strip())
        except APIException:
            raise _Pass from None

        if scheme.lower() == "bearer":
            def verify_token(values):
                revoked, user = values
                if revoked is not None or user is None:
                    raise _Pass
                user = django_cache.client.decode(user)
                try:
                    check_user_may_sign_in(user)
                except APIException:
                    raise _Pass from None
                return user, None

            keys = [django_cache.make_key(family_revoked_cache_key(str(family_id))),
                    django_cache.make_key(user_cache_key(user_id))]
            return _Credential(keys, user_id, verify_token)  # the signature proves the user id

        if not api_key_well_formed(key_id, secret):
            raise _Pass

        def verify_key(values):
            loaded = None if values[0] is None else django_cache.client.decode(values[0])
            if not isinstance(loaded, tuple):  # not cached, or cached as unknown
                raise _Pass
            try:
                user, api_key = api_key_verify(loaded, key_id=key_id, secret=secret)
            except APIException:
                raise _Pass from None
            if api_key_last_used_due(api_key):
                raise _Pass  # Django's path records the use
            self._keys[key_id] = api_key
            return user, api_key

        # A key this process has verified with this very secret belongs to the same owner (keys never change
        # hands); any other secret is checked before anything counts against the owner's rate limit.
        known = self._keys.get(key_id)
        owner = known.user_id if known is not None and api_key_secret_matches(known, secret) else None
        return _Credential([django_cache.make_key(api_key_cache_key(key_id))], owner, verify_key)

    async def redis_round_trip(self, keys: list[str] = (), *, count_for: int | None = None, rate=None) -> list:
        """[MGET of `keys`] + [(count, ttl) of a hit on `count_for`'s order rate limit], in one round trip."""
        from redis.exceptions import NoScriptError

        redis = self.redis()
        for attempt in (1, 2):
            pipe = redis.pipeline(transaction=False)
            if keys:
                pipe.mget(keys)
            if count_for is not None:
                pipe.evalsha(_HIT_SHA, 1, redis_key(fast.order_rate_key(count_for)), 1, rate.window)
            try:
                return await pipe.execute()
            except NoScriptError:  # Redis restarted or flushed its scripts; nothing was counted
                if attempt == 2:
                    raise
                await redis.script_load(HIT_LUA)
        raise AssertionError("unreachable")

    async def uncount(self, user_id: int) -> None:
        """Take back one hit on `user_id`'s order rate limit (not below zero, and not into a new window)."""
        await self.redis().eval(_UNCOUNT_LUA, 1, redis_key(fast.order_rate_key(user_id)))

    async def place(self, placement: services.Placement) -> tuple[bool, int]:
        """Run orders_place in its own transaction; again, after a short wait, when Postgres picks it to break a
        deadlock (it wrote nothing), as `brokerx.db.retry_deadlocks` does on the other path."""
        from psycopg import errors

        pool = await self.pool()
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                async with pool.connection() as conn:
                    cursor = await conn.execute(services.PLACE_SQL, placement.params())
                    return await cursor.fetchone()
            except errors.DeadlockDetected:
                if attempt == DEADLOCK_ATTEMPTS:
                    raise
                logger.warning("deadlock victim; running it again", extra={"data": {"function": "orders_place"}})
                await asyncio.sleep(deadlock_backoff(attempt))
            except errors.DatabaseError as exc:
                refusal = placement.refusal(exc)
                if refusal is None:
                    raise
                raise refusal from exc
        raise AssertionError("unreachable")

    async def order_get(self, order_id: int) -> Order:
        from psycopg.rows import dict_row

        async with (await self.pool()).connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute("SELECT * FROM orders_order WHERE id = %s", [order_id])
            return Order(**await cursor.fetchone())

    async def respond(self, scope, headers: dict, reply: fast.Reply, started: float, send) -> None:
        status, body, extra = reply
        content = json.dumps(body, cls=DjangoJSONEncoder).encode()
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                            *_security_headers(_is_secure(scope, headers)),
                            (REQUEST_ID_HEADER.encode(), headers[b"x-request-id"]),
                            *((name.encode(), value.encode()) for name, value in extra.items())]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})
        _count(scope, headers, status, time.perf_counter() - started)

    # --- clients: one set per event loop (a web process has one) ----------------------------------------------

    def clients(self) -> "_Clients":
        loop = asyncio.get_running_loop()
        clients = self._clients.get(loop)
        if clients is None:
            clients = self._clients[loop] = _Clients()
        return clients

    def redis(self):
        return self.clients().redis

    async def pool(self):
        return await self.clients().pool()

    async def aclose(self) -> None:
        """Close this event loop's clients (tests, which run an event loop each)."""
        clients = self._clients.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose()


class _Clients:
    def __init__(self) -> None:
        from redis.asyncio import Redis

        options = settings.CACHES["default"].get("OPTIONS", {})
        self.redis = Redis.from_url(settings.CACHES["default"]["LOCATION"],
                                    socket_timeout=options.get("SOCKET_TIMEOUT"),
                                    socket_connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT"))
        self._pool = None
        self._opening = asyncio.Lock()

    async def pool(self):
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await _open_pool()
        return self._pool

    async def aclose(self) -> None:
        await self.redis.aclose()
        if self._pool is not None:
            await self._pool.close()


async def _open_pool():
    """A few autocommit connections with Django's own parameters (database, adapters, prepared statements)."""
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)  # Django's sync cursor classes; asyncio connections bring their own
    pool = AsyncConnectionPool(kwargs={**params, "autocommit": True}, connection_class=AsyncConnection,
                               min_size=1, max_size=settings.ORDER_GATEWAY_DB_CONNECTIONS, timeout=10, open=False,
                               name="order-gateway")
    await pool.open()
    return pool


# --- the request --------------------------------------------------------------------------------------------------

def _headers(scope) -> dict[bytes, bytes]:
    """Lower-cased header names (ASGI gives them so) to their values, a repeated one's joined by commas as Django
    joins them (two Host headers then fail the host check here as they do there)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found[name] = found[name] + b"," + value if name in found else value
    return found


async def _read_body(receive) -> tuple[bytes, bool, bool]:
    """The body read so far; whether that is all of it; whether it is all of it and at most MAX_BODY (else Django
    gets it, and reads on where this stopped: past MAX_BODY, or at the client's disconnect)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True, size <= MAX_BODY
        if size > MAX_BODY:
            return b"".join(chunks), False, False


def _replay(body: bytes, ended: bool, receive):
    """A receive() that gives the body read so far first, then reads on."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not ended}
        return await receive()

    return replay


def _request_id(headers: dict) -> str:
    request_id = request_id_from(headers.get(b"x-request-id", b"").decode("latin-1"))
    headers[b"x-request-id"] = request_id.encode()  # what the response echoes
    return request_id


def _is_secure(scope, headers: dict) -> bool:
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        name, secure_value = proxy_header
        name = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        value = headers.get(name)
        if value is not None:
            return value.decode("latin-1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


def _check_transport(scope, headers: dict) -> None:
    """Django's host check and HTTPS redirect: requests that would fail or be redirected go to Django."""
    if settings.USE_X_FORWARDED_HOST or (settings.SECURE_SSL_REDIRECT and not _is_secure(scope, headers)):
        raise _Pass
    host = headers.get(b"host", b"").decode("latin-1")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        raise _Pass


@cache
def _security_headers(secure: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers Django's SecurityMiddleware puts on a JSON response (computed by it, once per scheme)."""

    class Probe(HttpRequest):
        def _get_scheme(self):
            return "https" if secure else "http"

    response = SecurityMiddleware(lambda request: None).process_response(Probe(), JsonResponse({}))
    return tuple((name.lower().encode(), value.encode()) for name, value in response.items()
                 if name.lower() not in ("content-type", "content-length"))


def _cache():
    from django.core.cache import cache as django_cache

    return django_cache


def _count(scope, headers: dict, status: int, seconds: float) -> None:
    """The request metrics Django's middleware records for this view (dashboards read them per view)."""
    from django_prometheus.middleware import Metrics

    metrics = Metrics.get_instance()
    transport = "https" if _is_secure(scope, headers) else "http"
    metrics.requests_total.inc()
    metrics.responses_total.inc()
    metrics.requests_by_view_transport_method.labels(view=VIEW_NAME, transport=transport, method="POST").inc()
    metrics.responses_by_status.labels(status=str(status)).inc()
    metrics.responses_by_status_view_method.labels(status=str(status), view=VIEW_NAME, method="POST").inc()
    metrics.requests_latency_by_view_method.labels(view=VIEW_NAME, method="POST").observe(seconds)

