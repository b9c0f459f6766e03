"""Public market data snapshots under /api/v1/market/<symbol>/: parse, call a market read, answer JSON."""
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from brokerx.api.errors import ApiError
from brokerx.api.params import moment_param

from .. import market


def _int_param(request, name: str, default: int | None, *, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{name} must be an integer.", code="validation_error", details={name: raw}) from None
    if not low <= value <= high:
        raise ApiError(f"{name} must be between {low} and {high}.", code="validation_error", details={name: raw})
    return value


class MarketView(APIView):
    """Market data is public: no credentials needed, none looked up (answers come from the cache)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request, symbol: str):
        symbol = symbol.upper()
        try:
            return Response(self.read(request, symbol))
        except market.UnknownSymbol:
            raise ApiError(f"No such symbol: {symbol}.", code="unknown_symbol", status_code=404,
                           details={"symbol": symbol}) from None

    def read(self, request, symbol: str) -> dict:
        raise NotImplementedError


class QuoteView(MarketView):
    @extend_schema(summary="L1 quote: best bid/ask and sizes, last price; `seq` of the quote stream",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, symbol: str):
        return super().get(request, symbol)

    def read(self, request, symbol):
        return market.market_quote(symbol)


class BookView(MarketView):
    @extend_schema(summary="L2 depth snapshot, best first; `seq` of the book stream",
                   parameters=[OpenApiParameter("levels", int, description="levels per side (default all kept)")],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, symbol: str):
        return super().get(request, symbol)

    def read(self, request, symbol):
        levels = _int_param(request, "levels", None, low=1, high=settings.MARKET_DEPTH_LEVELS)
        book = market.market_book(symbol)
        if levels is not None:
            book = {**book, "bids": book["bids"][:levels], "asks": book["asks"][:levels]}
        return book


class TradesView(MarketView):
    @extend_schema(summary="Recent trades, newest first; with `after` (a trade id) the later ones, oldest first",
                   parameters=[OpenApiParameter("limit", int), OpenApiParameter("after", int)],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, symbol: str):
        return super().get(request, symbol)

    def read(self, request, symbol):
        return market.market_trades(symbol, limit=_int_param(request, "limit", 50, low=1, high=500),
                                    after=_int_param(request, "after", None, low=0, high=2**63 - 1))


TIMEFRAME = OpenApiParameter(
    "timeframe", str, enum=[*market.TIMEFRAMES, *market.TIMEFRAME_ALIASES],
    description="Candle length (default 1Min): 1Min, 5Min, 15Min, 1Hour, 1Day, as Alpaca names them; Alpaca's short "
                "forms 1T, 5T, 15T, 1H, 1D are accepted too, and the answer names the long form. Periods align to UTC "
                "(days run midnight to midnight) and are aggregated from the 1-minute bars. Anything else: 400 "
                "`invalid_timeframe`.")


def _timeframe_param(request) -> str:
    raw = request.query_params.get("timeframe")
    try:
        return market.timeframe_parse(raw)
    except market.InvalidTimeframe as exc:
        raise ApiError(str(exc), code="invalid_timeframe", details={"timeframe": raw}) from None


class BarsView(MarketView):
    @extend_schema(summary="OHLCV candles of a timeframe, oldest first: the latest `limit` periods that have trades, "
                           "or the first `limit` from `start` (periods starting in [start, end))",
                   parameters=[TIMEFRAME, OpenApiParameter("limit", int), OpenApiParameter("start", str),
                               OpenApiParameter("end", str)],
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, symbol: str):
        return super().get(request, symbol)

    def read(self, request, symbol):
        timeframe = _timeframe_param(request)
        return market.market_bars(symbol, timeframe=timeframe,
                                  limit=_int_param(request, "limit", 120, low=1, high=1000),
                                  start=moment_param(request, "start"), end=moment_param(request, "end"))
