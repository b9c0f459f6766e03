"""Durable matching state: trades (public market data) and each symbol's book version."""
from django.db import models


class Trade(models.Model):
    """One fill between a resting (maker) and an incoming (taker) order, at the maker's price."""

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=16)
    price = models.DecimalField(max_digits=18, decimal_places=4)
    qty = models.DecimalField(max_digits=18, decimal_places=4)
    buy_order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="buy_trades")
    sell_order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="sell_trades")
    aggressor_side = models.CharField(max_length=4)
    buyer_fee = models.DecimalField(max_digits=18, decimal_places=4)
    seller_fee = models.DecimalField(max_digits=18, decimal_places=4)
    executed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["symbol", "-id"], name="trade_symbol_recent_idx")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.qty} @ {self.price}"


class BookState(models.Model):
    """A symbol's book version: bumped by every matching batch, so a worker knows when its in-memory book is stale."""

    symbol = models.CharField(max_length=16, primary_key=True)
    version = models.BigIntegerField(default=0)
    last_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.symbol} v{self.version}"


class Bar(models.Model):
    """One-minute OHLCV candle of a symbol, kept in the matching transaction that makes its trades."""

    id = models.BigAutoField(primary_key=True)
    symbol = models.CharField(max_length=16)
    start = models.DateTimeField(help_text="Start of the minute (UTC).")
    open = models.DecimalField(max_digits=18, decimal_places=4)
    high = models.DecimalField(max_digits=18, decimal_places=4)
    low = models.DecimalField(max_digits=18, decimal_places=4)
    close = models.DecimalField(max_digits=18, decimal_places=4)
    volume = models.DecimalField(max_digits=20, decimal_places=4)
    notional = models.DecimalField(max_digits=24, decimal_places=4, help_text="Sum of price x qty, for the VWAP.")
    trade_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["symbol", "start"], name="bar_one_per_symbol_minute"),
            models.CheckConstraint(condition=models.Q(low__lte=models.F("high")), name="bar_low_not_above_high"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.start:%Y-%m-%d %H:%M} c={self.close}"
