"""Order entry: the one way an order comes in, whichever door it uses.

The doors: `POST /api/v1/orders` with a token or an API key (`OrderEntryMiddleware`, ahead of the browser
middleware), the same URL with a browser session or an `Idempotency-Key` (the DRF view), and the
Alpaca-compatible `POST /v2/orders` (which first turns Alpaca's body into this one). Each authenticates its
caller its own way, then calls `order_enter`, which owns the rest in this order:

1. trade permission (`accounts.checks.check_may_trade`: account state, API-key scope);
2. the caller's order rate limit (Redis; the X-RateLimit-* headers of the answer; fails open without Redis,
   ADR 009: Postgres is the record and still checks buying power, shares and the account);
3. validation of the body (`order_request_parse`: which fields, of which form);
4. the pre-trade checks and the accept statement (`orders.services.order_place`).

A refusal at any step is an exception that `refusal` renders in the native error shape (the Alpaca door renders
the same exception in Alpaca's); the ACK is `ack`. The same bad input therefore gets the same reason everywhere.
"""
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import APIException

from accounts.checks import check_may_trade
from accounts.models import ApiKey
from brokerx.api.errors import error_body, error_reply
from brokerx.ratelimit import RateLimited, Usage, hit, parse_rate, remember_usage

from ..errors import OrderError, OrderInvalid
from ..models import Order, OrderClass, OrderType, Side, TimeInForce
from ..selectors import order_as_dict
from ..services import OrderRequest, order_place

RATE_SCOPE = "orders"
DEFAULT_RATE = "50/s"
FIELDS = ("symbol", "side", "type", "time_in_force", "qty", "notional", "limit_price", "stop_price",
          "client_order_id", "order_class", "take_profit", "stop_loss", "trail_price", "trail_percent")
LEG_FIELDS = {"take_profit": ("limit_price",), "stop_loss": ("stop_price", "limit_price")}
MAX_DIGITS, DECIMAL_PLACES = 18, 4  # the order columns' numeric(18, 4)
NOTIONAL_PLACES = 2  # an amount of money, in cents: the notional column's numeric(18, 2)
_SIDES, _TYPES, _TIFS = tuple(Side.values), tuple(OrderType.values), tuple(TimeInForce.values)
_CLASSES, _SIMPLE = tuple(OrderClass.values), OrderClass.SIMPLE.value
_CLIENT_ORDER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")

# What order entry refuses with: the accounts and rate-limit errors (DRF APIException) and the orders context's.
REFUSALS = (APIException, OrderError)


@dataclass(frozen=True)
class Entered:
    order: Order
    created: bool  # False: a repeated client_order_id, answered with the order it placed the first time
    usage: Usage


def order_enter(request: HttpRequest, *, user, api_key: ApiKey | None, body) -> Entered:
    """Place the order in `body` (a parsed JSON value) for an authenticated caller, or raise one of REFUSALS."""
    check_may_trade(user, api_key=api_key)
    usage = hit(f"{RATE_SCOPE}:u{user.pk}", parse_rate(settings.RATE_LIMITS.get(RATE_SCOPE, DEFAULT_RATE)),
                fail_open=True)
    remember_usage(request, usage)
    if not usage.allowed:
        raise RateLimited(usage, scope=RATE_SCOPE)
    order, created = order_place(user=user, request=order_request_parse(body))
    return Entered(order=order, created=created, usage=usage)


