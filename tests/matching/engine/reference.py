"""Brute-force reference order book: a flat dict of open orders, sorted afresh on every call.

It states the matching rules as plainly as possible so that Hypothesis can hold matching.engine to
them: same events, same live orders, for any command sequence. It knows nothing of the engine's
data structures and makes no attempt to be fast. Inputs are assumed valid.

Contingent orders (README, "Contingent orders") are modelled with three links per order: parent
(a leg's parent), legs (a parent's legs, in leg order) and sibling (the other order of an OCO
pair: an order and its oco leg, or the two legs of a parent). Every open order is in `orders`
in one of these states:

* resting: on the book at its price;          parked: a stop waiting for its trigger;
* held: a leg of a parent with no fill yet (qty 0, off the book);
* due: a leg that will enter the book when its turn in the work queue comes;
* taken: a stop whose trigger was reached, waiting for its turn in the work queue;
* incoming: the order being matched right now.

An order leaves `orders` as soon as it is filled or canceled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matching.engine import (
    BUY,
    CANCELED,
    DAY,
    FILLED,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    SELL,
    STOP,
    STOP_LIMIT,
    TRAILING_STOP,
)
from matching.engine import CancelReason as Cancel
from matching.engine import RejectReason as Reject

RESTING, PARKED, HELD, DUE, TAKEN, INCOMING = "resting", "parked", "held", "due", "taken", "incoming"
STOP_TYPES = (STOP, STOP_LIMIT, TRAILING_STOP)
MARKETABLE = (MARKET, STOP, TRAILING_STOP)
RESIZE_OCO = "oco"
RESIZE_PARENT_FILL = "parent_fill"


@dataclass
class RefOrder:
    order_id: int
    account_id: int
    side: str
    order_type: str
    tif: str
    qty: int
    price: int | None
    stop_price: int | None
    protection_price: int | None
    priority: int | None
    cum_qty: int = 0
    leaves_qty: int = 0
    state: str = INCOMING
    trail_price: int | None = None
    trail_bp: int | None = None
    water_mark: int | None = None
    parent: int | None = None
    sibling: int | None = None
    legs: list[int] = field(default_factory=list)
    needs_accept: bool = False  # a held leg entering gets its Accepted then

    @property
    def parked(self) -> bool:
        return self.state == PARKED

    def has_limit(self) -> bool:
        return self.order_type in (LIMIT, STOP_LIMIT)

    def would_trade_at(self, price: int) -> bool:
        """Whether this incoming order accepts a trade at a resting order's price."""
        bound = self.price if self.has_limit() else self.protection_price
        if bound is None:
            return True
        return price <= bound if self.side == BUY else price >= bound

    # ------------------------------------------------------------ trailing stops

    def trail_offset(self) -> int:
        if self.trail_price is not None:
            return self.trail_price
        return -(-self.water_mark * self.trail_bp // 10000)  # ceil(mark * bp / 10000)

    def set_mark(self, mark: int) -> None:
        self.water_mark = mark
        self.stop_price = mark - self.trail_offset() if self.side == SELL else mark + self.trail_offset()

    def take_mark(self, price: int) -> None:
        """A sell's mark is the highest price seen, a buy's the lowest."""
        if price > self.water_mark if self.side == SELL else price < self.water_mark:
            self.set_mark(price)


class ReferenceBook:
    def __init__(self) -> None:
        self.orders: dict[int, RefOrder] = {}  # every open order, whatever its state
        self.last_price: int | None = None
        self.priority = 0
        self.max_order_id = 0
        self.due: list[RefOrder] = []  # legs that became due during the current incoming order

    # ---------------------------------------------------------------- queries

    @property
    def live(self) -> list[RefOrder]:
        """Resting and parked orders, in no particular order."""
        return [o for o in self.orders.values() if o.state in (RESTING, PARKED)]

    def find(self, order_id: int) -> RefOrder | None:
        return self.orders.get(order_id)

    def queue(self, side: str) -> list[RefOrder]:
        """Resting orders of one side in matching order: best price first, then priority."""
        resting = [o for o in self.orders.values() if o.side == side and o.state == RESTING]
        if side == BUY:
            return sorted(resting, key=lambda o: (-o.price, o.priority))
        return sorted(resting, key=lambda o: (o.price, o.priority))

    def depth(self, side: str) -> list[tuple[int, int, int]]:
        levels: dict[int, list[int]] = {}
        for o in self.queue(side):
            level = levels.setdefault(o.price, [0, 0])
            level[0] += o.leaves_qty
            level[1] += 1
        return [(price, qty, count) for price, (qty, count) in levels.items()]

    def held_orders(self) -> list[tuple]:
        """(order_id, parent_id, order_type, price, stop_price, protection_price, trail_price, trail_bp)
        of every held leg, by parent id, then in leg order."""
        rows = []
        for parent in sorted(self.orders.values(), key=lambda o: o.order_id):
            for leg in map(self.open, parent.legs):
                if leg is not None and leg.state == HELD:
                    rows.append((leg.order_id, parent.order_id, leg.order_type, leg.price, leg.stop_price,
                                 leg.protection_price, leg.trail_price, leg.trail_bp))  # fmt: skip
        return rows

    def contingencies(self) -> list[tuple[int, int | None, int | None]]:
        """(order_id, parent_id, sibling_id) of every open order with a parent (open or not) or an open sibling."""
        rows = []
        for o in sorted(self.orders.values(), key=lambda o: o.order_id):
            sibling = self.open(o.sibling)
            if o.parent is not None or sibling:
                rows.append((o.order_id, o.parent, sibling and sibling.order_id))
        return rows

    def trail_of(self, order_id: int) -> tuple[int | None, int | None, int] | None:
        o = self.orders.get(order_id)
        if o is None or o.order_type != TRAILING_STOP or o.state == HELD:
            return None
        return (o.trail_price, o.trail_bp, o.water_mark)

    def open(self, order_id: int | None) -> RefOrder | None:
        return None if order_id is None else self.orders.get(order_id)

    def is_leg(self, o: RefOrder) -> bool:
        """A leg of a parent (open or not), or an order with an open sibling: its quantity belongs to the class."""
        return o.parent is not None or self.open(o.sibling) is not None

    def class_of(self, o: RefOrder) -> list[RefOrder]:
        """Every open order linked to o, directly or through other orders, o included."""
        seen = {o.order_id: o}
        todo = [o]
        while todo:
            x = todo.pop()
            for other_id in (x.parent, x.sibling, *x.legs):
                other = self.open(other_id)
                if other is not None and other.order_id not in seen:
                    seen[other.order_id] = other
                    todo.append(other)
        return list(seen.values())

    # ---------------------------------------------------------------- commands

    def submit(self, order_id, account_id, side, order_type, tif, qty, price=None, stop_price=None,
               protection_price=None, *, legs=(), oco=None, trail_price=None, trail_bp=None):  # fmt: skip
        self.max_order_id = max(self.max_order_id, order_id)
        self.priority += 1
        o = RefOrder(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price,
                     self.priority, leaves_qty=qty, trail_price=trail_price, trail_bp=trail_bp)  # fmt: skip
        self.orders[order_id] = o
        events = [("accepted", order_id, o.priority)]
        if order_type == TRAILING_STOP:
            self.start_mark(o, events)
        self.due = []
        if oco is not None:
            # Same account, side, time in force and quantity; accepted when it enters, right after the order.
            self.max_order_id = max(self.max_order_id, oco.order_id)
            y = self.new_leg(oco, o, side, None)
            y.qty = y.leaves_qty = qty
            y.state = DUE
            y.needs_accept = True
            o.sibling, y.sibling = y.order_id, order_id
            self.due.append(y)
        held = []
        for leg in legs:
            # Opposite side, quantity 0, off the book until the parent fills.
            self.max_order_id = max(self.max_order_id, leg.order_id)
            h = self.new_leg(leg, o, SELL if side == BUY else BUY, None)
            h.state = HELD
            h.parent = order_id
            o.legs.append(h.order_id)
            held.append(h)
        if len(held) == 2:
            held[0].sibling, held[1].sibling = held[1].order_id, held[0].order_id
        self.work(self.enter_new(o, events), events)
        return events

    def new_leg(self, leg, o, side, priority) -> RefOrder:
        x = RefOrder(leg.order_id, o.account_id, side, leg.order_type, o.tif, 0, leg.price, leg.stop_price,
                     leg.protection_price, priority, trail_price=leg.trail_price, trail_bp=leg.trail_bp)  # fmt: skip
        self.orders[x.order_id] = x
        return x

    def cancel(self, order_id, reason=Cancel.USER):
        """The named order first, then every other open order of its class by ascending id."""
        o = self.find(order_id)
        if o is None:
            return [self.reject_missing(order_id)]
        others = sorted((x for x in self.class_of(o) if x is not o), key=lambda x: x.order_id)
        events = []
        for x in [o, *others]:
            self.cancel_one(x, reason, events)
        return events

    def replace(self, order_id, qty=None, price=None, stop_price=None, *, trail_price=None, trail_bp=None):
        o = self.find(order_id)
        if o is None:
            return [self.reject_missing(order_id)]
        new_trail = trail_price is not None or trail_bp is not None
        new_qty = o.qty if qty is None else qty
        new_price = o.price if price is None else price
        if (
            o.state == HELD
            or (qty is not None and qty != o.qty and self.is_leg(o))
            or new_qty <= o.cum_qty
            or (price is not None and (o.price is None or price <= 0))
            or (stop_price is not None and (not o.parked or stop_price <= 0 or o.order_type == TRAILING_STOP))
            or (new_trail and (o.order_type != TRAILING_STOP or (trail_price is not None and trail_bp is not None)))
        ):
            return [("rejected", order_id, Reject.INVALID_REPLACE)]
        old_stop = o.stop_price
        if new_trail:
            # The mark stays; the stop moves with the new offset.
            o.trail_price, o.trail_bp = trail_price, trail_bp
            o.set_mark(o.water_mark)
        new_stop = o.stop_price if stop_price is None else stop_price
        lost = new_trail or new_price != o.price or new_stop != old_stop or new_qty > o.qty
        if lost:
            self.priority += 1
            o.priority = self.priority
        o.qty, o.leaves_qty, o.price, o.stop_price = new_qty, new_qty - o.cum_qty, new_price, new_stop
        events = [
            ("replaced", order_id, o.qty, o.cum_qty, o.leaves_qty, o.price, o.stop_price, lost, o.priority)
        ]
        if not lost:
            return events
        self.due = []
        if o.parked:
            o.state = INCOMING
            prices = self.park_or_trigger(o, events)
        else:
            o.state = INCOMING
            prices = self.enter(o, events)
        self.work(prices, events)
        return events

    def expire_day_orders(self):
        events = []
        for o in sorted((o for o in self.live if o.tif == DAY), key=lambda o: o.priority):
            if self.find(o.order_id) is o:
                events += self.cancel(o.order_id, Cancel.EXPIRED)
        return events

    # ---------------------------------------------------------------- restart

    def restore(self, order_id, account_id, side, order_type, tif, qty, price=None, stop_price=None, *,
                cum_qty=0, priority=None, triggered=False, protection_price=None, trail_price=None,
                trail_bp=None, water_mark=None):  # fmt: skip
        self.max_order_id = max(self.max_order_id, order_id)
        self.priority = self.priority + 1 if priority is None else priority
        o = RefOrder(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price,
                     self.priority, cum_qty=cum_qty, leaves_qty=qty - cum_qty, trail_price=trail_price,
                     trail_bp=trail_bp)  # fmt: skip
        if order_type == TRAILING_STOP:
            o.set_mark(water_mark)
        o.state = PARKED if order_type in STOP_TYPES and not triggered else RESTING
        self.orders[order_id] = o

    def restore_held(self, order_id, parent_id, order_type, price=None, stop_price=None, protection_price=None, *,
                     trail_price=None, trail_bp=None):  # fmt: skip
        self.max_order_id = max(self.max_order_id, order_id)
        parent = self.orders[parent_id]
        held = [leg for leg in map(self.open, parent.legs) if leg is not None and leg.state == HELD]
        h = RefOrder(order_id, parent.account_id, SELL if parent.side == BUY else BUY, order_type, parent.tif, 0,
                     price, stop_price, protection_price, None, state=HELD, trail_price=trail_price,
                     trail_bp=trail_bp, parent=parent_id)  # fmt: skip
        self.orders[order_id] = h
        parent.legs.append(order_id)
        if held:  # a second held leg is the first one's OCO sibling
            held[0].sibling, h.sibling = order_id, held[0].order_id

    def restore_link(self, order_id, parent_id=None, sibling_id=None):
        o = self.orders[order_id]
        if parent_id is not None:
            o.parent = parent_id
            parent = self.orders.get(parent_id)  # a closed parent still makes o a leg
            if parent is not None and order_id not in parent.legs:
                parent.legs = sorted([*parent.legs, order_id])
        if sibling_id is not None:
            o.sibling = sibling_id
            self.orders[sibling_id].sibling = order_id

    def set_last_price(self, price):
        self.last_price = price

    # ---------------------------------------------------------------- the work of one command

    def work(self, prices, events):
        """After the first incoming order: mark updates and triggers, then the queue, first in first out.

        Each queue item (a leg that became due, a stop that was taken) is an incoming order in turn,
        and what it makes due or takes joins the back of the queue.
        """
        queue = self.after_incoming(prices, events)
        while queue:
            o = queue.pop(0)
            if self.find(o.order_id) is not o:
                continue  # closed while it waited (its class ended)
            if o.state == DUE:
                if o.needs_accept:
                    self.priority += 1
                    o.priority = self.priority
                    o.needs_accept = False
                    events.append(("accepted", o.order_id, o.priority))
                prices = self.enter_new(o, events)
            else:
                assert o.state == TAKEN
                self.priority += 1
                o.priority = self.priority
                o.state = INCOMING
                events.append(("stop_triggered", o.order_id, o.stop_price, self.last_price))
                prices = self.enter(o, events)
            queue += self.after_incoming(prices, events)

    def after_incoming(self, prices, events):
        """Trailing marks take the first price, stops are taken, marks take the last price; then the
        legs that became due and the taken stops (by priority) are what comes next."""
        taken = []
        if prices:
            first, last = prices[0], prices[-1]
            trailing = sorted(
                (o for o in self.live if o.parked and o.order_type == TRAILING_STOP), key=lambda o: o.priority
            )
            marks_before = {o.order_id: o.water_mark for o in trailing}
            for o in trailing:
                o.take_mark(first)
            taken = self.take_triggered(prices)
            for o in trailing:
                if o.parked:
                    o.take_mark(last)
            for o in trailing:
                if o.parked and o.water_mark != marks_before[o.order_id]:
                    events.append(("trail_moved", o.order_id, o.stop_price, o.water_mark))
        due, self.due = self.due, []
        return due + taken

    def take_triggered(self, prices):
        low, high = min(prices), max(prices)
        hit = [
            o
            for o in self.live
            if o.parked and (o.stop_price <= high if o.side == BUY else o.stop_price >= low)
        ]
        hit.sort(key=lambda o: o.priority)
        for o in hit:
            o.state = TAKEN
        return hit

    # ---------------------------------------------------------------- rules

    def reject_missing(self, order_id):
        if order_id <= self.max_order_id:
            return ("rejected", order_id, Reject.TOO_LATE_TO_CANCEL)
        return ("rejected", order_id, Reject.UNKNOWN_ORDER)

    def enter_new(self, o, events):
        """A new order (or a leg) enters: a stop parks or triggers, anything else matches."""
        o.state = INCOMING
        if o.order_type == TRAILING_STOP and o.water_mark is None:
            self.start_mark(o, events)  # a leg: its mark starts when it enters
        return self.park_or_trigger(o, events) if o.order_type in STOP_TYPES else self.enter(o, events)

    def start_mark(self, o, events):
        """A trailing stop's mark starts at the last trade price; TrailMoved reports it."""
        o.set_mark(self.last_price)
        events.append(("trail_moved", o.order_id, o.stop_price, o.water_mark))

    def park_or_trigger(self, o, events):
        last = self.last_price
        if last is not None and (last >= o.stop_price if o.side == BUY else last <= o.stop_price):
            self.priority += 1
            o.priority = self.priority
            events.append(("stop_triggered", o.order_id, o.stop_price, last))
            return self.enter(o, events)
        o.state = PARKED
        return []

    def enter(self, o, events):
        """Match an incoming order, then rest or cancel what is left; returns the trade prices in order."""
        opposite_side = SELL if o.side == BUY else BUY
        if o.tif == FOK:
            # Too little within the limit, own orders included: fok. Otherwise walk exactly as
            # matching would, without changing anything: an own order in the way means self_trade.
            opposite = self.queue(opposite_side)
            need, blocked_by = o.leaves_qty, Cancel.FOK
            if sum(m.leaves_qty for m in opposite if o.would_trade_at(m.price)) < need:
                opposite = []
            for m in opposite:
                if not o.would_trade_at(m.price):
                    break
                if m.account_id == o.account_id:
                    blocked_by = Cancel.SELF_TRADE
                    break
                need -= m.leaves_qty
                if need <= 0:
                    blocked_by = None
                    break
            if blocked_by is not None:
                self.cancel_incoming(o, blocked_by, events)
                return []

        prices = []
        self_trade = False
        while o.leaves_qty:
            # The best resting order afresh each time: fills may resize or cancel other orders.
            opposite = self.queue(opposite_side)
            if not opposite or not o.would_trade_at(opposite[0].price):
                break
            m = opposite[0]
            if m.account_id == o.account_id:
                self_trade = True
                break
            fill = min(o.leaves_qty, m.leaves_qty)
            m.cum_qty += fill
            m.leaves_qty -= fill
            o.cum_qty += fill
            o.leaves_qty -= fill
            prices.append(m.price)
            self.last_price = m.price
            events.append(("trade", m.price, fill, m.order_id, o.order_id, m.account_id, o.account_id, o.side))
            events.append(self.update(m))
            events.append(self.update(o))
            self.after_fill(m, fill, events)
            self.after_fill(o, fill, events)

        if self.find(o.order_id) is o:
            if o.leaves_qty == 0:
                pass  # filled: after_fill closed it
            elif self_trade:
                self.cancel_incoming(o, Cancel.SELF_TRADE, events)
            elif o.order_type in MARKETABLE:
                anything_left = bool(self.queue(opposite_side))
                self.cancel_incoming(o, Cancel.PROTECTION if anything_left else Cancel.NO_LIQUIDITY, events)
            elif o.tif == IOC:
                self.cancel_incoming(o, Cancel.IOC, events)
            elif o.tif == FOK:
                self.cancel_incoming(o, Cancel.FOK, events)
            else:
                o.state = RESTING
                events.append(("rested", o.order_id, o.side, o.price, o.leaves_qty, o.priority))
        return prices

    def after_fill(self, o, fill, events):
        """Right after a fill of o (its Trade and both OrderUpdates): its legs grow, its OCO sibling
        shrinks; if the fill completed o, o has left the book and its class may end."""
        for leg in map(self.open, o.legs):
            if leg is None:
                continue
            leg.qty += fill
            leg.leaves_qty += fill
            events.append(("resized", leg.order_id, leg.qty, leg.cum_qty, leg.leaves_qty, RESIZE_PARENT_FILL))
            if leg.state == HELD:
                leg.state = DUE
                leg.needs_accept = True
                self.due.append(leg)
        if o.leaves_qty:
            sibling = self.open(o.sibling)
            if sibling is not None:
                sibling.qty -= fill
                sibling.leaves_qty -= fill
                events.append(
                    ("resized", sibling.order_id, sibling.qty, sibling.cum_qty, sibling.leaves_qty, RESIZE_OCO)
                )
        else:
            self.closed(o, events)

    def closed(self, o, events):
        """o has left the book (filled, or canceled by the book) and its final event is out.

        Its open sibling is canceled (oco), then its open parent's remainder (oco); a parent that
        leaves with no fill takes its held legs with it (oco). Active legs of a parent go on alone.
        """
        self.orders.pop(o.order_id, None)
        sibling = self.open(o.sibling)
        if sibling is not None:
            self.cancel_one(sibling, Cancel.OCO, events)
            self.closed(sibling, events)
        parent = self.open(o.parent)
        if parent is not None:
            self.cancel_one(parent, Cancel.OCO, events)
            self.closed(parent, events)
        if o.cum_qty == 0:
            for leg in map(self.open, o.legs):
                if leg is not None and leg.state == HELD:
                    self.cancel_one(leg, Cancel.OCO, events)

    def cancel_one(self, o, reason, events):
        self.orders.pop(o.order_id, None)
        o.leaves_qty = 0
        events.append(("order_update", o.order_id, CANCELED, o.qty, o.cum_qty, 0, reason))

    @staticmethod
    def update(o):
        status = FILLED if not o.leaves_qty else PARTIALLY_FILLED
        return ("order_update", o.order_id, status, o.qty, o.cum_qty, o.leaves_qty, None)

    def cancel_incoming(self, o, reason, events):
        o.leaves_qty = 0
        events.append(("order_update", o.order_id, CANCELED, o.qty, o.cum_qty, 0, reason))
        self.closed(o, events)

