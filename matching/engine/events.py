"""Events the order book emits: plain tuples of ints and strs, with a NamedTuple describing each layout.

Every command returns its events in the order they happened. Each event is a plain tuple whose first
item is its kind (ACCEPTED, RESTED, TRADE, ...); the NamedTuple of the same name below documents the
positions, and named(event) returns that NamedTuple (equal to the raw tuple) for code that prefers
field names. Plain tuples, because the book emits one to four events per command and a tuple costs
a fifth of a NamedTuple to build and free: at 200k commands/s that is most of the budget.

Prices are integer ticks and quantities integer lots (matching.engine.grid converts them). A
persistence layer applies the events in order; the same commands on the same book state always
yield the same events.
"""

from typing import NamedTuple

ACCEPTED = "accepted"
RESTED = "rested"
TRADE = "trade"
ORDER_UPDATE = "order_update"
REPLACED = "replaced"
REJECTED = "rejected"
STOP_TRIGGERED = "stop_triggered"
RESIZED = "resized"
TRAIL_MOVED = "trail_moved"


class Accepted(NamedTuple):
    """The book took a submitted order (status new). Always the first event of a successful submit.

    priority orders the book's queues: a durable worker stores it and calls OrderBook.restore in
    ascending priority after a restart. A later Rested event may hand out a newer priority.
    """

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    priority: int


class Rested(NamedTuple):
    """The order (or its unfilled remainder) joined the back of the queue at price.

    Emitted after a submit, a stop-limit trigger or a priority-losing replace leaves quantity on the
    book; priority is the order's new queue position (store it for restore).
    """

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    side: str
    price: int
    leaves_qty: int
    priority: int


class Trade(NamedTuple):
    """One fill between a resting (maker) and an incoming (taker) order, at the maker's price."""

    kind: str  # the constant of the same name, e.g. TRADE
    price: int
    qty: int
    maker_order_id: int
    taker_order_id: int
    maker_account_id: int
    taker_account_id: int
    aggressor_side: str


class OrderUpdate(NamedTuple):
    """An order's state after a fill or a cancel: one per side of every Trade, and one per cancel.

    qty is the order's total quantity; qty == cum_qty + leaves_qty + canceled_qty always holds.
    reason is a CancelReason value when status is canceled, otherwise None.
    """

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    status: str
    qty: int
    cum_qty: int
    leaves_qty: int
    reason: str | None

    @property
    def canceled_qty(self) -> int:
        return self.qty - self.cum_qty - self.leaves_qty


class Replaced(NamedTuple):
    """A replace was applied: qty is the new total, leaves_qty = qty - cum_qty.

    priority_lost is True when the price or stop price changed or the quantity grew; the order then
    re-enters like a new order under a new priority (it may trade as taker, then rests with a Rested
    event). priority is the order's priority after the replace: store it for restore.
    """

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    qty: int
    cum_qty: int
    leaves_qty: int
    price: int | None
    stop_price: int | None
    priority_lost: bool
    priority: int


class Rejected(NamedTuple):
    """A cancel or replace the book refused; reason is a RejectReason value. Nothing changed."""

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    reason: str


class StopTriggered(NamedTuple):
    """A stop or stop-limit order's stop price was reached by last_price; it now enters the book."""

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    stop_price: int
    last_price: int


class Resized(NamedTuple):
    """The book changed an open order's quantity for its class: qty == cum_qty + leaves_qty still holds.

    reason is a ResizeReason value: oco (its sibling filled; the queue position is kept) or parent_fill
    (its parent filled; a held leg so activated enters the book after the incoming order, with Accepted).
    """

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    qty: int
    cum_qty: int
    leaves_qty: int
    reason: str


class TrailMoved(NamedTuple):
    """A parked trailing stop's water mark moved with the trades, and its stop price with it."""

    kind: str  # the constant of the same name, e.g. TRADE
    order_id: int
    stop_price: int
    water_mark: int


Event = Accepted | Rested | Trade | OrderUpdate | Replaced | Rejected | StopTriggered | Resized | TrailMoved

_BY_KIND = {
    ACCEPTED: Accepted,
    RESTED: Rested,
    TRADE: Trade,
    ORDER_UPDATE: OrderUpdate,
    REPLACED: Replaced,
    REJECTED: Rejected,
    STOP_TRIGGERED: StopTriggered,
    RESIZED: Resized,
    TRAIL_MOVED: TrailMoved,
}


def named(event: tuple) -> Event:
    """The raw event tuple as its NamedTuple, for field access by name; it compares equal to the tuple."""
    return _BY_KIND[event[0]]._make(event)


class DepthLevel(NamedTuple):
    """Aggregated resting quantity and order count at one price."""

    price: int
    qty: int
    count: int


class Depth(NamedTuple):
    """Top levels of each side, best first."""

    bids: list[DepthLevel]
    asks: list[DepthLevel]


class OrderState(NamedTuple):
    """A snapshot of one live order, as OrderBook.get_order returns it."""

    order_id: int
    account_id: int
    side: str
    order_type: str
    tif: str
    qty: int
    cum_qty: int
    leaves_qty: int
    price: int | None
    stop_price: int | None
    protection_price: int | None
    priority: int
    status: str
    triggered: bool
