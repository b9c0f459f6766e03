"""Alpaca's /v2/watchlists over the watchlists context: by id (a UUID) or by name (`/v2/watchlists:by_name`)."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from watchlists import selectors as watchlist_selectors
from watchlists import services as watchlist_services
from watchlists.errors import WatchlistError

from .. import ids
from ..authentication import AlpacaTradeScope
from ..errors import AlpacaError, invalid, not_found
from . import representations as rep
from .views import AlpacaView, _valid


class WatchlistBodySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_null=True)
    symbols = serializers.ListField(child=serializers.CharField(max_length=32), required=False, allow_null=True)


class SymbolBodySerializer(serializers.Serializer):
    symbol = serializers.CharField(max_length=32)


def _alpaca_error(exc: WatchlistError) -> AlpacaError:
    return not_found(exc.message) if exc.http_status == 404 else invalid(exc.message)


def _answer(watchlist) -> Response:
    """Alpaca answers every watchlist write, creation included, with 200 and the watchlist."""
    return Response(rep.watchlist_json(watchlist, watchlist_selectors.watchlist_instruments(watchlist)))


class WatchlistAlpacaView(AlpacaView):
    def get_permissions(self):
        # Writing a watchlist trades nothing: a trade-scoped key suffices, whatever the account's trading state.
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [IsAuthenticated(), AlpacaTradeScope()]

    def _id(self, request, watchlist_id: str | None) -> int:
        """The watchlist's primary key, from the path's UUID or the `name` query parameter; 404 if not the caller's."""
        if watchlist_id is not None:
            pk = ids.decode(ids.Kind.WATCHLIST, watchlist_id)
            if pk is not None and watchlist_selectors.watchlists_for_user(request.user, with_items=False).filter(
                    pk=pk).exists():
                return pk
            raise not_found("watchlist not found")
        name = request.query_params.get("name") or ""
        if not name:
            raise invalid("name is required")
        watchlist = watchlist_selectors.watchlists_for_user(request.user, with_items=False).filter(name=name).first()
        if watchlist is None:
            raise not_found("watchlist not found")
        return watchlist.pk

    def _call(self, service, **kwargs):
        try:
            return service(user=self.request.user, **kwargs)
        except WatchlistError as exc:
            raise _alpaca_error(exc) from exc

    def _get(self, request, watchlist_id=None):
        return _answer(watchlist_selectors.watchlist_for_user(request.user, self._id(request, watchlist_id)))

    def _put(self, request, watchlist_id=None):
        pk = self._id(request, watchlist_id)
        data = _valid(WatchlistBodySerializer, request.data)
        if data.get("name") is None and data.get("symbols") is None:
            raise invalid("give name or symbols")
        return _answer(self._call(watchlist_services.watchlist_update, watchlist_id=pk, name=data.get("name"),
                                  symbols=data.get("symbols")))

    def _post(self, request, watchlist_id=None):
        pk = self._id(request, watchlist_id)
        data = _valid(SymbolBodySerializer, request.data)
        return _answer(self._call(watchlist_services.watchlist_symbol_add, watchlist_id=pk, symbol=data["symbol"]))

    def _delete(self, request, watchlist_id=None):
        self._call(watchlist_services.watchlist_delete, watchlist_id=self._id(request, watchlist_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WatchlistListView(WatchlistAlpacaView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response([rep.watchlist_json(w, watchlist_selectors.watchlist_instruments(w))
                         for w in watchlist_selectors.watchlists_for_user(request.user)])

    @extend_schema(exclude=True)
    def post(self, request):
        data = _valid(WatchlistBodySerializer, request.data)
        if not data.get("name"):
            raise invalid("name is required")
        return _answer(self._call(watchlist_services.watchlist_create, name=data["name"],
                                  symbols=data.get("symbols") or []))


class WatchlistDetailView(WatchlistAlpacaView):
    """GET, PUT (name and/or symbols), POST (add a symbol), DELETE on /v2/watchlists/{id}."""

    @extend_schema(exclude=True)
    def get(self, request, watchlist_id: str):
        return self._get(request, watchlist_id)

    @extend_schema(exclude=True)
    def put(self, request, watchlist_id: str):
        return self._put(request, watchlist_id)

    @extend_schema(exclude=True)
    def post(self, request, watchlist_id: str):
        return self._post(request, watchlist_id)

    @extend_schema(exclude=True)
    def delete(self, request, watchlist_id: str):
        return self._delete(request, watchlist_id)


class WatchlistByNameView(WatchlistAlpacaView):
    """The same on /v2/watchlists:by_name?name=..."""

    @extend_schema(exclude=True)
    def get(self, request):
        return self._get(request)

    @extend_schema(exclude=True)
    def put(self, request):
        return self._put(request)

    @extend_schema(exclude=True)
    def post(self, request):
        return self._post(request)

    @extend_schema(exclude=True)
    def delete(self, request):
        return self._delete(request)


class WatchlistSymbolView(WatchlistAlpacaView):
    @extend_schema(exclude=True)
    def delete(self, request, watchlist_id: str, symbol: str):
        pk = self._id(request, watchlist_id)
        return _answer(self._call(watchlist_services.watchlist_symbol_remove, watchlist_id=pk, symbol=symbol))
