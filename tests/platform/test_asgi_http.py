"""HTTP through the ASGI entry point (a2wsgi's thread pool): per-thread state lives across requests."""
import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.db import connections
from django_redis.cache import RedisCache

from accounts.services import api_key_create
from brokerx.asgi import _caches_per_thread, application, django_http_app
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_cache_clients_are_built_once_per_thread_not_per_request(monkeypatch):
    """a2wsgi runs each request in a fresh context copy; cache backends must not be rebuilt for every one."""
    # As at start-up: a test that changed CACHES made Django's test signal rebuild the handler's store.
    _caches_per_thread()
    user = await sync_to_async(UserFactory, thread_sensitive=True)()
    key = await sync_to_async(api_key_create, thread_sensitive=True)(user=user, name="probe")
    built = []
    original = RedisCache.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(RedisCache, "__init__", counting_init)
    requests = 24
    for _ in range(requests):
        communicator = HttpCommunicator(application, "GET", "/api/v1/orders", headers=[
            (b"authorization", f"ApiKey {key.api_key.key_id}:{key.secret}".encode())])
        response = await communicator.get_response(timeout=10)
        assert response["status"] == 200, response["body"][:200]
    # The API-key check reads the cache on every request; at most one backend per pool thread may be built.
    assert len(built) <= django_http_app.executor._max_workers < requests
    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def test_a_streamed_response_arrives_whole_and_in_order_through_the_posting_responder():
    """Pieces posted from the pool thread without waiting keep their order, and the end comes last."""
    from brokerx.asgi import DjangoHTTP

    chunks = [f"chunk {n}\n".encode() * 50 for n in range(200)]

    def wsgi_app(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("207 Multi-Status", [("Content-Type", "text/plain"), ("X-Echo", body.decode())])
        yield from chunks

    app = DjangoHTTP(wsgi_app, workers=2)
    communicator = HttpCommunicator(app, "POST", "/stream", body=b"ping")
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 207
    assert (b"x-echo", b"ping") in response["headers"]
    assert response["body"] == b"".join(chunks)


async def test_an_error_before_the_response_is_raised_not_swallowed():
    from brokerx.asgi import DjangoHTTP

    def failing_app(environ, start_response):
        raise RuntimeError("boom")

    communicator = HttpCommunicator(DjangoHTTP(failing_app, workers=1), "GET", "/")
    with pytest.raises(RuntimeError, match="boom"):
        await communicator.get_response(timeout=10)
