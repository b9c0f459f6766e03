"""Alpaca's error shape {"code": int, "message": str}: typed errors and the DRF handler that renders failures so."""
from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from orders.errors import OrderError, OrderInvalid, OrderNotFound, OrderNotOpen, OrderRejected

# Alpaca's codes: HTTP status followed by a sub-code.
MALFORMED = 40010000
INVALID = 40010001
UNAUTHORIZED = 40110000
FORBIDDEN = 40310000
NOT_FOUND = 40410000
METHOD_NOT_ALLOWED = 40510000
UNPROCESSABLE = 42210000
RATE_LIMITED = 42910000

_CODE_BY_STATUS = {400: MALFORMED, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED,
                   409: UNPROCESSABLE, 415: MALFORMED, 422: INVALID, 429: RATE_LIMITED}


class AlpacaError(Exception):
    def __init__(self, message: str, *, status: int, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or _CODE_BY_STATUS.get(status, status * 100000)


def invalid(message: str) -> AlpacaError:
    return AlpacaError(message, status=422, code=INVALID)


def not_found(message: str) -> AlpacaError:
    return AlpacaError(message, status=404, code=NOT_FOUND)


# Order rejections whose Alpaca counterpart is a 403 (the account cannot afford it) rather than a 422.
_FORBIDDEN_REJECTIONS = {"insufficient_buying_power": "insufficient buying power",
                         "insufficient_shares": "insufficient qty available for order"}


def from_order_error(exc: OrderError) -> AlpacaError:
    if isinstance(exc, OrderInvalid):
        return invalid(_validation_message(exc.details) if exc.details else exc.message)
    if isinstance(exc, OrderNotFound):
        return not_found("order not found")
    if isinstance(exc, OrderNotOpen):
        return AlpacaError(f'order is already in "{exc.current.status}" state', status=422, code=UNPROCESSABLE)
    if isinstance(exc, OrderRejected) and exc.code in _FORBIDDEN_REJECTIONS:
        return AlpacaError(_FORBIDDEN_REJECTIONS[exc.code], status=403, code=FORBIDDEN)
    if isinstance(exc, OrderRejected) and exc.code == "unknown_symbol":
        return AlpacaError(f'asset "{exc.details.get("symbol", "")}" not found', status=422, code=INVALID)
    return AlpacaError(exc.message, status=422 if exc.http_status in (400, 409, 422) else exc.http_status,
                       code=UNPROCESSABLE)


def _validation_message(detail) -> str:
    """The first field error, as "field: message" (Alpaca answers one message, not a map)."""
    if isinstance(detail, dict):
        for field, errors in detail.items():
            inner = _validation_message(errors)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    """DRF exception handler of the /v2 views. Unknown exceptions stay 500s so they are logged as bugs."""
    if isinstance(exc, OrderError):
        exc = from_order_error(exc)
    elif isinstance(exc, Http404):
        exc = not_found("not found")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    headers = {}
    if isinstance(exc, AlpacaError):
        status, body = exc.status, {"code": exc.code, "message": exc.message}
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # Missing, unknown, wrong or revoked key: Alpaca says the same for all of them.
        status, body = 401, {"code": UNAUTHORIZED, "message": "request is not authorized"}
    elif isinstance(exc, exceptions.ValidationError):
        status, body = 422, {"code": INVALID, "message": _validation_message(exc.detail)}
    elif isinstance(exc, exceptions.APIException):
        status = exc.status_code
        message = getattr(exc, "message", None) or str(exc.detail)
        body = {"code": _CODE_BY_STATUS.get(status, status * 100000), "message": message}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(-(-exc.wait // 1)))
    else:
        return None
    set_rollback()
    return Response(body, status=status, headers=headers)
