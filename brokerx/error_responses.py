"""Every error answer under /api/ and /v2/ in its documented shape, the unexpected ones included; error pages in the
site's style for browsers; a dependency fault (brokerx/faults.py) answers 503 with Retry-After everywhere.

Django turns an exception into a response inside the handler that wraps each middleware and the view
(`response_for_exception`), so a middleware above never sees the exception itself, only the HTML 500 page (or the
debug page) it became. Django announces each such exception with `got_request_exception` while handling it; the
receiver below notes it on the request, and `ErrorResponseMiddleware`, high in MIDDLEWARE, answers in its place:
503 for a dependency fault, else 500, in the error shape of the request's surface. It also turns Django's own HTML
error answers on API paths (an unknown URL's 404, a refused host's 400) into that shape. Views, DRF, order entry
(`OrderEntryMiddleware`) and every middleware below it are covered, whatever DEBUG says. Normal answers cost one
comparison of their status.
"""
import logging
import sys

import psycopg
from django.core.signals import got_request_exception
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.template import loader

from .api.errors import error_body
from .faults import RETRY_AFTER_SECONDS, dependency_fault
from .middleware import SyncAndAsyncMiddleware

logger = logging.getLogger(__name__)

NATIVE_PREFIX, ALPACA_PREFIX = "/api/", "/v2/"
_FAULT_ATTR = "_bx_unhandled_exception"
_NATIVE_CODES = {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
                 405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type",
                 429: "rate_limited", 500: "server_error", 503: "service_unavailable"}
_MESSAGES = {400: "The request could not be processed.", 403: "You do not have permission for this request.",
             404: "Not found.", 405: "Method not allowed.", 413: "The request is too large."}


@receiver(got_request_exception, dispatch_uid="brokerx.error_responses.note_exception")
def _note_exception(sender, request=None, **kwargs) -> None:
    """Sent by Django while it handles an exception raised by a view or a middleware (in its except block)."""
    if request is not None:
        setattr(request, _FAULT_ATTR, sys.exc_info()[1])


def _surface(request) -> str | None:
    path = request.path_info
    if path.startswith(NATIVE_PREFIX):
        return "native"
    if path.startswith(ALPACA_PREFIX):
        return "alpaca"
    return None


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _render(request, status: int, *, code: str, message: str, details: dict, retry_after: int | None):
    surface = _surface(request)
    if surface == "native":
        response = JsonResponse(error_body(code, message, details), status=status)
    elif surface == "alpaca":
        request_id = details.get("request_id")
        suffix = f" (request id {request_id})" if request_id and status >= 500 else ""
        response = JsonResponse({"code": status * 100000, "message": message.rstrip(".").lower() + suffix},
                                status=status)
    else:
        template = "503.html" if status == 503 else "500.html"
        # No request context: the page must not need the session or the user (the database may be down).
        response = HttpResponse(loader.get_template(template).render({"request_id": details.get("request_id"),
                                                                       "retry_after": retry_after}),
                                status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _nul_in_text(exc: BaseException) -> bool:
    """Text with a NUL character, which Postgres cannot store: psycopg refuses it before sending anything."""
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    return isinstance(cause, psycopg.DataError) and "NUL (0x00)" in str(cause)


def fault_response(request, exc: BaseException) -> HttpResponse:
    """The answer to an exception nothing handled: 503 + Retry-After for a dependency fault, 400 for text that
    cannot be stored (a NUL character in a parameter; nothing was written), else 500."""
    request_id = getattr(request, "request_id", None)
    if _nul_in_text(exc) and _surface(request) is not None:
        return _render(request, 400, code="malformed_request", retry_after=None,
                       message="Text may not contain NUL (0x00) characters.", details={})
    dependency = dependency_fault(exc)
    if dependency is not None:
        retry_after = RETRY_AFTER_SECONDS[dependency]
        return _render(request, 503, code="service_unavailable", retry_after=retry_after,
                       message=f"A service is unavailable for a moment. Retry in {retry_after} s.",
                       details={"request_id": request_id, "retry_after": retry_after})
    return _render(request, 500, code="server_error", retry_after=None,
                   message="An unexpected error occurred; it has been logged.", details={"request_id": request_id})


def error_shape(request, response) -> HttpResponse:
    """An HTML (or empty) error answer of Django's on an API path, in that API's error shape."""
    status = response.status_code
    if status >= 500:
        return _render(request, status, code=_NATIVE_CODES.get(status, "server_error"),
                       message="An unexpected error occurred; it has been logged.",
                       details={"request_id": getattr(request, "request_id", None)},
                       retry_after=int(response["Retry-After"]) if response.has_header("Retry-After") else None)
    shaped = _render(request, status, code=_NATIVE_CODES.get(status, "error"),
                     message=_MESSAGES.get(status, "The request could not be processed."), details={},
                     retry_after=None)
    for header in ("Allow", "WWW-Authenticate", "Retry-After"):
        if response.has_header(header):
            shaped[header] = response[header]
    return shaped


class ErrorResponseMiddleware(SyncAndAsyncMiddleware):
    """Place right below RequestIdMiddleware: its answers carry the request id header."""

    def after(self, request, response):
        if response.status_code < 400:
            return response
        exc = getattr(request, _FAULT_ATTR, None)
        if exc is not None:
            setattr(request, _FAULT_ATTR, None)
            if _surface(request) is not None or dependency_fault(exc) is not None:
                return fault_response(request, exc)
            return response  # a bug on a page: Django's 500 page (templates/500.html), or the debug page
        if _surface(request) is not None and not _is_json(response):
            return error_shape(request, response)
        return response
