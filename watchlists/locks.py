"""Row locks of the watchlists context: a watchlist's row serializes every change of its symbols."""
from .models import Watchlist


def lock_watchlist(*, user, watchlist_id: int) -> Watchlist | None:
    """The user's watchlist, locked until the transaction ends; None when it is not the user's or does not exist."""
    return Watchlist.objects.select_for_update().filter(user=user, pk=watchlist_id).first()
