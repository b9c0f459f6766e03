"""DRF authentication: JWT bearer tokens, API keys (`Authorization: ApiKey <key_id>:<secret>`), MFA'd sessions."""
from rest_framework import authentication
from rest_framework.request import Request

# Domain modules are imported inside the methods: DRF imports this module while `rest_framework.views` is
# still loading, and accounts.errors needs that module.


def _authorization(request: Request) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.strip().partition(" ")
    if not scheme:
        return None
    return scheme.lower(), credentials.strip()


class JWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <access token>`; request.auth is the validated AccessToken."""

    def authenticate(self, request: Request):
        parsed = _authorization(request)
        if parsed is None or parsed[0] != "bearer":
            return None
        from .services import access_token_authenticate

        user, token = access_token_authenticate(token=parsed[1])
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def parse_api_key_credentials(credentials: str) -> tuple[str, str]:
    from .errors import ApiKeyInvalid

    key_id, sep, secret = credentials.partition(":")
    if not sep:
        raise ApiKeyInvalid("Use `Authorization: ApiKey <key_id>:<secret>`.")
    return key_id.strip(), secret.strip()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: ApiKey <key_id>:<secret>`; request.auth is the ApiKey (its scope gates writes)."""

    def authenticate(self, request: Request):
        parsed = _authorization(request)
        if parsed is None or parsed[0] != "apikey":
            return None
        from .services import api_key_authenticate

        key_id, secret = parse_api_key_credentials(parsed[1])
        return api_key_authenticate(key_id=key_id, secret=secret)

    def authenticate_header(self, request: Request) -> str:
        return 'ApiKey realm="api"'


class OTPSessionAuthentication(authentication.SessionAuthentication):
    """The browser's session, accepted only once a second factor verified it (django-otp's OTPMiddleware).
    CSRF is enforced as with Django's SessionAuthentication."""

    def authenticate(self, request: Request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, auth = result
        is_verified = getattr(user, "is_verified", None)
        if not callable(is_verified) or not is_verified() or user.locked_at is not None:
            return None
        return user, auth
