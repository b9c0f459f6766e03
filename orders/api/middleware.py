"""`POST /api/v1/orders` with a token or an API key, answered ahead of the browser middleware.

These callers need none of what sits below in the stack (static files, sessions, CSRF, the session user, MFA,
messages) nor DRF's request machinery: this middleware authenticates them with the API's own authentication
classes and hands the request to order entry (`entry.order_enter`), the path every order takes. Placed after
SecurityMiddleware, so the request id, the host check, the security headers, the X-RateLimit-* headers and the
by-view Prometheus request metrics still apply. Browser sessions and requests carrying an Idempotency-Key go on
to the DRF view, which calls the same order entry.
"""
import json

from django.http import HttpRequest, JsonResponse
from django.urls import get_script_prefix, resolve, reverse
from django_prometheus.middleware import PrometheusAfterMiddleware

from accounts.authentication import ApiKeyAuthentication, JWTAuthentication
from accounts.models import ApiKey
from brokerx.idempotency import HEADER as IDEMPOTENCY_HEADER

from ..errors import OrderInvalid
from . import entry

_SCHEMES = {"bearer": JWTAuthentication(), "apikey": ApiKeyAuthentication()}
_IDEMPOTENCY_META = "HTTP_" + IDEMPOTENCY_HEADER.upper().replace("-", "_")


def _authenticator(request: HttpRequest):
    if request.method != "POST" or _IDEMPOTENCY_META in request.META:
        return None
    return _SCHEMES.get(request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")[0].lower())


def order_entry_response(request: HttpRequest, authenticator) -> JsonResponse:
    try:
        user, auth = authenticator.authenticate(request)
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OrderInvalid("The body is not valid JSON.", code="malformed_request") from exc
        entered = entry.order_enter(request, user=user, api_key=auth if isinstance(auth, ApiKey) else None,
                                    body=body)
    except entry.REFUSALS as exc:
        if getattr(exc, "status_code", None) == 401:
            exc.auth_header = authenticator.authenticate_header(request)
        status, body, headers = entry.refusal(exc)
        return JsonResponse(body, status=status, headers=headers)
    status, body = entry.ack(entered)
    return JsonResponse(body, status=status)


class OrderEntryMiddleware:
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
        authenticator = _authenticator(request) if request.path_info == self.path else None
        if authenticator is None:
            return self.get_response(request)
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it (DisallowedHost answers 400)
        request.resolver_match = self.match
        self.prometheus.process_request(request)
        self.prometheus.process_view(request, self.match.func)
        return self.prometheus.process_response(request, order_entry_response(request, authenticator))
