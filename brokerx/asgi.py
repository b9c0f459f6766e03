"""ASGI entry point: HTTP through Django's WSGI handler on a fixed thread pool, WebSockets through Channels.

HTTP views and middleware are synchronous. Django's own ASGI handler runs each such request in a fresh
thread-sensitive executor (a thread started and joined per request, several hops between the event loop and
that thread); measured here that capped a bare view at about 140 requests/s per two workers. a2wsgi runs the
WSGI handler on a fixed pool of threads instead, and leaves the event loop to WebSockets.
"""
import os

from a2wsgi import WSGIMiddleware
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
django_http_app = WSGIMiddleware(get_wsgi_application(), workers=int(os.environ.get("BROKERX_HTTP_THREADS", "8")))


def _caches_per_thread() -> None:
    """Keep each thread's cache clients across requests.

    Django keeps cache backends in a context-local store, and a2wsgi runs every request in a fresh copy of the
    context, so each request built its cache backend, django-redis client and redis-py client anew (about a
    sixth of the web process's CPU per order). The pool's threads are long-lived and the Redis clients are
    thread-safe, so one backend per thread is what a threaded WSGI server has anyway.
    """
    from asgiref.local import Local
    from django.core.cache import caches

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
