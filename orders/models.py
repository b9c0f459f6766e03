"""Instruments and orders: what can be traded, and every order with its append-only event log."""
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class TradingStatus(models.TextChoices):
    OPEN = "open", "Open"
    HALTED = "halted", "Halted"


class Instrument(models.Model):
    """A tradable symbol with its grid (tick, lot), reference price and the risk limits orders are checked against."""

    symbol = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=128)
    currency = models.CharField(max_length=3, default="USD")
    tick_size = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0.01"))
    lot_size = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("1"))
    reference_price = models.DecimalField(max_digits=18, decimal_places=4)
    last_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    # The price at the last session close (its last trade then, else the reference price), recorded once per
    # session by `instruments_record_close`; positions show their change since it.
    previous_close = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    previous_close_date = models.DateField(null=True, blank=True, help_text="The session previous_close closed.")
    # Orders priced further than this fraction from the reference price are refused.
    price_band_pct = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0.10"))
    max_order_notional = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("1000000"))
    max_order_qty = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("100000"))
    trading_status = models.CharField(max_length=8, choices=TradingStatus.choices, default=TradingStatus.OPEN)
    is_tradable = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(tick_size__gt=0) & Q(lot_size__gt=0), name="instrument_grid_positive"),
            models.CheckConstraint(condition=Q(reference_price__gt=0), name="instrument_reference_positive"),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def fractionable(self) -> bool:
        """A lot below one share: orders may be for part of a share, and for an amount of money (`notional`)."""
        return self.lot_size < 1


