"""Brute-force reference order book: a flat list of orders, sorted afresh on every call.

It states the matching rules as plainly as possible so that Hypothesis can hold matching.engine to
them: same events, same live orders, for any command sequence. It knows nothing of the engine's
data structures and makes no attempt to be fast. Inputs are assumed valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from matching.engine import BUY, CANCELED, FILLED, FOK, IOC, LIMIT, MARKET, PARTIALLY_FILLED, STOP, STOP_LIMIT
from matching.engine import CancelReason as Cancel
from matching.engine import RejectReason as Reject


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
    priority: int
    cum_qty: int = 0
    leaves_qty: int = 0
    parked: bool = False

    def has_limit(self) -> bool:
        return self.order_type in (LIMIT, STOP_LIMIT)

    def would_trade_at(self, price: int) -> bool:
        """Whether this incoming order accepts a trade at a resting order's price."""
        bound = self.price if self.has_limit() else self.protection_price
        if bound is None:
            return True
        return price <= bound if self.side == BUY else price >= bound


class ReferenceBook:
    def __init__(self) -> None:
        self.live: list[RefOrder] = []  # resting and parked orders, in no particular order
        self.last_price: int | None = None
        self.priority = 0
        self.max_order_id = 0

    # ---------------------------------------------------------------- queries

    def find(self, order_id: int) -> RefOrder | None:
        for o in self.live:
            if o.order_id == order_id:
                return o
        return None

    def queue(self, side: str) -> list[RefOrder]:
        """Resting orders of one side in matching order: best price first, then priority."""
        resting = [o for o in self.live if o.side == side and not o.parked]
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

    # ---------------------------------------------------------------- commands

    def submit(self, order_id, account_id, side, order_type, tif, qty, price=None, stop_price=None,
               protection_price=None):  # fmt: skip
        self.max_order_id = max(self.max_order_id, order_id)
        self.priority += 1
        o = RefOrder(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price,
                     self.priority)  # fmt: skip
        o.leaves_qty = qty
        events = [("accepted", order_id, o.priority)]
        is_stop = order_type in (STOP, STOP_LIMIT)
        self.cascade(self.park_or_trigger(o, events) if is_stop else self.enter(o, events), events)
        return events

    def cancel(self, order_id, reason=Cancel.USER):
        o = self.find(order_id)
        if o is None:
            return [self.reject_missing(order_id)]
        self.live.remove(o)
        o.leaves_qty = 0
        return [("order_update", order_id, CANCELED, o.qty, o.cum_qty, 0, reason)]

    def replace(self, order_id, qty=None, price=None, stop_price=None):
        o = self.find(order_id)
        if o is None:
            return [self.reject_missing(order_id)]
        new_qty = o.qty if qty is None else qty
        new_price = o.price if price is None else price
        new_stop = o.stop_price if stop_price is None else stop_price
        if (
            new_qty <= o.cum_qty
            or (price is not None and (o.price is None or price <= 0))
            or (stop_price is not None and (not o.parked or stop_price <= 0))
        ):
            return [("rejected", order_id, Reject.INVALID_REPLACE)]
        lost = new_price != o.price or new_stop != o.stop_price or new_qty > o.qty
        if lost:
            self.priority += 1
            o.priority = self.priority
        o.qty, o.leaves_qty, o.price, o.stop_price = new_qty, new_qty - o.cum_qty, new_price, new_stop
        events = [
            ("replaced", order_id, o.qty, o.cum_qty, o.leaves_qty, o.price, o.stop_price, lost, o.priority)
        ]
        if not lost:
            return events
        self.live.remove(o)
        if o.parked:
            o.parked = False
            prices = self.park_or_trigger(o, events)
        else:
            prices = self.enter(o, events)
        self.cascade(prices, events)
        return events

    def expire_day_orders(self):
        events = []
        for o in sorted((o for o in self.live if o.tif == "day"), key=lambda o: o.priority):
            events += self.cancel(o.order_id, Cancel.EXPIRED)
        return events

    def restore(self, order_id, account_id, side, order_type, tif, qty, price=None, stop_price=None, *,
                cum_qty=0, priority=None, triggered=False, protection_price=None):  # fmt: skip
        self.max_order_id = max(self.max_order_id, order_id)
        self.priority = self.priority + 1 if priority is None else priority
        o = RefOrder(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price,
                     self.priority)  # fmt: skip
        o.cum_qty = cum_qty
        o.leaves_qty = qty - cum_qty
        o.parked = order_type in (STOP, STOP_LIMIT) and not triggered
        self.live.append(o)

    # ---------------------------------------------------------------- rules

    def reject_missing(self, order_id):
        if order_id <= self.max_order_id:
            return ("rejected", order_id, Reject.TOO_LATE_TO_CANCEL)
        return ("rejected", order_id, Reject.UNKNOWN_ORDER)

    def park_or_trigger(self, o, events):
        last = self.last_price
        if last is not None and (last >= o.stop_price if o.side == BUY else last <= o.stop_price):
            self.priority += 1
            o.priority = self.priority
            events.append(("stop_triggered", o.order_id, o.stop_price, last))
            return self.enter(o, events)
        o.parked = True
        self.live.append(o)
        return []

    def enter(self, o, events):
        """Match an incoming order, then rest or cancel what is left; returns the trade prices."""
        opposite = self.queue("sell" if o.side == BUY else BUY)
        if o.tif == FOK:
            # Too little within the limit, own orders included: fok. Otherwise walk exactly as
            # matching would, without changing anything: an own order in the way means self_trade.
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
        for m in opposite:
            if not o.leaves_qty or not o.would_trade_at(m.price):
                break
            if m.account_id == o.account_id:
                self_trade = True
                break
            fill = min(o.leaves_qty, m.leaves_qty)
            m.cum_qty += fill
            m.leaves_qty -= fill
            o.cum_qty += fill
            o.leaves_qty -= fill
            prices.append(m.price)
            events.append(("trade", m.price, fill, m.order_id, o.order_id, m.account_id, o.account_id, o.side))
            events.append(self.update(m))
            events.append(self.update(o))
            if not m.leaves_qty:
                self.live.remove(m)
        if prices:
            self.last_price = prices[-1]

        if o.leaves_qty:
            if self_trade:
                self.cancel_incoming(o, Cancel.SELF_TRADE, events)
            elif o.order_type in (MARKET, STOP):
                anything_left = any(not x.parked and x.side != o.side for x in self.live)
                self.cancel_incoming(o, Cancel.PROTECTION if anything_left else Cancel.NO_LIQUIDITY, events)
            elif o.tif == IOC:
                self.cancel_incoming(o, Cancel.IOC, events)
            elif o.tif == FOK:
                self.cancel_incoming(o, Cancel.FOK, events)
            else:
                self.live.append(o)
                events.append(("rested", o.order_id, o.side, o.price, o.leaves_qty, o.priority))
        return prices

    def cascade(self, prices, events):
        queue = self.take_triggered(prices)
        while queue:
            o = queue.pop(0)
            self.priority += 1
            o.priority = self.priority
            events.append(("stop_triggered", o.order_id, o.stop_price, self.last_price))
            queue += self.take_triggered(self.enter(o, events))

    def take_triggered(self, prices):
        if not prices:
            return []
        low, high = min(prices), max(prices)
        hit = [
            o
            for o in self.live
            if o.parked and (o.stop_price <= high if o.side == BUY else o.stop_price >= low)
        ]
        hit.sort(key=lambda o: o.priority)
        for o in hit:
            self.live.remove(o)
            o.parked = False
        return hit

    @staticmethod
    def update(o):
        status = FILLED if not o.leaves_qty else PARTIALLY_FILLED
        return ("order_update", o.order_id, status, o.qty, o.cum_qty, o.leaves_qty, None)

    @staticmethod
    def cancel_incoming(o, reason, events):
        o.leaves_qty = 0
        events.append(("order_update", o.order_id, CANCELED, o.qty, o.cum_qty, 0, reason))
