"""ASGI entry point: HTTP through Django, WebSockets through Channels routing."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
django_asgi_app = get_asgi_application()

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
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns)),
                                            settings.ALLOWED_HOSTS),
    }
)
