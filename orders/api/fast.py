"""POST /api/v1/orders for integrators: the lean accept path (no DRF on the way, one database round trip).

Token and API-key callers land here; anything else (browser sessions with CSRF, requests carrying an
Idempotency-Key, GET) goes through the DRF views, which answer the same shapes. The work per request:
authentication from the Redis cache, one rate-limit script in Redis, field checks in Python, the
instrument from the process cache, and `orders_place` in Postgres.

`OrderEntryMiddleware` serves these requests right after Django's SecurityMiddleware, ahead of the
browser-side middleware they do not use (static files, sessions, CSRF, user, MFA, messages) and of URL
resolution; the request id, the host check, security headers and the Prometheus request metrics still apply.
"""
import json
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import get_script_prefix, resolve, reverse
from django_prometheus.middleware import PrometheusAfterMiddleware

from brokerx.api.errors import error_body
from brokerx.ratelimit import hit, parse_rate

from .. import services
from ..errors import OrderError
from ..models import OrderType, Side, TimeInForce
from ..selectors import order_as_dict

_SIDES = frozenset(Side.values)
_TYPES = frozenset(OrderType.values)
_TIFS = frozenset(TimeInForce.values)
_FIELDS = frozenset({"symbol", "side", "type", "time_in_force", "qty", "limit_price", "stop_price", "client_order_id"})
ORDER_RATE_SCOPE = "orders"


Reply = tuple[int, dict, dict]  # status, JSON body, headers: what both accept paths answer


def error_reply(status: int, code: str, message: str, details: dict | None = None,
                headers: dict | None = None) -> Reply:
    return status, error_body(code, message, details), headers or {}


def _json(reply: Reply) -> JsonResponse:
    status, body, headers = reply
    return JsonResponse(body, status=status, headers=headers)


def _decimal(value, name: str, errors: dict, *, required: bool) -> Decimal | None:
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors[name] = ["A valid number is required."]
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        errors[name] = ["A valid number is required."]
        return None
    if not number.is_finite() or number <= 0 or number.as_tuple().exponent < -4 or number >= Decimal("1e14"):
        errors[name] = ["Must be a positive number with at most 4 decimal places."]
        return None
    return number


def parse_order(body: dict) -> tuple[services.OrderRequest | None, dict]:
    errors: dict = {}
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not 0 < len(symbol) <= 16:
        errors["symbol"] = ["A symbol of 1 to 16 characters is required."]
    side, order_type = body.get("side"), body.get("type")
    tif = body.get("time_in_force", TimeInForce.DAY)
    if side not in _SIDES:
        errors["side"] = [f"One of {', '.join(sorted(_SIDES))}."]
    if order_type not in _TYPES:
        errors["type"] = [f"One of {', '.join(sorted(_TYPES))}."]
    if tif not in _TIFS:
        errors["time_in_force"] = [f"One of {', '.join(sorted(_TIFS))}."]
    qty = _decimal(body.get("qty"), "qty", errors, required=True)
    limit_price = _decimal(body.get("limit_price"), "limit_price", errors, required=False)
    stop_price = _decimal(body.get("stop_price"), "stop_price", errors, required=False)
    client_order_id = body.get("client_order_id")
    if client_order_id is not None and (not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= 64
                                        or not all(c.isalnum() or c in "._:-" for c in client_order_id)):
        errors["client_order_id"] = ["Up to 64 letters, digits or . _ : -"]
    if errors:
        return None, errors
    return services.OrderRequest(symbol=symbol.upper(), side=side, type=order_type, time_in_force=tif, qty=qty,
                                 limit_price=limit_price, stop_price=stop_price,
                                 client_order_id=client_order_id), {}


def _authenticate(request: HttpRequest):
    """(user, api_key or None) from a bearer token or API key; raises the accounts errors on bad credentials."""
    from accounts.authentication import parse_api_key_credentials
    from accounts.services import access_token_authenticate, api_key_authenticate

    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        user, _token = access_token_authenticate(token=credentials.strip())
        return user, None
    key_id, secret = parse_api_key_credentials(credentials.strip())
    return api_key_authenticate(key_id=key_id, secret=secret)


