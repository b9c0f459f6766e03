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
    CancelReason,
    RejectReason,
)
from .errors import DuplicateOrderId, InvalidOrder
from .events import (
    ACCEPTED,
    ORDER_UPDATE,
    REJECTED,
    REPLACED,
    RESTED,
    STOP_TRIGGERED,
    TRADE,
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

# A limit key below every real key: a market order without a protection price may walk the whole side.
_UNBOUNDED = -(1 << 62)

_RESTING_TIFS = frozenset({DAY, GTC})
_STOP_TYPES = frozenset({STOP, STOP_LIMIT})
_MARKETABLE = frozenset({MARKET, STOP})  # no limit price: bounded only by protection_price

_USER = CancelReason.USER
_IOC = CancelReason.IOC
_FOK = CancelReason.FOK
_SELF_TRADE = CancelReason.SELF_TRADE
_NO_LIQUIDITY = CancelReason.NO_LIQUIDITY
_PROTECTION_REASON = CancelReason.PROTECTION
_EXPIRED = CancelReason.EXPIRED


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
    ) -> list:
        """Accept a new order and match it. Raises InvalidOrder (book unchanged) for malformed input.

        price is the limit price (limit, stop_limit), stop_price the trigger (stop, stop_limit), and
        protection_price bounds how far a market or stop order may walk the book: it trades only at
        prices no worse than it, and the remainder is canceled with reason market_protection.
        Market and stop orders never rest, whatever their time in force.

        filled is what the order already executed before it (re-)entered this book (an order that lost its
        place while the book was rebuilt): qty stays its total, it trades qty - filled, and later replaces,
        whose quantities are totals, count the fills as the order's own.
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
        if order_id in self._orders:
            raise DuplicateOrderId(f"order {order_id} is already live")
        if order_type == LIMIT and tif in _RESTING_TIFS and not filled:
            if type(price) is not int or price <= 0 or stop_price is not None or protection_price is not None:
                _check_prices(order_type, price, stop_price, protection_price)
            if order_id > self._max_order_id:
                self._max_order_id = order_id
            priority = self._priority = self._priority + 1
            # _new_order, inlined.
            o = [order_id, account_id, side, LIMIT, tif, qty, 0, qty, price, None, None, priority, False]
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
        else:
            if tif not in TIMES_IN_FORCE:
                raise InvalidOrder(f"unknown time in force {tif!r}")
            _check_prices(order_type, price, stop_price, protection_price)
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
        trades = self._park_or_trigger(o, events) if order_type in _STOP_TYPES else self._execute(o, events)
        if trades is not None:
            self._run_triggers(trades, events)
        return events

    def cancel(self, order_id: int) -> list:
        """Cancel a live order at the user's request: OrderUpdate(canceled, user) or Rejected."""
        o = self._orders.pop(order_id, None)
        if o is None:
            return [self._reject_missing(order_id)]
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
    ) -> list:
        """Change a live order's total quantity, limit price and/or stop price.

        qty is the new TOTAL quantity (leaves_qty becomes qty - cum_qty) and must exceed cum_qty.
        The order keeps its time priority when neither price moves and qty does not grow; otherwise
        it loses it and re-enters like a new order (it may trade at once; self-trade prevention then
        treats it as the newest order). Refusals come back as Rejected(invalid_replace).
        """
        o = self._orders.get(order_id)
        if o is None:
            return [self._reject_missing(order_id)]
        cum = o[_CUM]
        new_qty = o[_QTY] if qty is None else qty
        new_price = o[_PRICE] if price is None else price
        new_stop = o[_STOP] if stop_price is None else stop_price
        if (
            type(new_qty) is not int
            or new_qty <= cum
            or (price is not None and (o[_PRICE] is None or type(price) is not int or price <= 0))
            # A triggered stop-limit is a plain limit order now: its stop price is spent.
            or (stop_price is not None and (not o[_PARKED] or type(stop_price) is not int or stop_price <= 0))
        ):
            return [(REJECTED, order_id, RejectReason.INVALID_REPLACE)]

        priority_lost = new_price != o[_PRICE] or new_stop != o[_STOP] or new_qty > o[_QTY]
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
                o[_PARKED] = False
                trades = self._park_or_trigger(o, events)
                if trades is not None:
                    self._run_triggers(trades, events)
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
        trades = self._execute(requeued, events)
        if trades is not None:
            self._run_triggers(trades, events)
        return events

    def expire_day_orders(self) -> list:
        """End of the trading day: cancel every live DAY order (resting or parked), reason expired."""
        events = []
        for o in sorted((o for o in self._orders.values() if o[_TIF] == DAY), key=_by_priority):
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
        if order_id in self._orders:
            raise DuplicateOrderId(f"order {order_id} is already live")
        _check_prices(order_type, price, stop_price, protection_price)
        parked = order_type != LIMIT and not triggered
        if order_type == MARKET or (order_type == STOP and triggered):
            raise InvalidOrder("a market order never rests")
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
        if parked:
            self._park(o)
        else:
            (self._bids if side == BUY else self._asks).rest(o)
            self._orders[order_id] = o

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

        o is not in the book yet. Returns the (low, high) trade prices it made, or None if it did not trade.
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

        Returns ((low, high) trade prices or None, whether a self-trade stopped the walk).
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
                if not leaves or not level.qty:
                    break
            if not level.qty:
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
        return ((first_px, last_px) if first_px < last_px else (last_px, first_px)), self_trade

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

    def _take_triggered(self, low: int, high: int) -> list[list]:
        """Unpark the stops that trades between low and high reached, in priority order."""
        stops = self._stops
        triggered = []
        heap = self._buy_stops
        while heap and heap[0][0] <= high:
            _, priority, o = heappop(heap)
            if stops.get(o[_ID]) is o and o[_PRIORITY] == priority:
                triggered.append(o)
        heap = self._sell_stops
        while heap and -heap[0][0] >= low:
            _, priority, o = heappop(heap)
            if stops.get(o[_ID]) is o and o[_PRIORITY] == priority:
                triggered.append(o)
        triggered.sort(key=_by_priority)
        for o in triggered:
            del stops[o[_ID]]
        return triggered

    def _run_triggers(self, trades: tuple[int, int], events: list) -> None:
        """Trigger the stops reached by trades, and those their own trades reach, breadth first."""
        if not self._stops:
            return
        queue = self._take_triggered(*trades)
        orders = self._orders
        i = 0
        while i < len(queue):
            o = queue[i]
            i += 1
            del orders[o[_ID]]
            o[_PARKED] = False
            o[_PRIORITY] = self._priority = self._priority + 1
            events.append((STOP_TRIGGERED, o[_ID], o[_STOP], self.last_price))
            more = self._execute(o, events)
            if more is not None and self._stops:
                queue.extend(self._take_triggered(*more))

    # ------------------------------------------------------------------ helpers

    def _reject_missing(self, order_id: int) -> tuple:
        if type(order_id) is int and order_id <= self._max_order_id:
            return (REJECTED, order_id, RejectReason.TOO_LATE_TO_CANCEL)
        return (REJECTED, order_id, RejectReason.UNKNOWN_ORDER)


def _new_order(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price, priority):
    """A fresh order record, laid out as the _ID.._PARKED positions say."""
    return [order_id, account_id, side, order_type, tif, qty, 0, qty, price, stop_price, protection_price, priority, False]  # noqa: E501


def _by_priority(o: list) -> int:
    return o[_PRIORITY]


def _positive_int(value, name: str) -> None:
    if type(value) is not int or value <= 0:
        raise InvalidOrder(f"{name} must be a positive int, got {value!r}")


def _check_prices(order_type, price, stop_price, protection_price) -> None:
    """Raise InvalidOrder unless the price fields fit the order type."""
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
