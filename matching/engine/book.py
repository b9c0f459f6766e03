"""In-memory price-time priority order book for one symbol: integer ticks and lots in, plain events out.

Layout, chosen so each command costs the same whether 1k or 1M orders rest:

* every live order (resting or parked stop) is in one dict by order id: O(1) cancel and replace;
* each side keeps a dict price -> _Level, a deque of orders oldest first that also carries the
  level's aggregated leaves quantity and live order count. A cancel only zeroes the order's
  leaves_qty and the level totals; the dead entry leaves the deque when matching reaches it, when
  the level empties, or when dead entries outnumber live ones (the level is then compacted). That
  keeps a cancel to the id dict and the order itself: at 1M resting orders every other structure a
  cancel would touch is a cache miss;
* each side keeps the sorted list of its level prices as "keys" (bids: price, asks: -price), so the
  best price is always keys[-1] and the touch is popped or appended in O(1); a level away from the
  touch is inserted or removed by bisect over the levels, not the orders;
* parked stop orders sit in two heaps keyed by stop price, with stale entries skipped lazily.

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

# A limit key below every real key: a market order without a protection price may walk the whole side.
_UNBOUNDED = -(1 << 62)

_RESTING_TIFS = frozenset({DAY, GTC})

_USER = CancelReason.USER
_IOC = CancelReason.IOC
_FOK = CancelReason.FOK
_SELF_TRADE = CancelReason.SELF_TRADE
_NO_LIQUIDITY = CancelReason.NO_LIQUIDITY
_PROTECTION = CancelReason.PROTECTION
_EXPIRED = CancelReason.EXPIRED


class Order:
    """The book's live state of one order. Private to the book: read it through OrderBook.get_order."""

    __slots__ = (
        "order_id",
        "account_id",
        "side",
        "order_type",
        "tif",
        "qty",
        "cum_qty",
        "leaves_qty",
        "price",
        "stop_price",
        "protection_price",
        "priority",
        "parked",
    )

    def __init__(self, order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price):
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.qty = qty
        self.cum_qty = 0
        self.leaves_qty = qty
        self.price = price
        self.stop_price = stop_price
        self.protection_price = protection_price
        self.priority = 0
        # True while a stop or stop-limit waits for its trigger, off the book.
        self.parked = False

    def requeued(self, qty: int, price: int | None) -> Order:
        """A copy for a new queue position; the old object must stay behind as a dead level entry."""
        o = Order(
            self.order_id,
            self.account_id,
            self.side,
            self.order_type,
            self.tif,
            qty,
            price,
            self.stop_price,
            self.protection_price,
        )
        o.cum_qty = self.cum_qty
        o.leaves_qty = qty - self.cum_qty
        return o


class _Level(deque):
    """Orders resting at one price, oldest first, with canceled ones (leaves_qty 0) not yet dropped.

    qty is the aggregated leaves_qty and count the number of live orders.
    """

    __slots__ = ("qty", "count")

    def compact(self) -> None:
        live = [o for o in self if o.leaves_qty]
        self.clear()
        self.extend(live)


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
        level.count = 0
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

    def best(self) -> int | None:
        return self.keys[-1] * self.sign if self.keys else None

    def depth(self, n: int) -> list[DepthLevel]:
        sign = self.sign
        levels = self.levels
        out = []
        for key in islice(reversed(self.keys), n):
            price = key * sign
            level = levels[price]
            out.append(DepthLevel(price, level.qty, level.count))
        return out


def _positive_int(value, name: str) -> None:
    if type(value) is not int or value <= 0:
        raise InvalidOrder(f"{name} must be a positive int, got {value!r}")


