"""Views of the watchlists API: parse, authorize, call a service or selector, answer."""
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasTradeScope
from brokerx.api.errors import ApiError
from brokerx.api.schema import refusals

from .. import selectors, services
from ..errors import WatchlistError
from .serializers import (
    WatchlistCreateSerializer,
    WatchlistSerializer,
    WatchlistSymbolSerializer,
    WatchlistUpdateSerializer,
)


def _api_error(exc: WatchlistError) -> ApiError:
    return ApiError(exc.message, code=exc.code, status_code=exc.http_status, details=exc.details)


def _not_found() -> ApiError:
    return ApiError("No such watchlist.", code="not_found", status_code=404)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class WatchlistView(APIView):
    permission_classes = [IsAuthenticated, HasTradeScope]  # a read-only API key reads, and writes nothing


class WatchlistListCreateView(WatchlistView):
    pagination_class = LimitOffsetPagination

    @extend_schema(operation_id="watchlists_list", responses={200: WatchlistSerializer(many=True)})
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.watchlists_for_user(request.user), request, view=self)
        return paginator.get_paginated_response(WatchlistSerializer(page, many=True).data)

    @extend_schema(operation_id="watchlists_create", request=WatchlistCreateSerializer,
                   responses={201: WatchlistSerializer} | refusals(422),
                   description="A new watchlist. A name you already use, an unknown symbol or a symbol given twice "
                               "answer 422 `invalid_watchlist`.")
    def post(self, request):
        data = _valid(WatchlistCreateSerializer, request.data)
        try:
            watchlist = services.watchlist_create(user=request.user, name=data["name"], symbols=data["symbols"])
        except WatchlistError as exc:
            raise _api_error(exc) from exc
        return Response(WatchlistSerializer(watchlist).data, status=status.HTTP_201_CREATED)


class WatchlistDetailView(WatchlistView):
    @extend_schema(operation_id="watchlists_retrieve", responses={200: WatchlistSerializer})
    def get(self, request, watchlist_id: int):
        watchlist = selectors.watchlist_for_user(request.user, watchlist_id)
        if watchlist is None:
            raise _not_found()
        return Response(WatchlistSerializer(watchlist).data)

    @extend_schema(operation_id="watchlists_update", request=WatchlistUpdateSerializer,
                   responses={200: WatchlistSerializer} | refusals(422),
                   description="Rename the watchlist and/or replace its symbols (in the order given).")
    def patch(self, request, watchlist_id: int):
        data = _valid(WatchlistUpdateSerializer, request.data)
        try:
            watchlist = services.watchlist_update(user=request.user, watchlist_id=watchlist_id,
                                                  name=data.get("name"), symbols=data.get("symbols"))
        except WatchlistError as exc:
            raise _api_error(exc) from exc
        return Response(WatchlistSerializer(watchlist).data)

    @extend_schema(operation_id="watchlists_delete", responses={204: None})
    def delete(self, request, watchlist_id: int):
        try:
            services.watchlist_delete(user=request.user, watchlist_id=watchlist_id)
        except WatchlistError as exc:
            raise _api_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class WatchlistSymbolAddView(WatchlistView):
    @extend_schema(operation_id="watchlists_symbols_add", request=WatchlistSymbolSerializer,
                   responses={200: WatchlistSerializer} | refusals(422),
                   description="Append a symbol to the watchlist; one already there answers 422.")
    def post(self, request, watchlist_id: int):
        data = _valid(WatchlistSymbolSerializer, request.data)
        try:
            watchlist = services.watchlist_symbol_add(user=request.user, watchlist_id=watchlist_id,
                                                      symbol=data["symbol"])
        except WatchlistError as exc:
            raise _api_error(exc) from exc
        return Response(WatchlistSerializer(watchlist).data)


class WatchlistSymbolRemoveView(WatchlistView):
    @extend_schema(operation_id="watchlists_symbols_remove", responses={200: WatchlistSerializer})
    def delete(self, request, watchlist_id: int, symbol: str):
        try:
            watchlist = services.watchlist_symbol_remove(user=request.user, watchlist_id=watchlist_id, symbol=symbol)
        except WatchlistError as exc:
            raise _api_error(exc) from exc
        return Response(WatchlistSerializer(watchlist).data)
