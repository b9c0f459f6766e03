"""HTTP endpoints of the Alpaca Trading API v2 surface: parse Alpaca's parameters, call BrokerX, answer in kind."""
import codecs
import json
from datetime import UTC, timedelta
from decimal import Decimal

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.permissions import CanTrade
from brokerx.ratelimit import RedisRateThrottle
from orders import services as order_services
from orders.api import entry
from orders.models import TimeInForce

from .. import selectors, services
from ..authentication import AlpacaKeyAuthentication, AlpacaTradeScope
from ..errors import NOT_FOUND, AlpacaError, exception_handler, invalid, not_found
from . import representations as rep

PRICE = {"max_digits": 18, "decimal_places": 4, "required": False, "allow_null": True}
MAX_CALENDAR_DAYS = 366


class AlpacaJSONParser(JSONParser):
    """JSON bodies with numbers read as Decimal, so a float the SDK sends (10.0, 100.25) is never rounded."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=Decimal)
        except ValueError as exc:
            raise ParseError(f"request body is not valid JSON: {exc}") from exc


class AlpacaThrottle(RedisRateThrottle):
    scope = "alpaca"
    rate = "200/min"  # Alpaca's own limit per account


class AlpacaView(APIView):
    authentication_classes = [AlpacaKeyAuthentication]
    parser_classes = [AlpacaJSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes = [AlpacaThrottle]

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [IsAuthenticated(), AlpacaTradeScope(), CanTrade()]

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            super().permission_denied(request, message, code)
        raise AlpacaError(message or "forbidden", status=403)

    def get_exception_handler(self):
        return exception_handler


# --- parameters --------------------------------------------------------------------------------------

def _choice(params, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = params.get(name) or default
    if value is not None and value not in choices:
        raise invalid(f"invalid {name}: {value} (expected one of {', '.join(choices)})")
    return value


def _moment(params, name: str):
    raw = params.get(name)
    if not raw:
        return None
    value = parse_datetime(raw.replace(" ", "+")) or (parse_datetime(raw + "T00:00:00+00:00")
                                                      if parse_date(raw) else None)
    if value is None:
        raise invalid(f"invalid {name}: {raw} (expected RFC 3339)")
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def _flag(params, name: str) -> bool:
    value = (params.get(name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid(f"invalid {name}: {value} (expected true or false)")
    return value in ("true", "1")


def _decimal(params, name: str) -> Decimal | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw))
    except ArithmeticError as exc:
        raise invalid(f"invalid {name}: {raw}") from exc
    if not value.is_finite():
        raise invalid(f"invalid {name}: {raw}")
    return value


# Alpaca's order fields that BrokerX has no counterpart for, refused with what to do instead. Order classes
# (bracket, oco, oto) and trailing stops are order entry's own fields: it checks them like any other order.
_UNSUPPORTED = (
    (lambda body: body.get("order_class") == "mleg" or body.get("legs") not in (None, []),
     "order_class mleg (multi-leg options orders) is not supported"),
    (lambda body: body.get("time_in_force") in ("opg", "cls"),
     "time_in_force opg and cls are not supported"),
    (lambda body: bool(body.get("extended_hours")), "extended hours orders are not supported"),
)


def _native_order_body(body) -> dict:
    """Alpaca's order body as order entry's (orders.api.entry), which checks it like any other order."""
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    for refused, message in _UNSUPPORTED:
        if refused(body):
            raise invalid(message)
    # Alpaca ignores fields it does not know; of the rest, order entry reads its own under the same names
    # (order_class, take_profit, stop_loss, trail_price, trail_percent...). The SDK sends null for "none".
    native = {name: body[name] for name in entry.FIELDS if body.get(name) is not None}
    if native.get("client_order_id") == "":
        native.pop("client_order_id")
    return native


class OrderReplaceSerializer(serializers.Serializer):
    qty = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, allow_null=True)
    time_in_force = serializers.ChoiceField(choices=["day", "gtc", "opg", "cls", "ioc", "fok"], required=False,
                                            allow_null=True)
    limit_price = serializers.DecimalField(**PRICE)
    stop_price = serializers.DecimalField(**PRICE)
    trail = serializers.DecimalField(**PRICE)
    client_order_id = serializers.CharField(max_length=128, required=False, allow_null=True, allow_blank=True)


def _valid(serializer_class, data) -> dict:
    if not isinstance(data, dict):
        raise invalid("request body must be a JSON object")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- account, clock, calendar ------------------------------------------------------------------------

class AccountView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response(rep.account_json(request.user, selectors.portfolio_for(request.user)))


class ClockView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        clock = selectors.market_clock()
        return Response(rep.clock_json(now=clock["now"], is_open=clock["is_open"], next_open=clock["next_open"],
                                       next_close=clock["next_close"]))


class CalendarView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        today = timezone.localdate()
        start = _date(request.query_params, "start") or today
        end = _date(request.query_params, "end") or start + timedelta(days=30)
        if end < start:
            raise invalid("end must not be before start")
        if (end - start).days > MAX_CALENDAR_DAYS:
            raise invalid(f"at most {MAX_CALENDAR_DAYS} days per request")
        days = selectors.market_calendar(start=start, end=end)
        return Response([rep.calendar_day_json(day, opens, closes) for day, opens, closes in days])


def _date(params, name: str):
    raw = params.get(name)
    if not raw:
        return None
    value = parse_date(raw[:10])
    if value is None:
        raise invalid(f"invalid {name}: {raw} (expected YYYY-MM-DD)")
    return value


# --- orders ------------------------------------------------------------------------------------------

class OrderListView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        params = request.query_params
        try:
            limit = int(params.get("limit") or 50)
        except ValueError as exc:
            raise invalid("invalid limit") from exc
        if not 1 <= limit <= 500:
            raise invalid("limit must be between 1 and 500")
        symbols = [s.strip() for s in (params.get("symbols") or "").split(",") if s.strip()]
        nested = _flag(params, "nested")
        orders = selectors.orders_query(
            request.user, status=_choice(params, "status", ("open", "closed", "all"), "open"), limit=limit,
            after=_moment(params, "after"), until=_moment(params, "until"),
            direction=_choice(params, "direction", ("asc", "desc"), "desc"),
            side=_choice(params, "side", ("buy", "sell"), None), symbols=symbols, nested=nested)
        return Response([rep.order_from_model(order, with_legs=nested) for order in orders])

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated()]  # trade permission is order entry's, as on every door
        return super().get_permissions()

    @extend_schema(exclude=True)
    def post(self, request):
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        entered = entry.order_enter(request, user=request.user, api_key=api_key,
                                    body=_native_order_body(request.data))
        if not entered.created:
            raise invalid("client_order_id must be unique")
        return Response(rep.order_from_model(entered.order, with_legs=True))

    @extend_schema(exclude=True)
    def delete(self, request):
        outcomes = services.orders_cancel_all(user=request.user)
        body = [{"id": rep.ids.encode_str(rep.ids.Kind.ORDER, o.order_id), "status": o.status,
                 "body": rep.order_from_model(o.order) if o.order is not None
                 else {"code": o.error.code, "message": o.error.message}} for o in outcomes]
        return Response(body, status=status.HTTP_207_MULTI_STATUS)


class OrderByClientIdView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        client_order_id = request.query_params.get("client_order_id") or ""
        if not client_order_id:
            raise invalid("client_order_id is required")
        order = selectors.order_by_client_order_id(request.user, client_order_id)
        if order is None:
            raise not_found("order not found")
        return Response(rep.order_from_model(order, with_legs=True))


class OrderDetailView(AlpacaView):
    def _order(self, request, order_id: str):
        order = selectors.order_by_uuid(request.user, order_id)
        if order is None:
            raise not_found("order not found")
        return order

    @extend_schema(exclude=True)
    def get(self, request, order_id: str):
        return Response(rep.order_from_model(self._order(request, order_id), with_legs=True))

    @extend_schema(exclude=True)
    def patch(self, request, order_id: str):
        """Replace in place: BrokerX keeps the order id and bumps its version (Alpaca issues a new order id)."""
        order = self._order(request, order_id)
        data = _valid(OrderReplaceSerializer, request.data)
        if data.get("client_order_id") and data["client_order_id"] != order.client_order_id:
            raise invalid("client_order_id cannot change: a replaced order keeps its id and client_order_id")
        tif = data.get("time_in_force")
        if tif is not None and tif not in (TimeInForce.DAY, TimeInForce.GTC):
            raise invalid(f"time_in_force {tif} is not allowed on a replace")
        if all(data.get(f) is None for f in ("qty", "limit_price", "stop_price", "trail", "time_in_force")):
            raise invalid("give at least one of qty, limit_price, stop_price, trail, time_in_force")
        for name in ("qty", "trail"):
            if data.get(name) is not None and data[name] <= 0:
                raise invalid(f"{name} must be > 0")
        # Alpaca's `trail` is the new value of the trail the order has: trail_percent if it trails by a percentage,
        # else trail_price (the service refuses a trail for any other type).
        trail = data.get("trail")
        by_percent = trail is not None and order.trail_percent is not None
        # No version in Alpaca's PATCH: the service checks against the version it reads under the lock.
        order = order_services.order_replace(user=request.user, order_id=order.pk, version=None, qty=data.get("qty"),
                                             limit_price=data.get("limit_price"), stop_price=data.get("stop_price"),
                                             trail_price=None if by_percent else trail,
                                             trail_percent=trail if by_percent else None, time_in_force=tif)
        return Response(rep.order_from_model(order, with_legs=True))

    @extend_schema(exclude=True)
    def delete(self, request, order_id: str):
        order = self._order(request, order_id)
        order_services.order_cancel(user=request.user, order_id=order.pk, version=None, reason="user")
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- positions ---------------------------------------------------------------------------------------

def _positions(user, symbol: str | None = None) -> list[dict]:
    rows = [row for row in selectors.portfolio_for(user)["positions"] if row["qty"] > 0
            and (symbol is None or row["symbol"] == symbol)]
    instrument_ids = selectors.instrument_ids(row["symbol"] for row in rows)
    return [rep.position_json(row, asset_id=instrument_ids.get(row["symbol"]), lastday_price=row["lastday_price"])
            for row in rows]


def _outcomes_json(outcomes) -> list[dict]:
    return [{"symbol": o.symbol, "status": o.status,
             "order_id": rep.ids.encode_str(rep.ids.Kind.ORDER, o.order_id) if o.order_id else None,
             "body": rep.order_from_model(o.order) if o.order is not None
             else {"code": o.error.code, "message": o.error.message, "symbol": o.symbol}} for o in outcomes]


class PositionListView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response(_positions(request.user))

    @extend_schema(exclude=True)
    def delete(self, request):
        cancel = (request.query_params.get("cancel_orders") or "").lower() in ("true", "1")
        outcomes = services.positions_close_all(user=request.user, cancel_orders=cancel)
        return Response(_outcomes_json(outcomes), status=status.HTTP_207_MULTI_STATUS)


class PositionDetailView(AlpacaView):
    def _symbol(self, symbol_or_asset_id: str) -> str:
        instrument = selectors.instrument_by_symbol_or_id(symbol_or_asset_id)
        if instrument is None:
            raise not_found("position does not exist")
        return instrument.symbol

    @extend_schema(exclude=True)
    def get(self, request, symbol_or_asset_id: str):
        positions = _positions(request.user, self._symbol(symbol_or_asset_id))
        if not positions:
            raise not_found("position does not exist")
        return Response(positions[0])

    @extend_schema(exclude=True)
    def delete(self, request, symbol_or_asset_id: str):
        params = request.query_params
        order = services.position_close(user=request.user, symbol=self._symbol(symbol_or_asset_id),
                                        qty=_decimal(params, "qty"), percentage=_decimal(params, "percentage"))
        return Response(rep.order_from_model(order))


# --- assets ------------------------------------------------------------------------------------------

class AssetListView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        params = request.query_params
        asset_class = params.get("asset_class")
        if asset_class and asset_class != rep.ASSET_CLASS:
            return Response([])
        exchange = params.get("exchange")
        if exchange and exchange != rep.EXCHANGE:
            return Response([])
        instruments = selectors.instruments(status=_choice(params, "status", ("active", "inactive"), None))
        return Response([rep.asset_json(instrument) for instrument in instruments])


class AssetDetailView(AlpacaView):
    @extend_schema(exclude=True)
    def get(self, request, symbol_or_asset_id: str):
        instrument = selectors.instrument_by_symbol_or_id(symbol_or_asset_id)
        if instrument is None:
            raise not_found(f"asset not found for {symbol_or_asset_id}")
        return Response(rep.asset_json(instrument))


@csrf_exempt
def unknown_endpoint(request, *args, **kwargs):
    """Any other /v2 path (corporate actions, options, configurations...): Alpaca's 404 shape, not an HTML page."""
    return JsonResponse({"code": NOT_FOUND, "message": "endpoint not found"}, status=404)
