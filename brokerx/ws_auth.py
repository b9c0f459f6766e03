"""WebSocket authentication: a JWT or API key (`?token=` or `Authorization` header), else the browser's session.

- `?token=<access JWT>` or `Authorization: Bearer <access JWT>`
- `?token=<key_id>:<secret>` or `Authorization: ApiKey <key_id>:<secret>`
- otherwise the session cookie, accepted only if the session passed its second factor.
A credential that is present but invalid leaves the connection anonymous (consumers refuse anonymous users).
scope["auth"] is the AccessToken or ApiKey (None for sessions) so consumers can check an API key's scope.
"""
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from accounts.authentication import parse_api_key_credentials
from accounts.errors import AccountsError
from accounts.services import access_token_authenticate, api_key_authenticate

_OTP_SESSION_KEY = "otp_device_id"  # django_otp.DEVICE_ID_SESSION_KEY


def _credentials(scope) -> tuple[str, str] | None:
    """(kind, value) with kind 'jwt' or 'apikey', from the query string or the Authorization header."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token = (query.get("token") or [""])[0].strip()
    if token:
        return ("jwt", token) if token.count(".") == 2 else ("apikey", token)
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                return "jwt", rest.strip()
            if scheme.lower() == "apikey":
                return "apikey", rest.strip()
    return None


@database_sync_to_async
def _authenticate(kind: str, value: str):
    try:
        if kind == "jwt":
            return access_token_authenticate(token=value)
        key_id, secret = parse_api_key_credentials(value)
        return api_key_authenticate(key_id=key_id, secret=secret)
    except AccountsError:
        return AnonymousUser(), None


class _TokenOrVerifiedSession:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        credentials = _credentials(scope)
        if credentials is not None:
            scope["user"], scope["auth"] = await _authenticate(*credentials)
        else:
            user = scope.get("user")
            session = scope.get("session")
            verified = session is not None and bool(await database_sync_to_async(session.get)(_OTP_SESSION_KEY))
            locked = getattr(user, "locked_at", None) is not None
            if user is None or not getattr(user, "is_authenticated", False) or not verified or locked:
                scope["user"] = AnonymousUser()
            scope["auth"] = None
        return await self.inner(scope, receive, send)


def WebSocketAuthMiddleware(inner):  # noqa: N802  (reads like the middleware class it wraps)
    return AuthMiddlewareStack(_TokenOrVerifiedSession(inner))
