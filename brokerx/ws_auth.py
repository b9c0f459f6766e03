"""WebSocket authentication: the browser's session cookie, or a bearer token for integrators."""
from channels.auth import AuthMiddlewareStack


def WebSocketAuthMiddleware(inner):  # noqa: N802  (reads like the middleware class it wraps)
    # Session-cookie authentication for now; token authentication joins it with the accounts API.
    return AuthMiddlewareStack(inner)
