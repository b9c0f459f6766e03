"""In-memory price-time priority order book for one symbol: integer ticks and lots in, plain events out.

Layout, chosen so a command costs about the same whether 1k or 1M orders rest:

* every live order (resting or parked stop) is in one dict by order id: O(1) cancel and replace;
* each side keeps a dict price -> _Level, a deque of orders oldest first that also carries the
  level's aggregated leaves quantity (0 exactly when no live order is left) and its count of dead
  entries. A cancel only zeroes the order's leaves_qty and updates those totals; the dead entry
  leaves the deque when matching reaches it, when the level empties, or when dead entries outnumber
  live ones (the level is then compacted). That keeps a cancel to the id dict and the order itself:
  at 1M resting orders every other structure a cancel would touch is a cache miss;
* each side keeps the sorted list of its level prices as "keys" (bids: price, asks: -price), so the
  best price is always keys[-1] and the touch is popped or appended in O(1); a level away from the
  touch is inserted or removed by bisect over the levels, not the orders;
* parked stop orders sit in two heaps keyed by stop price, with stale entries skipped lazily.

An order is a plain list indexed by the _ID.._PARKED constants below rather than an object with
__slots__: CPython builds and frees a list several times faster than a slotted instance (no
__init__ frame), and reads and writes it by constant index just as fast. Orders never leave this
module; get_order() returns a named OrderState.

Self-trade prevention is "cancel newest": when the incoming order reaches a resting order of the
same account (at a price it would trade at), the incoming order's remainder is canceled with reason
self_trade; fills it got at better prices or earlier in the queue stand, and the resting order is not
touched. The incoming order is the newest: a new submit, a stop that just triggered, or an order
that lost priority in a replace.

Stops trigger on the trades of one incoming order as a whole: a buy stop triggers when the highest
of those trade prices is >= its stop price, a sell stop when the lowest is <= its stop price (for a
stop submitted or replaced, against the current last trade price). Stops triggered together enter
in priority order; trades they make can trigger more stops, which enter after them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from heapq import heapify, heappop, heappush
from itertools import islice
from typing import NamedTuple

from .constants import (
    BUY,
    CANCELED,
    DAY,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    STOP,
    STOP_LIMIT,
    TIMES_IN_FORCE,
    TRAILING_STOP,
    CancelReason,
    RejectReason,
    ResizeReason,
)
from .errors import DuplicateOrderId, InvalidOrder
from .events import (
    ACCEPTED,
    ORDER_UPDATE,
    REJECTED,
    REPLACED,
    RESIZED,
    RESTED,
    STOP_TRIGGERED,
    TRADE,
    TRAIL_MOVED,
    Depth,
    DepthLevel,
    OrderState,
)

# Positions in an order record.
_ID = 0
_ACCOUNT = 1
_SIDE = 2
_TYPE = 3
_TIF = 4
_QTY = 5  # total quantity; qty == cum + leaves + canceled
_CUM = 6
_LEAVES = 7  # 0 marks a dead entry in a level's deque
_PRICE = 8  # limit price, None for market and stop orders
_STOP = 9
_PROTECTION = 10
_PRIORITY = 11
_PARKED = 12  # a stop or stop-limit waiting for its trigger, off the book
_X = 13  # None, or the _Node of an order with a class (OCO, legs) or a trail

# A limit key below every real key: a market order without a protection price may walk the whole side.
_UNBOUNDED = -(1 << 62)

_RESTING_TIFS = frozenset({DAY, GTC})
_STOP_TYPES = frozenset({STOP, STOP_LIMIT, TRAILING_STOP})
_MARKETABLE = frozenset({MARKET, STOP, TRAILING_STOP})  # no limit price: bounded only by protection_price
_CLASS_TIFS = _RESTING_TIFS

_USER = CancelReason.USER
_IOC = CancelReason.IOC
_FOK = CancelReason.FOK
_SELF_TRADE = CancelReason.SELF_TRADE
_NO_LIQUIDITY = CancelReason.NO_LIQUIDITY
_PROTECTION_REASON = CancelReason.PROTECTION
_EXPIRED = CancelReason.EXPIRED
_OCO = CancelReason.OCO


class Leg(NamedTuple):
    """An order submitted with another as its class: an `oco` sibling, or one of a parent's held `legs`.

    It takes its account and time in force from the order it comes with; its side and quantity follow
    the class (README, "Contingent orders").
    """

    order_id: int
    order_type: str
    price: int | None = None
    stop_price: int | None = None
    protection_price: int | None = None
    trail_price: int | None = None
    trail_bp: int | None = None


class _Node:
    """What an order of a class, or a trailing stop, carries beyond the plain record (its _X slot).

    Links go node to node, so an order re-queued as a copy (a replace that lost priority) only moves
    `o` to the copy.
    """

    __slots__ = ("o", "parent", "sibling", "legs", "held", "accepted", "trail_price", "trail_bp", "mark")

    def __init__(self, o: list) -> None:
        self.o = o
        self.parent: _Node | None = None
        self.sibling: _Node | None = None
        self.legs: list[_Node] | None = None
        self.held = False  # a leg waiting, quantity 0, for its parent's first fill
        self.accepted = True  # False for an activated leg until it enters the book
        self.trail_price: int | None = None
        self.trail_bp: int | None = None
        self.mark: int | None = None

    def open(self) -> bool:
        return self.held or self.o[_LEAVES] > 0

    def trail_stop(self) -> int:
        return _trail_stop(self.o[_SIDE], self.mark, self.trail_price, self.trail_bp)


def _trail_stop(side: str, mark: int, trail_price: int | None, trail_bp: int | None) -> int:
    """A trailing stop's stop: the trail (ticks, or ceil(mark * bp / 10000)) below a sell's mark, above a buy's."""
    offset = trail_price if trail_price is not None else -(-mark * trail_bp // 10000)
    return mark - offset if side == SELL else mark + offset


class _Level(deque):
    """Orders resting at one price, oldest first, with canceled ones (leaves 0) not yet dropped.

    qty is the aggregated leaves quantity, so the level has live orders exactly while qty > 0; dead
    counts the canceled entries still in the deque (its live order count is len(level) - dead).
    """

    __slots__ = ("qty", "dead")

    def bury(self) -> None:
        """Account for one more dead entry; compact once they are most of the deque."""
        dead = self.dead + 1
        if dead > 32 and dead + dead > len(self):
            self.compact()
        else:
            self.dead = dead

    def compact(self) -> None:
        live = [o for o in self if o[_LEAVES]]
        self.clear()
        self.extend(live)
        self.dead = 0


class _Side:
    """One side of the book: levels by price and the sorted keys that locate the best one."""

    __slots__ = ("levels", "keys", "sign")

    def __init__(self, sign: int) -> None:
        self.levels: dict[int, _Level] = {}
        # key = price * sign, ascending, so the best price of either side is keys[-1].
        self.keys: list[int] = []
        self.sign = sign

    def add_level(self, price: int) -> _Level:
        level = self.levels[price] = _Level()
        level.qty = 0
        level.dead = 0
        key = price * self.sign
        keys = self.keys
        if not keys or key > keys[-1]:
            keys.append(key)
        else:
            insort(keys, key)
        return level

    def drop_level(self, price: int) -> None:
        del self.levels[price]
        key = price * self.sign
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def rest(self, o: list) -> None:
        price = o[_PRICE]
        level = self.levels.get(price)
        if level is None:
            level = self.add_level(price)
        level.append(o)
        level.qty += o[_LEAVES]

    def unrest(self, o: list) -> None:
        """Take a live order off its level, leaving a dead entry behind."""
        price = o[_PRICE]
        level = self.levels[price]
        level.qty -= o[_LEAVES]
        o[_LEAVES] = 0
        if level.qty:
            level.bury()
        else:
            self.drop_level(price)

    def best(self) -> int | None:
        return self.keys[-1] * self.sign if self.keys else None

    def depth(self, n: int) -> list[DepthLevel]:
        sign = self.sign
        levels = self.levels
        out = []
        for key in islice(reversed(self.keys), n):
            price = key * sign
            level = levels[price]
            out.append(DepthLevel(price, level.qty, len(level) - level.dead))
        return out


class OrderBook:
    """The order book of one symbol. Not thread-safe: one worker owns it and feeds it commands serially.

    Commands (submit, cancel, replace, expire_day_orders) return a list of event tuples (see
    matching.engine.events); restore and set_last_price rebuild state after a restart.
    """

    __slots__ = (
        "symbol",
        "last_price",
        "_bids",
        "_asks",
        "_orders",
        "_stops",
        "_buy_stops",
        "_sell_stops",
        "_priority",
        "_max_order_id",
        "_held",
        "_due",
        "_trailing",
    )

    def __init__(self, symbol: str = "", *, last_price: int | None = None) -> None:
        self.symbol = symbol
        # Price of the most recent trade, in ticks; None until the first one. Stops trigger on it.
        self.last_price = last_price
        self._bids = _Side(1)
        self._asks = _Side(-1)
        # Every live order by id: resting orders and parked stops.
        self._orders: dict[int, list] = {}
        # Parked stops by id, and heaps of (stop key, priority, order); entries go stale on cancel
        # or replace and are dropped when they surface.
        self._stops: dict[int, list] = {}
        self._buy_stops: list[tuple[int, int, list]] = []
        self._sell_stops: list[tuple[int, int, list]] = []
        self._priority = 0
        # Order ids increase with arrival, so an id that is not live but not above this tells a
        # cancel that came too late from one for an order this book never saw, without keeping
        # a record of every finished order.
        self._max_order_id = 0
        # Legs off the book: held (quantity 0, waiting for the parent's first fill) or due (activated, or
        # an OCO leg just accepted, queued to enter once the incoming order has finished).
        self._held: dict[int, list] = {}
        self._due: list[list] = []
        # Parked trailing stops by id: their water marks follow every incoming order's trades.
        self._trailing: dict[int, list] = {}

    def __repr__(self) -> str:
        return (
            f"<OrderBook {self.symbol!r} bid={self.best_bid()} ask={self.best_ask()} "
            f"last={self.last_price} orders={len(self._orders)}>"
        )

    def __len__(self) -> int:
        """Number of live orders: resting plus parked stops."""
        return len(self._orders)

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        return self._bids.best()

    def best_ask(self) -> int | None:
        return self._asks.best()

    def depth(self, levels: int = 10) -> Depth:
        """The top `levels` price levels of each side, best first: price, aggregated leaves, order count."""
        return Depth(self._bids.depth(levels), self._asks.depth(levels))

    def get_order(self, order_id: int) -> OrderState | None:
        """A snapshot of a live order, or None once it is filled, canceled or was never here."""
        o = self._orders.get(order_id)
        if o is None:
            return None
        return OrderState(
            *o[:_PARKED],
            PARTIALLY_FILLED if o[_CUM] else NEW,
            o[_TYPE] in (STOP, STOP_LIMIT) and not o[_PARKED],
        )

    def open_orders(self) -> list[OrderState]:
        """Every live order in priority order: the sequence restore() needs to rebuild this book."""
        return sorted((self.get_order(i) for i in self._orders), key=lambda s: s.priority)

    # ------------------------------------------------------------------ commands

    def submit(
        self,
        order_id: int,
        account_id: int,
        side: str,
        order_type: str,
        tif: str,
        qty: int,
        price: int | None = None,
        stop_price: int | None = None,
        protection_price: int | None = None,
        *,
        filled: int = 0,
        legs: tuple[Leg, ...] | None = None,
        oco: Leg | None = None,
        trail_price: int | None = None,
        trail_bp: int | None = None,
    ) -> list:
        """Accept a new order and match it. Raises InvalidOrder (book unchanged) for malformed input.

        price is the limit price (limit, stop_limit), stop_price the trigger (stop, stop_limit), and
        protection_price bounds how far a market or stop order may walk the book: it trades only at
        prices no worse than it, and the remainder is canceled with reason market_protection.
        Market and stop orders never rest, whatever their time in force.

        filled is what the order already executed before it (re-)entered this book (an order that lost its
        place while the book was rebuilt): qty stays its total, it trades qty - filled, and later replaces,
        whose quantities are totals, count the fills as the order's own.

        legs (one or two, held until this order fills) and oco (a sibling) make a class; trail_price or
        trail_bp belong to a trailing_stop (README, "Contingent orders").
        """
        # Every check comes before the first write, so a bad order leaves no trace.
        if type(qty) is not int or qty <= 0 or type(order_id) is not int:
            raise InvalidOrder(f"order_id and qty must be ints and qty positive, got {order_id!r}, {qty!r}")
        if filled and (type(filled) is not int or not 0 < filled < qty):
            raise InvalidOrder(f"filled must be an int in [0, qty), got {filled!r}")
        if side == BUY:
            opp, own = self._asks, self._bids
        elif side == SELL:
            opp, own = self._bids, self._asks
        else:
            raise InvalidOrder(f"unknown side {side!r}")
        if order_id in self._orders or order_id in self._held:
            raise DuplicateOrderId(f"order {order_id} is already live")
        if order_type == LIMIT and tif in _RESTING_TIFS and not filled and legs is None and oco is None:
            if (type(price) is not int or price <= 0 or stop_price is not None or protection_price is not None
                    or trail_price is not None or trail_bp is not None):
                _check_prices(order_type, price, stop_price, protection_price, trail_price, trail_bp)
            if order_id > self._max_order_id:
                self._max_order_id = order_id
            priority = self._priority = self._priority + 1
            # _new_order, inlined.
            o = [order_id, account_id, side, LIMIT, tif, qty, 0, qty, price, None, None, priority, False, None]
            keys = opp.keys
            if not keys or keys[-1] < price * opp.sign:
                # The common case, inlined: a limit order that does not cross rests at once.
                level = own.levels.get(price)
                if level is None:
                    level = own.add_level(price)
                level.append(o)
                level.qty += qty
                self._orders[order_id] = o
                return [(ACCEPTED, order_id, priority), (RESTED, order_id, side, price, qty, priority)]
            events = [(ACCEPTED, order_id, priority)]
        else:
            if tif not in TIMES_IN_FORCE:
                raise InvalidOrder(f"unknown time in force {tif!r}")
            _check_prices(order_type, price, stop_price, protection_price, trail_price, trail_bp)
            if legs is not None or oco is not None:
                self._check_class(order_id, side, tif, filled, legs, oco)
            if order_type == TRAILING_STOP:
                stop_price = self._first_trail_stop(side, trail_price, trail_bp)
            if order_id > self._max_order_id:
                self._max_order_id = order_id
            priority = self._priority = self._priority + 1
            o = _new_order(
                order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price, priority
            )
            if filled:
                o[_CUM] = filled
                o[_LEAVES] = qty - filled
            events = [(ACCEPTED, order_id, priority)]
            if order_type == TRAILING_STOP or legs is not None or oco is not None:
                node = o[_X] = _Node(o)
                if order_type == TRAILING_STOP:
                    node.trail_price, node.trail_bp, node.mark = trail_price, trail_bp, self.last_price
                    events.append((TRAIL_MOVED, order_id, stop_price, node.mark))
                if legs is not None:
                    opposite = SELL if side == BUY else BUY
                    node.legs = [self._new_leg(leg, account_id, opposite, tif, 0, node) for leg in legs]
                    for leg_node in node.legs:
                        leg_node.held = True
                    if len(node.legs) == 2:
                        node.legs[0].sibling, node.legs[1].sibling = node.legs[1], node.legs[0]
                elif oco is not None:
                    leg_node = self._new_leg(oco, account_id, side, tif, qty, None)
                    node.sibling, leg_node.sibling = leg_node, node
                    self._due.append(leg_node.o)
        trades = self._park_or_trigger(o, events) if order_type in _STOP_TYPES else self._execute(o, events)
        if (trades is not None and self._stops) or self._due:
            self._work(trades, events)
        return events

    def cancel(self, order_id: int) -> list:
        """Cancel a live order at the user's request: OrderUpdate(canceled, user) or Rejected.

        An order of a class takes its whole class with it (README, "Contingent orders").
        """
        o = self._orders.pop(order_id, None)
        if o is None:
            o = self._held.get(order_id)
            if o is None:
                return [self._reject_missing(order_id)]
            return self._cancel_class(o, _USER)
        if o[_X] is not None:
            self._orders[order_id] = o
            return self._cancel_class(o, _USER)
        if o[_PARKED]:
            del self._stops[order_id]
            o[_LEAVES] = 0
        else:
            # _Side.unrest, inlined: cancels are a third of the flow.
            side = self._bids if o[_SIDE] == BUY else self._asks
            price = o[_PRICE]
            level = side.levels[price]
            leaves = o[_LEAVES]
            o[_LEAVES] = 0
            qty = level.qty - leaves
            level.qty = qty
            if not qty:
                side.drop_level(price)
            else:
                # _Level.bury, inlined.
                dead = level.dead + 1
                if dead > 32 and dead + dead > len(level):
                    level.compact()
                else:
                    level.dead = dead
        return [(ORDER_UPDATE, order_id, CANCELED, o[_QTY], o[_CUM], 0, _USER)]

    def replace(
        self,
        order_id: int,
        qty: int | None = None,
        price: int | None = None,
        stop_price: int | None = None,
        *,
        trail_price: int | None = None,
        trail_bp: int | None = None,
    ) -> list:
        """Change a live order's total quantity, limit price and/or stop price, or a trailing stop's trail.

        qty is the new TOTAL quantity (leaves_qty becomes qty - cum_qty) and must exceed cum_qty.
        The order keeps its time priority when neither price moves and qty does not grow; otherwise
        it loses it and re-enters like a new order (it may trade at once; self-trade prevention then
        treats it as the newest order). Refusals come back as Rejected(invalid_replace).
        """
        o = self._orders.get(order_id)
        if o is None:
            if order_id in self._held:
                return [(REJECTED, order_id, RejectReason.INVALID_REPLACE)]
            return [self._reject_missing(order_id)]
        cum = o[_CUM]
        new_qty = o[_QTY] if qty is None else qty
        new_price = o[_PRICE] if price is None else price
        new_stop = o[_STOP] if stop_price is None else stop_price
        node = o[_X]
        trail = trail_price is not None or trail_bp is not None
        if node is not None or trail:
            if (
                node is None
                or (new_qty != o[_QTY] and (node.parent is not None
                                            or (node.sibling is not None and node.sibling.open())))
                or (trail and (o[_TYPE] != TRAILING_STOP or (trail_price is None) == (trail_bp is None)
                               or not _valid_trail(o[_SIDE], trail_price, trail_bp)))
                or (o[_TYPE] == TRAILING_STOP and stop_price is not None)
            ):
                return [(REJECTED, order_id, RejectReason.INVALID_REPLACE)]
            if trail:
                saved = node.trail_price, node.trail_bp
                node.trail_price, node.trail_bp = trail_price, trail_bp
                new_stop = node.trail_stop()
                if o[_SIDE] == SELL and new_stop <= 0:
                    node.trail_price, node.trail_bp = saved
                    return [(REJECTED, order_id, RejectReason.INVALID_REPLACE)]
        if (
            type(new_qty) is not int
            or new_qty <= cum
            or (price is not None and (o[_PRICE] is None or type(price) is not int or price <= 0))
            # A triggered stop-limit is a plain limit order now: its stop price is spent.
            or (stop_price is not None and (not o[_PARKED] or type(stop_price) is not int or stop_price <= 0))
        ):
            return [(REJECTED, order_id, RejectReason.INVALID_REPLACE)]

        priority_lost = new_price != o[_PRICE] or new_stop != o[_STOP] or new_qty > o[_QTY] or trail
        new_leaves = new_qty - cum
        if priority_lost:
            priority = self._priority = self._priority + 1
        else:
            priority = o[_PRIORITY]
        events = [(REPLACED, order_id, new_qty, cum, new_leaves, new_price, new_stop, priority_lost, priority)]
        if o[_PARKED]:
            o[_QTY], o[_LEAVES], o[_PRICE], o[_STOP], o[_PRIORITY] = new_qty, new_leaves, new_price, new_stop, priority
            if priority_lost:
                # Re-park under the new priority (the old heap entry goes stale), or trigger at once.
                del self._stops[order_id]
                del self._orders[order_id]
                self._trailing.pop(order_id, None)
                o[_PARKED] = False
                trades = self._park_or_trigger(o, events)
                if (trades is not None and self._stops) or self._due:
                    self._work(trades, events)
            return events

        side = self._bids if o[_SIDE] == BUY else self._asks
        if not priority_lost:
            side.levels[o[_PRICE]].qty += new_leaves - o[_LEAVES]
            o[_QTY] = new_qty
            o[_LEAVES] = new_leaves
            return events

        # The old record stays behind in its deque as a dead entry; the order goes on as a copy.
        del self._orders[order_id]
        requeued = o.copy()
        side.unrest(o)
        requeued[_QTY] = new_qty
        requeued[_LEAVES] = new_leaves
        requeued[_PRICE] = new_price
        requeued[_PRIORITY] = priority
        if node is not None:
            node.o = requeued
        trades = self._execute(requeued, events)
        if (trades is not None and self._stops) or self._due:
            self._work(trades, events)
        return events

    def expire_day_orders(self) -> list:
        """End of the trading day: cancel every live DAY order (resting or parked), reason expired."""
        events = []
        for o in sorted((o for o in self._orders.values() if o[_TIF] == DAY), key=_by_priority):
            if not o[_LEAVES]:
                continue  # gone with its class
            if o[_X] is not None:
                events += self._cancel_class(o, _EXPIRED)
                continue
            (kind, order_id, status, qty, cum, leaves, _) = self.cancel(o[_ID])[0]
            events.append((kind, order_id, status, qty, cum, leaves, _EXPIRED))
        return events

    # ------------------------------------------------------------------ restart

    def restore(
        self,
        order_id: int,
        account_id: int,
        side: str,
        order_type: str,
        tif: str,
        qty: int,
        price: int | None = None,
        stop_price: int | None = None,
        *,
        cum_qty: int = 0,
        priority: int | None = None,
        triggered: bool = False,
        protection_price: int | None = None,
        trail_price: int | None = None,
        trail_bp: int | None = None,
        water_mark: int | None = None,
    ) -> None:
        """Put back an order this book had accepted and that is still open, without matching.

        For rebuilding a book after a restart: call it for every open order in ascending priority
        (the value from its latest Accepted or Rested event), then set_last_price. A limit order, or
        a stop-limit with triggered=True, joins the back of its price level; a stop or stop-limit
        with triggered=False is parked. Raises InvalidOrder if the order could not be resting (it
        would cross the book, is a market order or an IOC/FOK limit, has nothing left) or if
        priority is not above every priority the book has handed out.
        """
        if type(qty) is not int or qty <= 0 or type(order_id) is not int:
            raise InvalidOrder(f"order_id and qty must be ints and qty positive, got {order_id!r}, {qty!r}")
        if type(cum_qty) is not int or not 0 <= cum_qty < qty:
            raise InvalidOrder(f"cum_qty must be an int in [0, qty), got {cum_qty!r}")
        if side != BUY and side != SELL:
            raise InvalidOrder(f"unknown side {side!r}")
        if tif not in TIMES_IN_FORCE:
            raise InvalidOrder(f"unknown time in force {tif!r}")
        if order_id in self._orders or order_id in self._held:
            raise DuplicateOrderId(f"order {order_id} is already live")
        _check_prices(order_type, price, stop_price, protection_price, trail_price, trail_bp)
        parked = order_type != LIMIT and not triggered
        if order_type == MARKET or (order_type in (STOP, TRAILING_STOP) and triggered):
            raise InvalidOrder("a market order never rests")
        if order_type == TRAILING_STOP:
            _positive_int(water_mark, "water_mark")
            stop_price = _trail_stop(side, water_mark, trail_price, trail_bp)
            if stop_price <= 0:
                raise InvalidOrder(f"the trail puts the stop at {stop_price}")
        if not parked and tif not in _RESTING_TIFS:
            raise InvalidOrder(f"a {tif} order never rests")
        if not parked:
            opp = self._asks if side == BUY else self._bids
            if opp.keys and opp.keys[-1] >= price * opp.sign:
                raise InvalidOrder(f"order {order_id} at {price} would cross the book")
        if priority is None:
            priority = self._priority + 1
        elif type(priority) is not int or priority <= self._priority:
            raise InvalidOrder(f"priority {priority!r} must be above {self._priority}: restore in ascending priority")

        self._priority = priority
        if order_id > self._max_order_id:
            self._max_order_id = order_id
        o = _new_order(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price, priority)
        o[_CUM] = cum_qty
        o[_LEAVES] = qty - cum_qty
        if order_type == TRAILING_STOP:
            node = o[_X] = _Node(o)
            node.trail_price, node.trail_bp, node.mark = trail_price, trail_bp, water_mark
        if parked:
            self._park(o)
        else:
            (self._bids if side == BUY else self._asks).rest(o)
            self._orders[order_id] = o

    def restore_held(
        self,
        order_id: int,
        parent_id: int,
        order_type: str,
        price: int | None = None,
        stop_price: int | None = None,
        protection_price: int | None = None,
        *,
        trail_price: int | None = None,
        trail_bp: int | None = None,
    ) -> None:
        """Put back a leg still held for its open parent (restored before it), in leg order; a second one
        becomes the first one's OCO sibling."""
        parent = self._orders.get(parent_id)
        if parent is None:
            raise InvalidOrder(f"parent {parent_id!r} is not open")
        if type(order_id) is not int or order_id in self._orders or order_id in self._held:
            raise DuplicateOrderId(f"order {order_id!r} is already live")
        if parent[_TIF] not in _CLASS_TIFS or order_type == MARKET:
            raise InvalidOrder("legs are limit or stop orders of a day or gtc parent")
        _check_prices(order_type, price, stop_price, protection_price, trail_price, trail_bp)
        node = parent[_X]
        if node is None:
            node = parent[_X] = _Node(parent)
        if node.legs is None:
            node.legs = []
        if len(node.legs) == 2:
            raise InvalidOrder(f"parent {parent_id} has two legs already")
        leg = Leg(order_id, order_type, price, stop_price, protection_price, trail_price, trail_bp)
        leg_node = self._new_leg(leg, parent[_ACCOUNT], SELL if parent[_SIDE] == BUY else BUY, parent[_TIF], 0, node)
        leg_node.held = True
        if node.legs:
            node.legs[0].sibling, leg_node.sibling = leg_node, node.legs[0]
        node.legs.append(leg_node)
        if order_id > self._max_order_id:
            self._max_order_id = order_id

    def restore_link(self, order_id: int, *, parent_id: int | None = None, sibling_id: int | None = None) -> None:
        """Put back the class of open orders already restored: a live leg's open parent, an OCO sibling."""
        o = self._orders.get(order_id)
        if o is None:
            raise InvalidOrder(f"order {order_id!r} is not open")
        node = o[_X]
        if node is None:
            node = o[_X] = _Node(o)
        if parent_id is not None:
            parent = self._orders.get(parent_id)
            if parent is None:
                # A closed parent: o is still its leg (its quantity stays the class's), nothing more.
                parent = _new_order(parent_id, o[_ACCOUNT], SELL if o[_SIDE] == BUY else BUY, LIMIT, o[_TIF], 1, 1,
                                    None, None, 0)
                parent[_LEAVES] = 0
            if parent[_SIDE] == o[_SIDE] or parent[_ACCOUNT] != o[_ACCOUNT]:
                raise InvalidOrder(f"parent {parent_id!r} is not an order of the opposite side")
            parent_node = parent[_X]
            if parent_node is None:
                parent_node = parent[_X] = _Node(parent)
            if parent_node.legs is None:
                parent_node.legs = []
            if node not in parent_node.legs:
                if len(parent_node.legs) == 2:
                    raise InvalidOrder(f"parent {parent_id} has two legs already")
                parent_node.legs.append(node)
                parent_node.legs.sort(key=lambda n: n.o[_ID])
            node.parent = parent_node
        if sibling_id is not None:
            sibling = self._orders.get(sibling_id)
            if sibling is None or sibling[_SIDE] != o[_SIDE] or sibling[_ACCOUNT] != o[_ACCOUNT]:
                raise InvalidOrder(f"sibling {sibling_id!r} is not an open order of the same side")
            sibling_node = sibling[_X]
            if sibling_node is None:
                sibling_node = sibling[_X] = _Node(sibling)
            node.sibling, sibling_node.sibling = sibling_node, node

    def contingencies(self) -> list[tuple[int, int | None, int | None]]:
        """(order_id, parent_id, sibling_id) of every open order with a parent (open or not) or an open sibling."""
        out = []
        for o in (*self._orders.values(), *self._held.values()):
            node = o[_X]
            if node is None:
                continue
            parent = node.parent.o[_ID] if node.parent is not None else None
            sibling = node.sibling.o[_ID] if node.sibling is not None and node.sibling.open() else None
            if parent is not None or sibling is not None:
                out.append((o[_ID], parent, sibling))
        return sorted(out)

    def held_orders(self) -> list[tuple]:
        """The legs held for their parent: (order_id, parent_id, order_type, price, stop_price,
        protection_price, trail_price, trail_bp), by parent id, then in leg order."""
        out = []
        for o in self._held.values():
            node = o[_X]
            if node.held:
                parent = node.parent
                out.append(((parent.o[_ID], parent.legs.index(node)),
                            (o[_ID], parent.o[_ID], o[_TYPE], o[_PRICE], o[_STOP], o[_PROTECTION],
                             node.trail_price, node.trail_bp)))
        return [row for _, row in sorted(out)]

    def trail_of(self, order_id: int) -> tuple[int | None, int | None, int] | None:
        """(trail_price, trail_bp, water_mark) of an open trailing stop, else None."""
        o = self._orders.get(order_id)
        if o is None or o[_TYPE] != TRAILING_STOP:
            return None
        node = o[_X]
        return node.trail_price, node.trail_bp, node.mark

    def set_last_price(self, price: int | None) -> None:
        """Restore the last trade price after a restart. Does not trigger stops by itself."""
        if price is not None and (type(price) is not int or price <= 0):
            raise InvalidOrder(f"price must be a positive int, got {price!r}")
        self.last_price = price

    def set_sequences(self, *, last_priority: int | None = None, max_order_id: int | None = None) -> None:
        """Optionally restore the counters after a restart, so a rebuilt book numbers exactly as before.

        Without it, priorities continue above the highest restored one (which orders queues just as
        well), and a cancel of an order that finished before the restart, with an id above every
        restored one, is told unknown_order rather than too_late_to_cancel. Counters never go back.
        """
        if last_priority is not None:
            if type(last_priority) is not int or last_priority < self._priority:
                raise InvalidOrder(f"last_priority {last_priority!r} is below {self._priority}")
            self._priority = last_priority
        if max_order_id is not None:
            if type(max_order_id) is not int:
                raise InvalidOrder(f"max_order_id must be an int, got {max_order_id!r}")
            self._max_order_id = max(self._max_order_id, max_order_id)

    @property
    def last_priority(self) -> int:
        """The highest priority handed out so far."""
        return self._priority

    @property
    def max_order_id(self) -> int:
        """The highest order id submitted or restored so far."""
        return self._max_order_id

    # ------------------------------------------------------------------ matching

    def _execute(self, o: list, events: list) -> tuple[int, int] | None:
        """Match an incoming order, then rest or cancel its remainder.

        o is not in the book yet. Returns the (first, last) trade prices it made, or None if it did not trade.
        """
        if o[_SIDE] == BUY:
            opp, own = self._asks, self._bids
        else:
            opp, own = self._bids, self._asks
        sign = opp.sign
        order_type = o[_TYPE]
        marketable = order_type in _MARKETABLE
        if not marketable:
            limit_key = o[_PRICE] * sign
        elif o[_PROTECTION] is None:
            limit_key = _UNBOUNDED
        else:
            limit_key = o[_PROTECTION] * sign

        tif = o[_TIF]
        if tif == FOK:
            shortfall = self._fok_shortfall(o, opp, limit_key)
            if shortfall is not None:
                self._finish(o, shortfall, events)
                return None

        keys = opp.keys
        trades = None
        self_trade = False
        if keys and keys[-1] >= limit_key:
            trades, self_trade = self._match(o, opp, limit_key, events)

        if o[_LEAVES]:
            if self_trade:
                self._finish(o, _SELF_TRADE, events)
            elif marketable:
                self._finish(o, _PROTECTION_REASON if keys else _NO_LIQUIDITY, events)
            elif tif == IOC:
                self._finish(o, _IOC, events)
            elif tif == FOK:  # unreachable after the shortfall check; kept so a FOK can never rest
                self._finish(o, _FOK, events)
            else:
                own.rest(o)
                self._orders[o[_ID]] = o
                events.append((RESTED, o[_ID], o[_SIDE], o[_PRICE], o[_LEAVES], o[_PRIORITY]))
        return trades

    def _match(self, o: list, opp: _Side, limit_key: int, events: list) -> tuple[tuple[int, int] | None, bool]:
        """Fill o against opp from the best price while prices are within limit_key.

        Returns ((first, last) trade prices or None, whether a self-trade stopped the walk).
        """
        levels = opp.levels
        keys = opp.keys
        sign = opp.sign
        orders = self._orders
        append = events.append
        taker_id = o[_ID]
        account_id = o[_ACCOUNT]
        aggressor = o[_SIDE]
        qty = o[_QTY]
        leaves = o[_LEAVES]
        cum = o[_CUM]
        first_px = last_px = 0
        self_trade = False
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            px = key * sign
            level = levels[px]
            while True:
                # A level with live orders has a live entry; dead ones ahead of it are dropped here.
                maker = level[0]
                maker_leaves = maker[_LEAVES]
                if not maker_leaves:
                    level.popleft()
                    level.dead -= 1
                    continue
                if maker[_ACCOUNT] == account_id:
                    self_trade = True
                    break
                if not first_px:
                    first_px = px
                last_px = px
                fill = leaves if leaves < maker_leaves else maker_leaves
                maker_id = maker[_ID]
                maker_leaves -= fill
                maker[_LEAVES] = maker_leaves
                maker_cum = maker[_CUM] + fill
                maker[_CUM] = maker_cum
                leaves -= fill
                cum += fill
                level.qty -= fill
                append((TRADE, px, fill, maker_id, taker_id, maker[_ACCOUNT], account_id, aggressor))
                if maker_leaves:
                    append((ORDER_UPDATE, maker_id, PARTIALLY_FILLED, maker[_QTY], maker_cum, maker_leaves, None))
                else:
                    append((ORDER_UPDATE, maker_id, FILLED, maker[_QTY], maker_cum, 0, None))
                    level.popleft()
                    del orders[maker_id]
                append((ORDER_UPDATE, taker_id, PARTIALLY_FILLED if leaves else FILLED, qty, cum, leaves, None))
                if maker[_X] is not None or o[_X] is not None:
                    # Contingent orders (README): siblings shrink, legs grow, classes close, possibly on
                    # this very level, which is then gone already when it emptied.
                    o[_LEAVES] = leaves
                    o[_CUM] = cum
                    if maker[_X] is not None:
                        self._filled(maker, fill, events)
                    if o[_X] is not None:
                        self._filled(o, fill, events)
                    if levels.get(px) is not level:
                        break
                if not leaves or not level.qty:
                    break
            if not level.qty and levels.get(px) is level:
                del levels[px]
                keys.pop()
            if self_trade or not leaves:
                break
        o[_LEAVES] = leaves
        o[_CUM] = cum
        if not first_px:
            return None, self_trade
        # The walk only moves away from the touch, so the first and last prices traded bound them all.
        self.last_price = last_px
        return (first_px, last_px), self_trade

    def _fok_shortfall(self, o: list, opp: _Side, limit_key: int) -> str | None:
        """None if o can fill entirely right now, else why not.

        fok when the quantity within the limit (own orders included) falls short; otherwise
        self_trade when an own order stands before the fill is complete, as matching would stop there.
        """
        need = o[_LEAVES]
        keys = opp.keys
        levels = opp.levels
        sign = opp.sign
        # Level totals first, so a thin side is refused without walking its orders; the walk below
        # then visits no more orders than matching itself would fill.
        depth = 0
        available = 0
        for i in range(len(keys) - 1, -1, -1):
            if keys[i] < limit_key:
                break
            depth += 1
            available += levels[keys[i] * sign].qty
            if available >= need:
                break
        if available < need:
            return _FOK
        account_id = o[_ACCOUNT]
        for i in range(len(keys) - 1, len(keys) - 1 - depth, -1):
            for maker in levels[keys[i] * sign]:
                maker_leaves = maker[_LEAVES]
                if not maker_leaves:
                    continue
                if maker[_ACCOUNT] == account_id:
                    return _SELF_TRADE
                need -= maker_leaves
                if need <= 0:
                    return None
        return _FOK  # not reached: the levels walked hold at least `need`

    def _finish(self, o: list, reason: str, events: list) -> None:
        """Cancel the remainder of an incoming order that will not rest."""
        o[_LEAVES] = 0
        events.append((ORDER_UPDATE, o[_ID], CANCELED, o[_QTY], o[_CUM], 0, reason))
        if o[_X] is not None:
            self._closed(o, events)

    # ------------------------------------------------------------------ stops

    def _park_or_trigger(self, o: list, events: list) -> tuple[int, int] | None:
        """Park a stop order, or trigger it at once if the last trade price already reached its stop."""
        last = self.last_price
        stop = o[_STOP]
        if last is not None and (last >= stop if o[_SIDE] == BUY else last <= stop):
            o[_PRIORITY] = self._priority = self._priority + 1
            events.append((STOP_TRIGGERED, o[_ID], stop, last))
            return self._execute(o, events)
        self._park(o)
        return None

    def _park(self, o: list) -> None:
        o[_PARKED] = True
        self._orders[o[_ID]] = o
        self._stops[o[_ID]] = o
        if o[_TYPE] == TRAILING_STOP:
            self._trailing[o[_ID]] = o
        if o[_SIDE] == BUY:
            heappush(self._buy_stops, (o[_STOP], o[_PRIORITY], o))
        else:
            heappush(self._sell_stops, (-o[_STOP], o[_PRIORITY], o))
        if len(self._buy_stops) + len(self._sell_stops) > 2 * len(self._stops) + 64:
            self._compact_stops()

    def _compact_stops(self) -> None:
        stops = self._stops.values()
        self._buy_stops = [(o[_STOP], o[_PRIORITY], o) for o in stops if o[_SIDE] == BUY]
        self._sell_stops = [(-o[_STOP], o[_PRIORITY], o) for o in stops if o[_SIDE] == SELL]
        heapify(self._buy_stops)
        heapify(self._sell_stops)

    def _take_triggered(self, first: int, last: int) -> list[list]:
        """Unpark the stops that trades between first and last reached, in priority order."""
        low, high = (first, last) if first < last else (last, first)
        stops = self._stops
        triggered = []
        heap = self._buy_stops
        # An entry is stale once its order left, was re-parked (new priority) or trailed (new stop).
        while heap and heap[0][0] <= high:
            key, priority, o = heappop(heap)
            if stops.get(o[_ID]) is o and o[_PRIORITY] == priority and o[_STOP] == key:
                triggered.append(o)
        heap = self._sell_stops
        while heap and -heap[0][0] >= low:
            key, priority, o = heappop(heap)
            if stops.get(o[_ID]) is o and o[_PRIORITY] == priority and o[_STOP] == -key:
                triggered.append(o)
        triggered.sort(key=_by_priority)
        trailing = self._trailing
        for o in triggered:
            del stops[o[_ID]]
            if trailing:
                trailing.pop(o[_ID], None)
        return triggered

    def _work(self, trades: tuple[int, int] | None, events: list) -> None:
        """After an incoming order: trail, trigger, and enter what became due, first in, first out (README)."""
        queue: list[list] = []
        self._after_incoming(trades, events, queue)
        orders = self._orders
        held = self._held
        i = 0
        while i < len(queue):
            o = queue[i]
            i += 1
            if not o[_LEAVES]:
                continue  # closed while it waited (its class, a sibling's fill)
            order_id = o[_ID]
            if order_id in held:
                del held[order_id]
                node = o[_X]
                if not node.accepted:
                    node.accepted = True
                    o[_PRIORITY] = self._priority = self._priority + 1
                    events.append((ACCEPTED, order_id, o[_PRIORITY]))
                if o[_TYPE] == TRAILING_STOP:
                    node.mark = self.last_price
                    o[_STOP] = node.trail_stop()
                    events.append((TRAIL_MOVED, order_id, o[_STOP], node.mark))
                more = self._park_or_trigger(o, events) if o[_TYPE] in _STOP_TYPES else self._execute(o, events)
            else:
                del orders[order_id]
                o[_PARKED] = False
                o[_PRIORITY] = self._priority = self._priority + 1
                events.append((STOP_TRIGGERED, order_id, o[_STOP], self.last_price))
                more = self._execute(o, events)
            self._after_incoming(more, events, queue)

    def _after_incoming(self, trades: tuple[int, int] | None, events: list, queue: list) -> None:
        taken = None
        if trades is not None and self._stops:
            first, last = trades
            trailing = self._trailing
            marks = None
            if trailing:
                marks = {order_id: o[_X].mark for order_id, o in trailing.items()}
                self._trail(first)
            taken = self._take_triggered(first, last)
            if trailing:
                self._trail(last)
                moved = sorted((o for order_id, o in trailing.items() if o[_X].mark != marks[order_id]),
                               key=_by_priority)
                events.extend((TRAIL_MOVED, o[_ID], o[_STOP], o[_X].mark) for o in moved)
        if self._due:
            queue.extend(self._due)
            self._due.clear()
        if taken:
            queue.extend(taken)

    def _trail(self, price: int) -> None:
        """Take a trade price into every parked trailing stop's water mark, moving stops that follow it."""
        for o in self._trailing.values():
            node = o[_X]
            if (price > node.mark) if o[_SIDE] == SELL else (price < node.mark):
                node.mark = price
                stop = node.trail_stop()
                if stop != o[_STOP]:
                    o[_STOP] = stop
                    if o[_SIDE] == BUY:
                        heappush(self._buy_stops, (stop, o[_PRIORITY], o))
                    else:
                        heappush(self._sell_stops, (-stop, o[_PRIORITY], o))
        if len(self._buy_stops) + len(self._sell_stops) > 2 * len(self._stops) + 64:
            self._compact_stops()

    # ------------------------------------------------------------------ classes

    def _check_class(self, order_id, side, tif, filled, legs, oco) -> None:
        if tif not in _CLASS_TIFS:
            raise InvalidOrder("an order with legs or an oco sibling is day or gtc")
        if filled:
            raise InvalidOrder("an order with a class cannot re-enter with fills; restore its class instead")
        if legs is not None and oco is not None:
            raise InvalidOrder("an order has legs or an oco sibling, not both")
        specs = (oco,) if oco is not None else tuple(legs)
        if not 1 <= len(specs) <= 2:
            raise InvalidOrder("one or two legs")
        seen = {order_id}
        for leg in specs:
            if not isinstance(leg, Leg):
                raise InvalidOrder(f"a leg is a Leg, got {leg!r}")
            if type(leg.order_id) is not int or leg.order_id in seen:
                raise InvalidOrder(f"leg id {leg.order_id!r} must be a new int")
            if leg.order_id in self._orders or leg.order_id in self._held:
                raise DuplicateOrderId(f"order {leg.order_id} is already live")
            seen.add(leg.order_id)
            if leg.order_type == MARKET:
                raise InvalidOrder("a leg is a limit, stop, stop_limit or trailing_stop order")
            _check_prices(leg.order_type, leg.price, leg.stop_price, leg.protection_price, leg.trail_price,
                          leg.trail_bp)
            if oco is not None and leg.order_type == TRAILING_STOP:
                self._first_trail_stop(side, leg.trail_price, leg.trail_bp)

    def _first_trail_stop(self, side, trail_price, trail_bp) -> int:
        if self.last_price is None:
            raise InvalidOrder("a trailing stop needs a last trade price to start its water mark")
        stop = _trail_stop(side, self.last_price, trail_price, trail_bp)
        if stop <= 0:
            raise InvalidOrder(f"the trail puts the stop at {stop}")
        return stop

    def _new_leg(self, leg: Leg, account_id, side, tif, qty, parent: _Node | None) -> _Node:
        """A leg's record and node, off the book in _held (the caller makes it held or due)."""
        o = _new_order(leg.order_id, account_id, side, leg.order_type, tif, qty, leg.price, leg.stop_price,
                       leg.protection_price, 0)
        node = o[_X] = _Node(o)
        node.parent = parent
        node.accepted = False  # Accepted, with its priority, when it enters the book
        node.trail_price, node.trail_bp = leg.trail_price, leg.trail_bp  # its mark starts then too
        self._held[leg.order_id] = o
        if leg.order_id > self._max_order_id:
            self._max_order_id = leg.order_id
        return node

    def _filled(self, o: list, fill: int, events: list) -> None:
        """A class member just traded `fill` (its Trade and OrderUpdates are out): the class follows."""
        node = o[_X]
        sibling = node.sibling
        if sibling is not None:
            s = sibling.o
            if s[_LEAVES] <= fill:
                self._kill(s, _OCO, events)
            else:
                self._resize(s, -fill, ResizeReason.OCO, events)
        if node.legs is not None:
            for leg in node.legs:
                if leg.held:
                    leg.held = False
                    self._due.append(leg.o)
                elif not leg.o[_LEAVES]:
                    continue
                self._resize(leg.o, fill, ResizeReason.PARENT_FILL, events)
        if not o[_LEAVES]:
            self._closed(o, events)

    def _resize(self, o: list, delta: int, reason: str, events: list) -> None:
        o[_QTY] += delta
        o[_LEAVES] += delta
        if not o[_PARKED] and self._orders.get(o[_ID]) is o:
            (self._bids if o[_SIDE] == BUY else self._asks).levels[o[_PRICE]].qty += delta
        events.append((RESIZED, o[_ID], o[_QTY], o[_CUM], o[_LEAVES], reason))

    def _closed(self, o: list, events: list) -> None:
        """A class member left the book, filled or canceled by the book: its class follows (README)."""
        node = o[_X]
        sibling = node.sibling
        if sibling is not None:
            sibling.sibling = None
            node.sibling = None
            if sibling.open():
                self._kill(sibling.o, _OCO, events)
        if node.legs is not None and not o[_CUM]:
            for leg in node.legs:
                if leg.held:
                    self._kill(leg.o, _OCO, events)
        parent = node.parent
        if parent is not None and parent.o[_LEAVES]:
            self._kill(parent.o, _OCO, events)

    def _kill(self, o: list, reason: str, events: list) -> None:
        """Cancel an open order for its class, wherever it is (held, due, parked, queued or resting)."""
        self._remove(o)
        events.append((ORDER_UPDATE, o[_ID], CANCELED, o[_QTY], o[_CUM], 0, reason))
        self._closed(o, events)

    def _remove(self, o: list) -> None:
        order_id = o[_ID]
        node = o[_X]
        if node is not None:
            node.held = False
        if order_id in self._held:
            del self._held[order_id]  # a due one is skipped in its queue once its leaves are 0
        elif self._orders.get(order_id) is o:
            del self._orders[order_id]
            if o[_PARKED]:
                if self._stops.pop(order_id, None) is not None:
                    self._trailing.pop(order_id, None)
                # else: taken by a trigger and queued; skipped once its leaves are 0
            else:
                side = self._bids if o[_SIDE] == BUY else self._asks
                side.unrest(o)
        o[_LEAVES] = 0

    def _cancel_class(self, o: list, reason: str) -> list:
        """Cancel o and every other open order of its class (by id), all with the same reason."""
        root = o[_X]
        while root.parent is not None:
            root = root.parent
        nodes = [root, *(root.legs or ())]
        nodes += [n.sibling for n in nodes if n.sibling is not None]
        others = sorted({id(n): n.o for n in nodes if n.o is not o and n.open()}.values(), key=lambda m: m[_ID])
        events = []
        for m in (o, *others):
            self._remove(m)
            events.append((ORDER_UPDATE, m[_ID], CANCELED, m[_QTY], m[_CUM], 0, reason))
        return events

    # ------------------------------------------------------------------ helpers

    def _reject_missing(self, order_id: int) -> tuple:
        if type(order_id) is int and order_id <= self._max_order_id:
            return (REJECTED, order_id, RejectReason.TOO_LATE_TO_CANCEL)
        return (REJECTED, order_id, RejectReason.UNKNOWN_ORDER)


def _new_order(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price, priority):
    """A fresh order record, laid out as the _ID.._PARKED positions say."""
    return [order_id, account_id, side, order_type, tif, qty, 0, qty, price, stop_price, protection_price, priority, False,  # noqa: E501
            None]


def _by_priority(o: list) -> int:
    return o[_PRIORITY]


def _positive_int(value, name: str) -> None:
    if type(value) is not int or value <= 0:
        raise InvalidOrder(f"{name} must be a positive int, got {value!r}")


def _valid_trail(side, trail_price, trail_bp) -> bool:
    """Exactly one trail, a positive int; a percentage below 100% for a sell."""
    if trail_price is not None:
        return trail_bp is None and type(trail_price) is int and trail_price > 0
    return type(trail_bp) is int and trail_bp > 0 and (side == BUY or trail_bp < 10000)


def _check_prices(order_type, price, stop_price, protection_price, trail_price=None, trail_bp=None) -> None:
    """Raise InvalidOrder unless the price fields fit the order type."""
    if order_type == TRAILING_STOP:
        if price is not None or stop_price is not None:
            raise InvalidOrder("a trailing stop takes no price or stop_price: its trail sets the stop")
        if not _valid_trail(SELL, trail_price, trail_bp):
            raise InvalidOrder("a trailing stop takes one positive int trail_price or trail_bp (below 10000)")
        if protection_price is not None:
            _positive_int(protection_price, "protection_price")
        return
    if trail_price is not None or trail_bp is not None:
        raise InvalidOrder("only a trailing stop takes trail_price or trail_bp")
    if order_type == LIMIT:
        _positive_int(price, "price")
        if stop_price is not None or protection_price is not None:
            raise InvalidOrder("a limit order takes neither stop_price nor protection_price")
    elif order_type == MARKET:
        if price is not None or stop_price is not None:
            raise InvalidOrder("a market order takes no price or stop_price")
    elif order_type == STOP:
        _positive_int(stop_price, "stop_price")
        if price is not None:
            raise InvalidOrder("a stop order takes no price; use stop_limit")
    elif order_type == STOP_LIMIT:
        _positive_int(stop_price, "stop_price")
        _positive_int(price, "price")
        if protection_price is not None:
            raise InvalidOrder("a stop-limit order is bounded by its price, not a protection_price")
    else:
        raise InvalidOrder(f"unknown order type {order_type!r}")
    if protection_price is not None:
        _positive_int(protection_price, "protection_price")
