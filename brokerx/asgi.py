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