class OrderBook:
    """The order book of one symbol. Not thread-safe: one worker owns it and feeds it commands serially.

    Commands (submit, cancel, replace, expire_day_orders) return a list of events; restore and
    set_last_price rebuild state after a restart and return nothing.
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
        "_done",
        "_done_before",
        "_done_capacity",
    )

    def __init__(self, symbol: str = "", *, last_price: int | None = None, done_capacity: int = 100_000) -> None:
        self.symbol = symbol
        # Price of the most recent trade, in ticks; None until the first one. Stops trigger on it.
        self.last_price = last_price
        self._bids = _Side(1)
        self._asks = _Side(-1)
        # Every live order by id: resting orders and parked stops.
        self._orders: dict[int, Order] = {}
        # Parked stops by id, and heaps of (stop key, priority, order); entries go stale on cancel
        # or replace and are dropped when they surface.
        self._stops: dict[int, Order] = {}
        self._buy_stops: list[tuple[int, int, Order]] = []
        self._sell_stops: list[tuple[int, int, Order]] = []
        self._priority = 0
        # Ids of recently finished orders, so a late cancel is told "too late" rather than "unknown".
        # Two generations of at most done_capacity ids each keep the memory bounded.
        self._done: set[int] = set()
        self._done_before: set[int] = set()
        self._done_capacity = done_capacity

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
            o.order_id,
            o.account_id,
            o.side,
            o.order_type,
            o.tif,
            o.qty,
            o.cum_qty,
            o.leaves_qty,
            o.price,
            o.stop_price,
            o.protection_price,
            o.priority,
            PARTIALLY_FILLED if o.cum_qty else NEW,
            o.order_type in (STOP, STOP_LIMIT) and not o.parked,
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
    ) -> list:
        """Accept a new order and match it. Raises InvalidOrder (book unchanged) for malformed input.

        price is the limit price (limit, stop_limit), stop_price the trigger (stop, stop_limit), and
        protection_price bounds how far a market or stop order may walk the book: it trades only at
        prices no worse than it, and the remainder is canceled with reason market_protection.
        Market and stop orders never rest, whatever their time in force.
        """
        # Checks come first so that a bad order leaves no trace.
        if type(qty) is not int or qty <= 0:
            raise InvalidOrder(f"qty must be a positive int, got {qty!r}")
        if side == BUY:
            opp = self._asks
        elif side == SELL:
            opp = self._bids
        else:
            raise InvalidOrder(f"unknown side {side!r}")
        if tif not in TIMES_IN_FORCE:
            raise InvalidOrder(f"unknown time in force {tif!r}")
        if order_id in self._orders:
            raise DuplicateOrderId(f"order {order_id} is already live")
        if order_type == LIMIT:
            if type(price) is not int or price <= 0:
                raise InvalidOrder(f"price must be a positive int, got {price!r}")
            if stop_price is not None or protection_price is not None:
                raise InvalidOrder("a limit order takes neither stop_price nor protection_price")
        else:
            _check_other_prices(order_type, price, stop_price, protection_price)

        o = Order(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price)
        o.priority = self._priority = self._priority + 1
        events = [(ACCEPTED, order_id, o.priority)]

        if order_type == LIMIT:
            keys = opp.keys
            if (not keys or keys[-1] < price * opp.sign) and tif in _RESTING_TIFS:
                # The common case: a limit order that does not cross rests at once.
                own = self._bids if opp is self._asks else self._asks
                level = own.levels.get(price)
                if level is None:
                    level = own.add_level(price)
                level.append(o)
                level.qty += qty
                level.count += 1
                self._orders[order_id] = o
                events.append((RESTED, order_id, side, price, qty, o.priority))
                return events
            trades = self._execute(o, events)
        elif order_type == MARKET:
            trades = self._execute(o, events)
        else:
            trades = self._park_or_trigger(o, events)
        if trades is not None:
            self._run_triggers(trades, events)
        return events

    def cancel(self, order_id: int) -> list:
        """Cancel a live order at the user's request: OrderUpdate(canceled, user) or Rejected."""
        o = self._orders.pop(order_id, None)
        if o is None:
            return [self._reject_missing(order_id)]
        if o.parked:
            del self._stops[order_id]
        else:
            side = self._bids if o.side == BUY else self._asks
            price = o.price
            level = side.levels[price]
            level.qty -= o.leaves_qty
            count = level.count - 1
            level.count = count
            if not count:
                side.drop_level(price)
            elif len(level) > 2 * count + 32:
                level.compact()
        # leaves_qty 0 marks the entry dead in its level's deque.
        o.leaves_qty = 0
        self._remember_done(order_id)
        return [(ORDER_UPDATE, order_id, CANCELED, o.qty, o.cum_qty, 0, _USER)]

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
        new_qty = o.qty if qty is None else qty
        new_price = o.price if price is None else price
        new_stop = o.stop_price if stop_price is None else stop_price
        if (
            type(new_qty) is not int
            or new_qty <= o.cum_qty
            or (price is not None and (o.price is None or type(price) is not int or price <= 0))
            # A triggered stop-limit is a plain limit order now: its stop price is spent.
            or (stop_price is not None and (not o.parked or type(stop_price) is not int or stop_price <= 0))
        ):
            return [(REJECTED, order_id, RejectReason.INVALID_REPLACE)]

        priority_lost = new_price != o.price or new_stop != o.stop_price or new_qty > o.qty
        new_leaves = new_qty - o.cum_qty
        if o.parked:
            o.qty, o.leaves_qty, o.price, o.stop_price = new_qty, new_leaves, new_price, new_stop
            events = [(REPLACED, order_id, new_qty, o.cum_qty, new_leaves, new_price, new_stop, priority_lost)]
            if priority_lost:
                del self._stops[order_id]
                del self._orders[order_id]
                o.parked = False
                o.priority = self._priority = self._priority + 1
                trades = self._park_or_trigger(o, events)
                if trades is not None:
                    self._run_triggers(trades, events)
            return events

        side = self._bids if o.side == BUY else self._asks
        level = side.levels[o.price]
        if not priority_lost:
            level.qty += new_leaves - o.leaves_qty
            o.qty = new_qty
            o.leaves_qty = new_leaves
            return [(REPLACED, order_id, new_qty, o.cum_qty, new_leaves, new_price, new_stop, False)]

        level.qty -= o.leaves_qty
        level.count -= 1
        if not level.count:
            side.drop_level(o.price)
        del self._orders[order_id]
        # The old object stays in its deque as a dead entry; the order goes on as a new object.
        o.leaves_qty = 0
        o = o.requeued(new_qty, new_price)
        o.priority = self._priority = self._priority + 1
        events = [(REPLACED, order_id, new_qty, o.cum_qty, new_leaves, new_price, new_stop, True)]
        trades = self._execute(o, events)
        if trades is not None:
            self._run_triggers(trades, events)
        return events

    def expire_day_orders(self) -> list:
        """End of the trading day: cancel every live DAY order (resting or parked), reason expired."""
        events = []
        for o in sorted((o for o in self._orders.values() if o.tif == DAY), key=lambda o: o.priority):
            events.extend(self._cancel_live(o, _EXPIRED))
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
        a stop-limit with triggered=True, rests at the back of its price level; a stop or stop-limit
        with triggered=False is parked. Raises InvalidOrder if the order could not be resting (for
        instance it would cross the book, is market/IOC/FOK, or has nothing left) or if priority is
        not above every priority the book has handed out.
        """
        _positive_int(qty, "qty")
        if type(cum_qty) is not int or not 0 <= cum_qty < qty:
            raise InvalidOrder(f"cum_qty must be an int in [0, qty), got {cum_qty!r}")
        if side not in (BUY, SELL):
            raise InvalidOrder(f"unknown side {side!r}")
        if tif not in TIMES_IN_FORCE:
            raise InvalidOrder(f"unknown time in force {tif!r}")
        if tif not in (DAY, GTC) and not (order_type in (STOP, STOP_LIMIT) and not triggered):
            raise InvalidOrder(f"a {tif} order never rests")
        if order_id in self._orders:
            raise DuplicateOrderId(f"order {order_id} is already live")
        if order_type == LIMIT:
            _positive_int(price, "price")
            if stop_price is not None or protection_price is not None:
                raise InvalidOrder("a limit order takes neither stop_price nor protection_price")
        elif order_type == MARKET or (order_type == STOP and triggered):
            raise InvalidOrder("a market order never rests")
        else:
            _check_other_prices(order_type, price, stop_price, protection_price)
        parked = order_type != LIMIT and not triggered
        if not parked:
            opp = self._asks if side == BUY else self._bids
            if opp.keys and opp.keys[-1] >= price * opp.sign:
                raise InvalidOrder(f"order {order_id} at {price} would cross the book")
        if priority is None:
            priority = self._priority + 1
        elif type(priority) is not int or priority <= self._priority:
            raise InvalidOrder(f"priority {priority!r} must be above {self._priority}: restore in ascending priority")

        o = Order(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price)
        o.cum_qty = cum_qty
        o.leaves_qty = qty - cum_qty
        o.priority = self._priority = priority
        if parked:
            self._park(o)
        else:
            own = self._bids if side == BUY else self._asks
            level = own.levels.get(price)
            if level is None:
                level = own.add_level(price)
            level.append(o)
            level.qty += o.leaves_qty
            level.count += 1
            self._orders[order_id] = o

    def set_last_price(self, price: int | None) -> None:
        """Restore the last trade price after a restart. Does not trigger stops by itself."""
        if price is not None:
            _positive_int(price, "price")
        self.last_price = price

    # ------------------------------------------------------------------ matching

    def _execute(self, o: Order, events: list) -> tuple[int, int] | None:
        """Match an incoming order, then rest or cancel its remainder.

        o is not in the book yet. Returns the (low, high) trade prices it made, or None if it did not trade.
        """
        if o.side == BUY:
            opp, own = self._asks, self._bids
        else:
            opp, own = self._bids, self._asks
        sign = opp.sign
        marketable = o.order_type == MARKET or o.order_type == STOP
        if not marketable:
            limit_key = o.price * sign
        elif o.protection_price is None:
            limit_key = _UNBOUNDED
        else:
            limit_key = o.protection_price * sign

        if o.tif == FOK:
            shortfall = self._fok_shortfall(o, opp, limit_key)
            if shortfall is not None:
                self._finish(o, shortfall, events)
                return None

        keys = opp.keys
        trades = None
        self_trade = False
        if keys and keys[-1] >= limit_key:
            trades, self_trade = self._match(o, opp, limit_key, events)

        if o.leaves_qty:
            if self_trade:
                self._finish(o, _SELF_TRADE, events)
            elif marketable:
                self._finish(o, _PROTECTION if keys else _NO_LIQUIDITY, events)
            elif o.tif == IOC or o.tif == FOK:
                self._finish(o, _IOC if o.tif == IOC else _FOK, events)
            else:
                price = o.price
                level = own.levels.get(price)
                if level is None:
                    level = own.add_level(price)
                level.append(o)
                level.qty += o.leaves_qty
                level.count += 1
                self._orders[o.order_id] = o
                events.append((RESTED, o.order_id, o.side, price, o.leaves_qty, o.priority))
        else:
            self._remember_done(o.order_id)
        return trades

    def _match(self, o: Order, opp: _Side, limit_key: int, events: list) -> tuple[tuple[int, int] | None, bool]:
        """Fill o against opp from the best price while prices are within limit_key.

        Returns ((low, high) trade prices or None, whether a self-trade stopped the walk).
        """
        levels = opp.levels
        keys = opp.keys
        sign = opp.sign
        orders = self._orders
        append = events.append
        taker_id = o.order_id
        account_id = o.account_id
        aggressor = o.side
        qty = o.qty
        leaves = o.leaves_qty
        cum = o.cum_qty
        done = self._done
        first_px = px = 0
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
                maker_leaves = maker.leaves_qty
                if not maker_leaves:
                    level.popleft()
                    continue
                if maker.account_id == account_id:
                    self_trade = True
                    break
                if not first_px:
                    first_px = px
                fill = leaves if leaves < maker_leaves else maker_leaves
                maker_id = maker.order_id
                maker_leaves -= fill
                maker.leaves_qty = maker_leaves
                maker_cum = maker.cum_qty + fill
                maker.cum_qty = maker_cum
                leaves -= fill
                cum += fill
                level.qty -= fill
                append((TRADE, px, fill, maker_id, taker_id, maker.account_id, account_id, aggressor))
                if maker_leaves:
                    append((ORDER_UPDATE, maker_id, PARTIALLY_FILLED, maker.qty, maker_cum, maker_leaves, None))
                else:
                    append((ORDER_UPDATE, maker_id, FILLED, maker.qty, maker_cum, 0, None))
                    level.popleft()
                    level.count -= 1
                    del orders[maker_id]
                    done.add(maker_id)
                append((ORDER_UPDATE, taker_id, PARTIALLY_FILLED if leaves else FILLED, qty, cum, leaves, None))
                if not leaves or not level.count:
                    break
            if not level.count:
                del levels[px]
                keys.pop()
            if self_trade or not leaves:
                break
        if len(done) >= self._done_capacity:
            self._done_before = done
            self._done = set()
        o.leaves_qty = leaves
        o.cum_qty = cum
        if not first_px:
            return None, self_trade
        # px is the last price traded: the walk only moves away from the touch, so it is the far end.
        self.last_price = px
        return ((first_px, px) if first_px < px else (px, first_px)), self_trade

    def _fok_shortfall(self, o: Order, opp: _Side, limit_key: int) -> str | None:
        """None if o can fill entirely right now, else why not (fok, or self_trade if an own order blocks)."""
        need = o.leaves_qty
        account_id = o.account_id
        keys = opp.keys
        levels = opp.levels
        sign = opp.sign
        for i in range(len(keys) - 1, -1, -1):
            key = keys[i]
            if key < limit_key:
                break
            for maker in levels[key * sign]:
                if not maker.leaves_qty:
                    continue
                if maker.account_id == account_id:
                    return _SELF_TRADE
                need -= maker.leaves_qty
                if need <= 0:
                    return None
        return _FOK

    def _finish(self, o: Order, reason: str, events: list) -> None:
        """Cancel the remainder of an incoming order that will not rest."""
        o.leaves_qty = 0
        self._remember_done(o.order_id)
        events.append((ORDER_UPDATE, o.order_id, CANCELED, o.qty, o.cum_qty, 0, reason))

    # ------------------------------------------------------------------ stops

    def _park_or_trigger(self, o: Order, events: list) -> tuple[int, int] | None:
        """Park a stop order, or trigger it at once if the last trade price already reached its stop."""
        last = self.last_price
        if last is not None and (last >= o.stop_price if o.side == BUY else last <= o.stop_price):
            events.append((STOP_TRIGGERED, o.order_id, o.stop_price, last))
            return self._execute(o, events)
        self._park(o)
        return None

    def _park(self, o: Order) -> None:
        o.parked = True
        self._orders[o.order_id] = o
        self._stops[o.order_id] = o
        if o.side == BUY:
            heappush(self._buy_stops, (o.stop_price, o.priority, o))
        else:
            heappush(self._sell_stops, (-o.stop_price, o.priority, o))
        if len(self._buy_stops) + len(self._sell_stops) > 2 * len(self._stops) + 64:
            self._compact_stops()

    def _compact_stops(self) -> None:
        self._buy_stops = [(o.stop_price, o.priority, o) for o in self._stops.values() if o.side == BUY]
        self._sell_stops = [(-o.stop_price, o.priority, o) for o in self._stops.values() if o.side == SELL]
        heapify(self._buy_stops)
        heapify(self._sell_stops)

    def _take_triggered(self, low: int, high: int) -> list[Order]:
        """Unpark the stops that trades between low and high reached, in priority order."""
        stops = self._stops
        triggered = []
        heap = self._buy_stops
        while heap and heap[0][0] <= high:
            _, priority, o = heappop(heap)
            if stops.get(o.order_id) is o and o.priority == priority:
                triggered.append(o)
        heap = self._sell_stops
        while heap and -heap[0][0] >= low:
            _, priority, o = heappop(heap)
            if stops.get(o.order_id) is o and o.priority == priority:
                triggered.append(o)
        triggered.sort(key=_by_priority)
        for o in triggered:
            del stops[o.order_id]
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
            del orders[o.order_id]
            o.parked = False
            o.priority = self._priority = self._priority + 1
            events.append((STOP_TRIGGERED, o.order_id, o.stop_price, self.last_price))
            more = self._execute(o, events)
            if more is not None and self._stops:
                queue.extend(self._take_triggered(*more))

    # ------------------------------------------------------------------ helpers

    def _cancel_live(self, o: Order, reason: str) -> list:
        events = self.cancel(o.order_id)
        if reason != _USER:
            events[-1] = (*events[-1][:-1], reason)
        return events

    def _remember_done(self, order_id: int) -> None:
        done = self._done
        done.add(order_id)
        if len(done) >= self._done_capacity:
            self._done_before = done
            self._done = set()

    def _reject_missing(self, order_id: int) -> tuple:
        if order_id in self._done or order_id in self._done_before:
            return (REJECTED, order_id, RejectReason.TOO_LATE_TO_CANCEL)
        return (REJECTED, order_id, RejectReason.UNKNOWN_ORDER)


def _by_priority(o: Order) -> int:
    return o.priority


def _check_other_prices(order_type, price, stop_price, protection_price) -> None:
    """Price fields of market, stop and stop-limit orders (limit orders are checked inline)."""
    if order_type == MARKET:
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