class TradingSession(models.Model):
    """The trading calendar: one row per trading day with its open and close instants (UTC)."""

    date = models.DateField(unique=True)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    is_open = models.BooleanField(default=True, help_text="Off for a holiday.")
    day_orders_expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-date"]
        constraints = [
            models.CheckConstraint(condition=Q(closes_at__gt=F("opens_at")), name="session_closes_after_open"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.opens_at:%H:%M}-{self.closes_at:%H:%M}"


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP = "stop", "Stop"
    STOP_LIMIT = "stop_limit", "Stop limit"
    TRAILING_STOP = "trailing_stop", "Trailing stop"


class OrderClass(models.TextChoices):
    """How an order is tied to others (matching/engine/README.md, "Contingent orders")."""

    SIMPLE = "simple", "Simple"
    BRACKET = "bracket", "Bracket"  # an entry (the parent) whose take-profit and stop-loss legs are an OCO pair
    OCO = "oco", "One cancels other"  # two exits of one position: the first order and its leg (parent = the first)
    OTO = "oto", "One triggers other"  # an entry (the parent) and one exit leg


class TimeInForce(models.TextChoices):
    DAY = "day", "Day"
    GTC = "gtc", "Good till canceled"
    IOC = "ioc", "Immediate or cancel"
    FOK = "fok", "Fill or kill"


class OrderStatus(models.TextChoices):
    NEW = "new", "New"  # accepted, funds reserved, waiting for or resting in the book
    HELD = "held", "Held"  # a leg waiting for its parent's first fill (quantity 0 until then)
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
# What a trader can still cancel: open orders and held legs.
LIVE_STATUSES = (*OPEN_STATUSES, OrderStatus.HELD)
TERMINAL_STATUSES = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


class SagaState(models.TextChoices):
    """TradingSaga: validate -> reserve -> create -> submit; compensated (release, cancel) if a later step fails."""

    CREATED = "created", "Created (validated, reserved, persisted)"
    SUBMITTED = "submitted", "Submitted to the book"
    COMPLETED = "completed", "Completed"
    COMPENSATED = "compensated", "Compensated"


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Indexed by order_user_recent_idx (user, -id) and the others that lead with the user: no index of its own.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders",
                             db_index=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    symbol = models.CharField(max_length=16)  # denormalised: the matching partition key
    client_order_id = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=16, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices)
    qty = models.DecimalField(max_digits=18, decimal_places=4)
    # The amount of money asked for, when the order came as one (a notional order); qty is what it became.
    notional = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    limit_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    # Market orders (and stops once triggered) never trade beyond this price; it also sizes the buy reservation.
    protection_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.NEW)
    cum_qty = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"))
    leaves_qty = models.DecimalField(max_digits=18, decimal_places=4)
    avg_px = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    # Cash (buys) or shares (sells) still held for the unfilled part of the order.
    reserved_amount = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal("0"))
    fees_paid = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("0"))
    version = models.PositiveIntegerField(default=1)
    # Time priority in the book: set when the order first rests, renewed by a replace that loses priority.
    book_seq = models.BigIntegerField(null=True, blank=True)
    # A stop-limit whose stop price was reached rests as a plain limit order.
    stop_triggered = models.BooleanField(default=False)
    saga_state = models.CharField(max_length=12, choices=SagaState.choices, default=SagaState.CREATED)
    reason = models.CharField(max_length=64, blank=True, default="")
    # Order classes: a leg's parent is its entry (bracket, oto) or, in an oco pair, the pair's first order. Legs
    # are sized by the class (a held leg has quantity 0); the fills of an oco pair draw on one reservation.
    order_class = models.CharField(max_length=8, choices=OrderClass.choices, default=OrderClass.SIMPLE,
                                   db_default=OrderClass.SIMPLE)
    # Indexed by order_parent_idx, for legs only: a simple order's insert maintains no index for it.
    parent = models.ForeignKey("self", on_delete=models.PROTECT, related_name="legs", null=True, blank=True,
                               db_index=False)
    # A trailing stop: one of the trails; stop_price follows hwm, the best price since it entered the book.
    trail_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    trail_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    hwm = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "client_order_id"], name="order_client_order_id_per_user"),
            models.CheckConstraint(condition=Q(qty__gt=0) | (Q(qty=0) & Q(parent__isnull=False)),
                                   name="order_qty_positive"),
            models.CheckConstraint(condition=Q(cum_qty__gte=0) & Q(leaves_qty__gte=0) & Q(cum_qty__lte=F("qty")),
                                   name="order_quantities_consistent"),
            models.CheckConstraint(condition=Q(reserved_amount__gte=0), name="order_reserved_non_negative"),
            models.CheckConstraint(condition=Q(notional__isnull=True) | Q(notional__gt=0),
                                   name="order_notional_positive"),
        ]
        indexes = [
            models.Index(fields=["user", "-id"], name="order_user_recent_idx"),
            models.Index(fields=["user", "updated_at"], name="order_user_updated_idx"),
            models.Index(fields=["symbol", "id"], name="order_open_by_symbol_idx",
                         condition=Q(status__in=["new", "partially_filled"])),
            models.Index(fields=["parent"], name="order_parent_idx", condition=Q(parent__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.qty} {self.symbol} {self.type} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def legs_in_order(self) -> list["Order"]:
        """This order's legs, oldest first: none for a simple order or a leg."""
        if self.order_class == OrderClass.SIMPLE or self.parent_id is not None:
            return []
        return list(self.legs.order_by("id"))


class OrderEventType(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    REPLACED = "replaced", "Replaced"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    TRIGGERED = "triggered", "Stop triggered"
    RESIZED = "resized", "Resized by its class"


class OrderEvent(models.Model):
    """Append-only log of an order's life; replaying it rebuilds the order's state (see orders.selectors)."""

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events", db_index=False)  # (order, id)
    type = models.CharField(max_length=16, choices=OrderEventType.choices)
    # The order's state after the event (status, quantities, prices, version) plus what the event itself says.
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["order", "id"], name="order_event_order_idx")]

    def __str__(self) -> str:
        return f"{self.type} order #{self.order_id}"


# The order's fields, declared once. Everything that shows, records or writes an order derives from these lists:
# the API's JSON (OrderSerializer, the ACK, the order in each execution report, and from it the Alpaca shape),
# the state each OrderEvent records (replaying the log rebuilds it), and matching's write-back of a batch.
ORDER_API_FIELDS = ("id", "client_order_id", "symbol", "side", "type", "time_in_force", "qty", "notional",
                    "limit_price", "stop_price", "protection_price", "status", "cum_qty", "leaves_qty", "avg_px",
                    "reserved_amount", "fees_paid", "version", "saga_state", "reason", "order_class", "parent_id",
                    "trail_price", "trail_percent", "hwm", "created_at", "updated_at")
# `notional` is not in the state: like side and type it is fixed when the order is accepted (a market order is
# never replaced), so no event changes it.
ORDER_STATE_FIELDS = ("status", "qty", "cum_qty", "leaves_qty", "avg_px", "limit_price", "stop_price",
                      "time_in_force", "reserved_amount", "version", "reason", "trail_price", "trail_percent", "hwm")
ORDER_MATCHING_FIELDS = ("status", "cum_qty", "leaves_qty", "avg_px", "reserved_amount", "fees_paid", "book_seq",
                         "stop_triggered", "saga_state", "reason", "version")
# What matching changes only on the orders of a class (a leg's size) and on trailing stops (the stop and its mark).
ORDER_CLASS_MATCHING_FIELDS = ("qty", "stop_price", "hwm")
