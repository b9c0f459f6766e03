"""WebSocket URL routes, collected from the bounded contexts that serve streams."""
from importlib import import_module

from django.urls import URLPattern

# Each context that serves a stream exposes `websocket_urlpatterns` in its routing module.
_STREAM_MODULES = ("matching.routing", "notifications.routing", "orders.routing", "alpaca_compat.routing")


def _collect() -> list[URLPattern]:
    patterns: list[URLPattern] = []
    for module_name in _STREAM_MODULES:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        patterns.extend(getattr(module, "websocket_urlpatterns", []))
    return patterns


websocket_urlpatterns = _collect()
