"""Reads of the watchlists context. Every lookup is scoped to the owner: another user's watchlist does not exist."""
from django.db.models import Prefetch, QuerySet

from .models import Watchlist, WatchlistItem


def _with_items(query: QuerySet[Watchlist]) -> QuerySet[Watchlist]:
    items = WatchlistItem.objects.select_related("instrument").order_by("rank")
    return query.prefetch_related(Prefetch("items", queryset=items))


def watchlists_for_user(user, *, with_items: bool = True) -> QuerySet[Watchlist]:
    """The user's watchlists, oldest first."""
    query = Watchlist.objects.filter(user=user).order_by("created_at", "id")
    return _with_items(query) if with_items else query


def watchlist_for_user(user, watchlist_id: int) -> Watchlist | None:
    return _with_items(Watchlist.objects.filter(user=user, pk=watchlist_id)).first()


def watchlist_by_name_for_user(user, name: str) -> Watchlist | None:
    return _with_items(Watchlist.objects.filter(user=user, name=name)).first()


def watchlist_instruments(watchlist: Watchlist) -> list:
    """The watchlist's instruments in order (from the prefetched items)."""
    return [item.instrument for item in watchlist.items.all()]
