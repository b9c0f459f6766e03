"""A watchlist: a trader's named list of instruments, in the order the trader put them."""
from django.conf import settings
from django.db import models
from django.db.models import Q

MAX_NAME_LENGTH = 64  # as Alpaca


class Watchlist(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlists",
                             db_index=False)  # indexed by the unique (user, name)
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="watchlist_name_unique_per_user"),
            models.CheckConstraint(condition=~Q(name=""), name="watchlist_name_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.name}"


class WatchlistItem(models.Model):
    """One instrument of a watchlist at its place (`rank`, ascending; gaps allowed)."""

    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="items",
                                  db_index=False)  # indexed by the unique (watchlist, instrument)
    instrument = models.ForeignKey("orders.Instrument", on_delete=models.PROTECT, related_name="+")
    rank = models.PositiveIntegerField()

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["watchlist", "instrument"], name="watchlist_item_once"),
            models.UniqueConstraint(fields=["watchlist", "rank"], name="watchlist_item_rank_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.watchlist_id}#{self.rank} {self.instrument_id}"
