"""WebSocket route of the Alpaca-compatible surface: the trade_updates stream at /stream, as Alpaca serves it."""
from django.urls import path

from .consumers import TradeUpdatesConsumer

websocket_urlpatterns = [path("stream", TradeUpdatesConsumer.as_asgi())]