def wants_fast_path(request: HttpRequest) -> bool:
    scheme = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")[0].lower()
    return request.method == "POST" and scheme in ("bearer", "apikey") and "HTTP_IDEMPOTENCY_KEY" not in request.META


def user_refusal(user, api_key) -> Reply | None:
    """Why this authenticated caller may not place orders, if it may not."""
    if not user.is_active or user.locked_at is not None:
        return error_reply(403, "account_locked", "This account is locked or inactive.")
    if user.email_verified_at is None:
        return error_reply(403, "email_not_verified", "Verify your e-mail address before trading.")
    if api_key is not None and not api_key.allows_trading():
        return error_reply(403, "insufficient_scope",
                           "This API key is read-only; writes need a key with the 'trade' scope.")
    return None


def order_rate():
    return parse_rate(settings.RATE_LIMITS.get(ORDER_RATE_SCOPE, "50/s"))


def order_rate_key(user_id: int) -> str:
    return f"{ORDER_RATE_SCOPE}:u{user_id}"


def rate_limit_headers(usage) -> dict:
    return {"X-RateLimit-Limit": str(usage.limit), "X-RateLimit-Remaining": str(usage.remaining)}


def rate_limit_refusal(usage, headers: dict) -> Reply | None:
    if usage.allowed:
        return None
    return error_reply(429, "rate_limited", f"Rate limit exceeded: {usage.limit} orders per window.",
                       {"retry_after": usage.reset_in, "limit": usage.limit, "scope": ORDER_RATE_SCOPE},
                       {"Retry-After": str(usage.reset_in), **headers})


def read_order(raw: bytes, headers: dict) -> tuple[services.OrderRequest | None, Reply | None]:
    """The order request in a JSON body, or the 400 that says what is wrong with it."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, error_reply(400, "malformed_request", "The body is not valid JSON.", headers=headers)
    if not isinstance(body, dict):
        return None, error_reply(400, "malformed_request", "The body must be a JSON object.", headers=headers)
    order_request, errors = parse_order(body)
    if errors:
        return None, error_reply(400, "validation_error", "The request has invalid fields.", errors, headers)
    return order_request, None


def order_create(request: HttpRequest):
    from rest_framework.exceptions import APIException

    try:
        user, api_key = _authenticate(request)
    except APIException as exc:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "authentication_failed"
        return _json(error_reply(exc.status_code, getattr(exc, "code", None) or code, str(exc.detail),
                                 getattr(exc, "details", None), {"WWW-Authenticate": 'Bearer realm="api"'}))
    refusal = user_refusal(user, api_key)
    if refusal is not None:
        return _json(refusal)
    usage = hit(order_rate_key(user.pk), order_rate())
    limit_headers = rate_limit_headers(usage)
    refusal = rate_limit_refusal(usage, limit_headers)
    if refusal is not None:
        return _json(refusal)
    order_request, refusal = read_order(request.body, limit_headers)
    if refusal is not None:
        return _json(refusal)
    try:
        order, created = services.order_place(user=user, request=order_request)
    except OrderError as exc:
        return _json(error_reply(exc.http_status, exc.code, exc.message, exc.details, limit_headers))
    return JsonResponse(order_as_dict(order), status=201 if created else 200, headers=limit_headers)


class OrderEntryMiddleware:
    """Token and API-key `POST /api/v1/orders` straight to `order_create` (see the module's docstring).

    Placed after SecurityMiddleware (HTTPS redirect, security headers); the other requests go on down the stack.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        # By-view request metrics as the last middleware would record them (the dashboards read them per view).
        self.prometheus = PrometheusAfterMiddleware(get_response)
        self.path = None

    def __call__(self, request: HttpRequest):
        if self.path is None:  # first request (URLconf loaded); pool threads may race here harmlessly
            # path_info has no script prefix (a deployment under a sub-path); reverse() adds the current one.
            path = "/" + reverse("v1:orders")[len(get_script_prefix()):]
            self.match = resolve(path)
            self.path = path  # last: a thread that sees the path also sees the match
        if request.path_info != self.path or not wants_fast_path(request):
            return self.get_response(request)
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it (DisallowedHost answers 400)
        request.resolver_match = self.match
        self.prometheus.process_request(request)
        self.prometheus.process_view(request, self.match.func)
        return self.prometheus.process_response(request, order_create(request))
