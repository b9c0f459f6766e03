"""HTTP endpoints of the orders context: parse, authorize, call a service, shape the answer."""
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from accounts.permissions import CanTrade, HasTradeScope
from brokerx.api.errors import ApiError
from brokerx.api.schema import refusals
from brokerx.idempotency import idempotent

from .. import selectors, services
from ..errors import OrderError, OrderNotOpen, StaleOrderVersion
from ..models import Instrument
from . import entry
from .serializers import (
    InstrumentSerializer,
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderEventSerializer,
    OrderReplaceSerializer,
    OrderSerializer,
)


def _api_error(exc: OrderError) -> ApiError:
    details = dict(exc.details)
    if isinstance(exc, StaleOrderVersion | OrderNotOpen):
        details["current"] = OrderSerializer(exc.current).data
    return ApiError(exc.message, code=exc.code, details=details, status_code=exc.http_status)


def _datetime_param(request, name: str):
    raw = request.query_params.get(name)
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        raise ApiError(f"{name} must be an ISO 8601 date-time.", code="validation_error", details={name: raw})
    return value


class OrderListCreateView(generics.ListAPIView):
    serializer_class = OrderSerializer

    # POST: trade permission and the rate limit are order entry's (entry.order_enter), as on every other door.
    # Token and API-key POSTs without an Idempotency-Key are answered before they get here (OrderEntryMiddleware).
    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[
        OpenApiParameter("status", str, description="open (held legs included), closed, or an order status"),
        OpenApiParameter("symbol", str), OpenApiParameter("after", str, description="created after (ISO 8601)"),
        OpenApiParameter("until", str), OpenApiParameter("updated_after", str,
                                                         description="changed after (ISO 8601), oldest first")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        return selectors.orders_for_user(
            self.request.user, status=params.get("status"), symbol=params.get("symbol"),
            after=_datetime_param(self.request, "after"), until=_datetime_param(self.request, "until"),
            updated_after=_datetime_param(self.request, "updated_after"))

    @extend_schema(request=OrderCreateSerializer,
                   responses={201: OrderDetailSerializer, 200: OrderDetailSerializer} | refusals(422, 429),
                   parameters=[OpenApiParameter(
                       "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                       description="Optional. The same key with the same body replays the stored answer "
                                   "(`Idempotent-Replayed: true`); with another body 422 `idempotency_key_reused`; "
                                   "while the first request runs 409 `idempotency_in_flight`.")])
    @idempotent(required=False)
    def post(self, request):
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        try:
            entered = entry.order_enter(request, user=request.user, api_key=api_key, body=request.data)
        except entry.REFUSALS as exc:
            status_code, body, headers = entry.refusal(exc)
            return Response(body, status=status_code, headers=headers)
        status_code, body = entry.ack(entered)
        return Response(body, status=status_code)


class OrderDetailView(APIView):
    def get_permissions(self):
        if self.request.method == "PATCH":
            return [IsAuthenticated(), CanTrade(), HasTradeScope()]
        return [IsAuthenticated()]

    @extend_schema(responses=OrderDetailSerializer)
    def get(self, request, order_id: int):
        order = selectors.order_for_user(request.user, order_id)
        if order is None:
            raise ApiError("Order not found.", code="order_not_found", status_code=404)
        return Response(OrderDetailSerializer(order).data)

    @extend_schema(request=OrderReplaceSerializer, responses={200: OrderSerializer} | refusals(409, 422))
    def patch(self, request, order_id: int):
        serializer = OrderReplaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            order = services.order_replace(user=request.user, order_id=order_id, version=data["version"],
                                           qty=data.get("qty"), limit_price=data.get("limit_price"),
                                           stop_price=data.get("stop_price"), time_in_force=data.get("time_in_force"),
                                           trail_price=data.get("trail_price"),
                                           trail_percent=data.get("trail_percent"))
        except OrderError as exc:
            raise _api_error(exc) from exc
        return Response(OrderSerializer(order).data)


class OrderCancelView(APIView):
    permission_classes = [IsAuthenticated, CanTrade, HasTradeScope]

    @extend_schema(request=OrderCancelSerializer, responses={200: OrderSerializer} | refusals(409, 422))
    def post(self, request, order_id: int):
        serializer = OrderCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            order = services.order_cancel(user=request.user, order_id=order_id,
                                          version=serializer.validated_data.get("version"))
        except OrderError as exc:
            raise _api_error(exc) from exc
        return Response(OrderSerializer(order).data)


class OrderEventListView(generics.ListAPIView):
    serializer_class = OrderEventSerializer

    def get_queryset(self):
        order = selectors.order_for_user(self.request.user, self.kwargs["order_id"])
        if order is None:
            raise ApiError("Order not found.", code="order_not_found", status_code=404)
        return order.events.order_by("id")


class InstrumentListView(generics.ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = InstrumentSerializer
    queryset = Instrument.objects.filter(is_tradable=True).order_by("symbol")
    pagination_class = None
