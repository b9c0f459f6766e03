"""ASGI entry point: HTTP through Django's WSGI handler on a fixed thread pool, WebSockets through Channels.

HTTP views and middleware are synchronous. Django's own ASGI handler runs each such request in a fresh
thread-sensitive executor (a thread started and joined per request, several hops between the event loop and
that thread); measured here that capped a bare view at about 140 requests/s per two workers. a2wsgi runs the
WSGI handler on a fixed pool of threads instead, and leaves the event loop to WebSockets.
"""
import os

from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi import WSGIResponder
from asgiref.local import Local
from django.core.cache import caches
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")


class PostingResponder(WSGIResponder):
    """a2wsgi's responder, minus a wait on the event loop for every piece of the response.

    a2wsgi's pool thread hands each piece (status and headers, each body chunk, the end) to the loop and blocks
    until the loop has queued it: three thread switches there and back per request, about a tenth of the web
    process's Python time under load (py-spy --gil). Here the thread posts each piece and goes on;
    call_soon_threadsafe runs them in the order posted, before the loop learns that the WSGI call returned, so
    the end marker still comes last. The queue is unbounded: a slow client costs at most the response's size
    in memory (JSON, and static files in development).
    """

    def send(self, message) -> None:
        self.loop.call_soon_threadsafe(self.send_queue.put_nowait, message)


class DjangoHTTP(WSGIMiddleware):
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            return await PostingResponder(self.app, self.executor, 0)(scope, receive, send)
        return await super().__call__(scope, receive, send)


django_http_app = DjangoHTTP(get_wsgi_application(), workers=int(os.environ.get("BROKERX_HTTP_THREADS", "8")))


def _caches_per_thread() -> None:
    """Keep each thread's cache clients across requests.

    Django keeps cache backends in a context-local store, and a2wsgi runs every request in a fresh copy of the
    context, so each request built its cache backend, django-redis client and redis-py client anew (about a
    sixth of the web process's CPU per order). The pool's threads are long-lived and the Redis clients are
    thread-safe, so one backend per thread is what a threaded WSGI server has anyway.
    """
    caches._connections = Local(thread_critical=True)


_caches_per_thread()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402
from .ws_auth import WebSocketAuthMiddleware  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Checks the Origin a browser sends against ALLOWED_HOSTS; lets clients that send none through.

    Browsers always send Origin on a WebSocket handshake, so cross-site hijacking is still refused; programs
    (the alpaca-py TradingStream, bots) send none and authenticate with their own credentials instead.
    """

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)


application = ProtocolTypeRouter(
    {
        "http": django_http_app,
        "websocket": BrowserOriginValidator(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns)),
                                            settings.ALLOWED_HOSTS),
    }
)

from .gc_tuning import gc_tune  # noqa: E402

gc_tune()  # the app is built: its start-up heap is never scanned again (brokerx.gc_tuning)