def order_request_parse(body) -> OrderRequest:
    """The order request in a JSON object, or OrderInvalid saying, field by field, what is wrong with it."""
    if not isinstance(body, dict):
        raise OrderInvalid("The body must be a JSON object.", code="malformed_request")
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not 0 < len(symbol) <= 16:
        errors["symbol"] = ["A symbol of 1 to 16 characters is required."]
    side = _choice(body, "side", _SIDES, errors)
    order_type = _choice(body, "type", _TYPES, errors)
    time_in_force = _choice(body, "time_in_force", _TIFS, errors, default=TimeInForce.DAY)
    # A quantity, or an amount of money that the pre-trade checks turn into one (orders.services.order_check).
    qty = _decimal(body, "qty", errors)
    notional = _decimal(body, "notional", errors, places=NOTIONAL_PLACES)
    if body.get("qty") is None and body.get("notional") is None:
        errors["qty"] = ["This field is required (or give notional)."]
    elif body.get("qty") is not None and body.get("notional") is not None:
        errors["notional"] = ["Give qty or notional, not both."]
    limit_price = _decimal(body, "limit_price", errors)
    stop_price = _decimal(body, "stop_price", errors)
    order_class = _choice(body, "order_class", _CLASSES, errors, default=_SIMPLE)
    take_profit, _ = _leg(body, "take_profit", errors)
    stop_loss, stop_loss_limit = _leg(body, "stop_loss", errors)
    trail_price = _decimal(body, "trail_price", errors)
    trail_percent = _decimal(body, "trail_percent", errors)
    client_order_id = body.get("client_order_id")
    if client_order_id is not None and (not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= 64
                                        or not _CLIENT_ORDER_ID_CHARS.issuperset(client_order_id)):
        errors["client_order_id"] = ["1 to 64 letters, digits or . _ : -"]
    if errors:
        raise OrderInvalid("The request has invalid fields.", details=errors)
    return OrderRequest(symbol=symbol.upper(), side=side, type=order_type, time_in_force=time_in_force, qty=qty,
                        notional=notional, limit_price=limit_price, stop_price=stop_price,
                        client_order_id=client_order_id,
                        order_class=order_class, take_profit=take_profit, stop_loss=stop_loss,
                        stop_loss_limit=stop_loss_limit, trail_price=trail_price, trail_percent=trail_percent)


def _leg(body: dict, name: str, errors: dict) -> tuple[Decimal | None, Decimal | None]:
    """A leg object: take_profit {limit_price}, stop_loss {stop_price[, limit_price]}: (first price, limit)."""
    value = body.get(name)
    if value is None:
        return None, None
    fields = LEG_FIELDS[name]
    if not isinstance(value, dict) or set(value) - set(fields):
        errors[name] = [f"An object with {' and optional '.join(fields)}."]
        return None, None
    leg_errors: dict = {}
    first = _decimal(value, fields[0], leg_errors, required=True)
    limit = _decimal(value, "limit_price", leg_errors) if name == "stop_loss" else None
    if leg_errors:
        errors[name] = [f"{field}: {message}" for field, messages in leg_errors.items() for message in messages]
    return first, limit


def _choice(body: dict, name: str, choices: tuple[str, ...], errors: dict, *, default: str | None = None):
    value = body.get(name, default)
    if value not in choices:
        errors[name] = [f"One of {', '.join(choices)}."]
    return value


def _decimal(body: dict, name: str, errors: dict, *, places: int = DECIMAL_PLACES,
             required: bool = False) -> Decimal | None:
    value = body.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    number = None
    if isinstance(value, str | int | float | Decimal) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            pass
    if number is None or not number.is_finite():
        errors[name] = ["A valid number is required."]
        return None
    if number <= 0 or number.as_tuple().exponent < -places or number >= Decimal(10) ** (MAX_DIGITS - places):
        errors[name] = [f"A positive number below 1e{MAX_DIGITS - places} with at most {places} decimal places."]
        return None
    return number


def ack(entered: Entered) -> tuple[int, dict]:
    """The native answer to an accepted order: 201 and the order, or 200 and the earlier order of a repeat; the first
    order of a class shows its legs (their quantity is what the class has made of them so far)."""
    body = order_as_dict(entered.order)
    if entered.order.order_class != _SIMPLE:
        body["legs"] = [order_as_dict(leg) for leg in entered.order.legs_in_order]
    return (201 if entered.created else 200), body


def refusal(exc: Exception) -> tuple[int, dict, dict]:
    """(status, body, headers) of a refusal (one of REFUSALS) in the native error shape."""
    if isinstance(exc, OrderError):
        return exc.http_status, error_body(exc.code, exc.message, exc.details), {}
    return error_reply(exc)
