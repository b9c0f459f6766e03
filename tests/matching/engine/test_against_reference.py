"""The engine against the brute-force reference: same events and same book after every command.

Prices span a few ticks and there are three accounts, so crossing, partial fills, self-trade
prevention, stops and cascades happen in nearly every sequence. Besides plain orders, the commands
submit OCO pairs (a limit take-profit with a stop, stop-limit or trailing stop on the same side),
brackets and OTOs (a parent with legs on the other side) and trailing stops of both trail kinds, and
replace trails. Every event stream is also checked by a Ledger: qty == cum_qty + leaves_qty +
canceled_qty for every order (Resized and Replaced change qty), cum_qty is the sum of the order's
trades, each trade counts once on each side, and no class sells more than it bought.
"""

import random
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from matching.engine import (
    BUY,
    CANCELED,
    DAY,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    SELL,
    STOP,
    STOP_LIMIT,
    TRAILING_STOP,
    Leg,
    OrderBook,
)

from .reference import ReferenceBook

PRICES = (95, 105)
ACCOUNTS = (1, 3)
ORDER_TYPES = [LIMIT] * 6 + [MARKET, STOP, STOP_LIMIT]
TIMES_IN_FORCE = [GTC, GTC, DAY, IOC, FOK]
CLASS_KINDS = ["oco", "oto", "bracket", "trailing"]
EXIT_TYPES = [STOP, STOP_LIMIT, TRAILING_STOP]
TRAILS = [("price", 1), ("price", 2), ("price", 4), ("bp", 50), ("bp", 100), ("bp", 250), ("bp", 400)]


def submit_args(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price):
    """A valid submit for the order type, from freely drawn fields."""
    if order_type == LIMIT:
        return (order_id, account_id, side, LIMIT, tif, qty, price)
    if order_type == MARKET:
        return (order_id, account_id, side, MARKET, tif, qty, None, None, protection_price)
    if order_type == STOP:
        return (order_id, account_id, side, STOP, tif, qty, None, stop_price, protection_price)
    return (order_id, account_id, side, STOP_LIMIT, tif, qty, price, stop_price)


def trail_kwargs(trail):
    kind, value = trail
    return {"trail_price": value} if kind == "price" else {"trail_bp": value}


def exit_leg(order_id, exit_type, stop_price, price, trail, last_price):
    """A protective leg: a stop, a stop-limit, or a trailing stop when there is a last price to start from."""
    if exit_type == TRAILING_STOP and last_price is not None:
        return Leg(order_id, TRAILING_STOP, **trail_kwargs(trail))
    if exit_type == STOP_LIMIT:
        return Leg(order_id, STOP_LIMIT, price=price, stop_price=stop_price)
    return Leg(order_id, STOP, stop_price=stop_price)


def class_submit(kind, order_id, account_id, side, tif, qty, p1, p2, p3, exit_type, trail, swap, last_price):
    """A valid submit of a contingent order from freely drawn fields.

    Returns (args, kwargs, ids used, class) with class ("parent", parent_id, leg_ids), ("oco", x, y, qty)
    or None. Brackets and OTOs have a buy parent (a sell one when swap), legs on the other side.
    """
    if kind == "trailing" and last_price is None:
        kind = "oco"
    if kind == "trailing":
        args = (order_id, account_id, side, TRAILING_STOP, tif if tif in (DAY, GTC) else GTC, qty)
        return args, trail_kwargs(trail), 1, None
    tif = tif if tif in (DAY, GTC) else GTC
    if kind == "oco":
        take_profit = (LIMIT, p1)
        protective = exit_leg(order_id + 1, exit_type, p2, p3, trail, last_price)
        if swap and protective.order_type != TRAILING_STOP:
            # The stop is the order, the take-profit its leg.
            args = (order_id, account_id, side, protective.order_type, tif, qty, protective.price,
                    protective.stop_price)  # fmt: skip
            kwargs = {"oco": Leg(order_id + 1, *take_profit)}
        else:
            args = (order_id, account_id, side, LIMIT, tif, qty, p1)
            kwargs = {"oco": protective}
        return args, kwargs, 2, ("oco", order_id, order_id + 1, qty)
    side = SELL if swap else BUY
    args = (order_id, account_id, side, LIMIT, tif, qty, p1)
    if kind == "oto":
        legs = (Leg(order_id + 1, LIMIT, price=p2),) if p3 % 2 else (
            exit_leg(order_id + 1, exit_type, p2, p3, trail, last_price),
        )  # fmt: skip
    else:
        legs = (Leg(order_id + 1, LIMIT, price=p2), exit_leg(order_id + 2, exit_type, p3, p2, trail, last_price))
    return args, {"legs": legs}, 1 + len(legs), ("parent", order_id, [leg.order_id for leg in legs])


def restored_copy(book: OrderBook) -> OrderBook:
    """What a worker rebuilds after a restart: open orders in priority order with their trails and
    marks, then the held legs, then the links between open orders, then the last price."""
    copy = OrderBook(book.symbol)
    for o in book.open_orders():
        trail_price, trail_bp, water_mark = book.trail_of(o.order_id) or (None, None, None)
        stop_price = None if o.order_type == TRAILING_STOP else o.stop_price  # the mark and trail set it
        copy.restore(
            o.order_id, o.account_id, o.side, o.order_type, o.tif, o.qty, o.price, stop_price,
            cum_qty=o.cum_qty, priority=o.priority, triggered=o.triggered, protection_price=o.protection_price,
            trail_price=trail_price, trail_bp=trail_bp, water_mark=water_mark,
        )  # fmt: skip
    held = set()
    for order_id, parent_id, order_type, price, stop_price, protection_price, trail_price, trail_bp in (
        book.held_orders()
    ):
        copy.restore_held(
            order_id, parent_id, order_type, price, stop_price, protection_price, trail_price=trail_price,
            trail_bp=trail_bp,
        )  # fmt: skip
        held.add(order_id)
    linked = set()
    for order_id, parent_id, sibling_id in book.contingencies():
        if order_id in held:
            continue
        if sibling_id in linked:
            sibling_id = None  # the pair is linked already, from the sibling's side
        if parent_id is not None or sibling_id is not None:
            copy.restore_link(order_id, parent_id=parent_id, sibling_id=sibling_id)
        linked.add(order_id)
    copy.set_last_price(book.last_price)
    copy.set_sequences(last_priority=book.last_priority, max_order_id=book.max_order_id)
    return copy


class Ledger:
    """Checks every event stream for conservation and consistent statuses, and every class for its
    exits never selling more than its entry bought."""

    def __init__(self) -> None:
        self.filled = defaultdict(int)
        self.qty: dict[int, int] = {}  # the last quantity seen for each order
        self.side: dict[int, str] = {}
        self.traded = 0
        self.parents: dict[int, list[int]] = {}
        self.pairs: list[tuple[int, int, int]] = []

    def submitted(self, args, kwargs) -> None:
        order_id, qty = args[0], args[5]
        self.qty[order_id] = qty
        if kwargs.get("oco") is not None:
            self.qty[kwargs["oco"].order_id] = qty
            self.pairs.append((order_id, kwargs["oco"].order_id, qty))
        if kwargs.get("legs"):
            leg_ids = [leg.order_id for leg in kwargs["legs"]]
            for leg_id in leg_ids:
                self.qty[leg_id] = 0
            self.parents[order_id] = leg_ids
            if len(leg_ids) == 2:
                self.pairs.append((*leg_ids, None))

    def check(self, events: list) -> None:
        for e in events:
            kind = e[0]
            if kind == "trade":
                _, price, qty, maker, taker, maker_account, taker_account, aggressor = e
                assert qty > 0 and maker_account != taker_account
                for order_id, side in ((taker, aggressor), (maker, SELL if aggressor == BUY else BUY)):
                    assert self.side.setdefault(order_id, side) == side
                    self.filled[order_id] += qty
                self.traded += qty
            elif kind == "order_update":
                _, order_id, status, qty, cum, leaves, reason = e
                canceled = qty - cum - leaves
                assert cum == self.filled[order_id]
                assert cum >= 0 and leaves >= 0 and canceled >= 0
                assert self.qty.get(order_id, qty) == qty
                if status == FILLED:
                    assert (cum, leaves, reason) == (qty, 0, None)
                elif status == PARTIALLY_FILLED:
                    assert 0 < cum < qty and canceled == 0 and reason is None
                else:
                    assert status == CANCELED and leaves == 0 and reason
            elif kind == "replaced":
                _, order_id, qty, cum, leaves, *_ = e
                assert cum == self.filled[order_id] and qty == cum + leaves and leaves > 0
                self.qty[order_id] = qty
            elif kind == "resized":
                _, order_id, qty, cum, leaves, reason = e
                assert cum == self.filled[order_id] and qty == cum + leaves and leaves > 0
                before = self.qty.get(order_id)
                if reason == "oco":
                    assert before is None or qty < before
                else:
                    assert reason == "parent_fill" and (before is None or qty > before)
                self.qty[order_id] = qty
            elif kind == "trail_moved":
                _, order_id, stop_price, water_mark = e
                assert stop_price > 0 and water_mark > 0
            else:
                assert kind in ("accepted", "rested", "rejected", "stop_triggered"), e

    def check_classes(self) -> None:
        """The exits of a class never sell more than its entry bought; trades balance."""
        for parent, legs in self.parents.items():
            assert sum(self.filled[leg] for leg in legs) <= self.filled[parent], (parent, legs)
        for x, y, qty in self.pairs:
            if qty is not None:
                assert self.filled[x] + self.filled[y] <= qty, (x, y, qty)
        bought = sum(self.filled[i] for i, side in self.side.items() if side == BUY)
        sold = sum(self.filled[i] for i, side in self.side.items() if side == SELL)
        assert bought == sold == self.traded


def assert_same_book(book: OrderBook, ref: ReferenceBook, ledger: Ledger | None = None) -> None:
    engine_orders = [
        (o.order_id, o.account_id, o.side, o.order_type, o.tif, o.qty, o.cum_qty, o.leaves_qty, o.price,
         o.stop_price, o.priority, o.triggered or o.order_type == LIMIT)
        for o in book.open_orders()
    ]  # fmt: skip
    ref_orders = [
        (o.order_id, o.account_id, o.side, o.order_type, o.tif, o.qty, o.cum_qty, o.leaves_qty, o.price,
         o.stop_price, o.priority, not o.parked)
        for o in sorted(ref.live, key=lambda o: o.priority)
    ]  # fmt: skip
    assert engine_orders == ref_orders
    for o in book.open_orders():
        assert o.leaves_qty > 0 and o.qty == o.cum_qty + o.leaves_qty
        assert book.trail_of(o.order_id) == ref.trail_of(o.order_id)
        if ledger is not None:
            assert o.cum_qty == ledger.filled[o.order_id]
    assert book.held_orders() == ref.held_orders()
    assert book.contingencies() == ref.contingencies()
    depth = book.depth(100)
    assert depth.bids == ref.depth(BUY) and depth.asks == ref.depth(SELL)
    assert book.last_price == ref.last_price
    if depth.bids and depth.asks:
        assert depth.bids[0].price < depth.asks[0].price


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook("PROP")
        self.ref = ReferenceBook()
        self.ledger = Ledger()
        self.next_id = 0

    def run(self, command, *args, **kwargs):
        got = getattr(self.book, command)(*args, **kwargs)
        want = getattr(self.ref, command)(*args, **kwargs)
        assert got == want
        self.ledger.check(got)

    def some_id(self, pick):
        # Mostly ids that were submitted (live or finished), sometimes one never seen.
        return pick % (self.next_id + 2) + 1

    @rule(
        side=st.sampled_from([BUY, SELL]),
        order_type=st.sampled_from(ORDER_TYPES),
        tif=st.sampled_from(TIMES_IN_FORCE),
        qty=st.integers(1, 8),
        price=st.integers(*PRICES),
        stop_price=st.integers(*PRICES),
        protection_price=st.none() | st.integers(*PRICES),
        account_id=st.integers(*ACCOUNTS),
    )
    def submit(self, side, order_type, tif, qty, price, stop_price, protection_price, account_id):
        self.next_id += 1
        args = submit_args(self.next_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price)
        self.ledger.submitted(args, {})
        self.run("submit", *args)

    @rule(
        kind=st.sampled_from(CLASS_KINDS),
        side=st.sampled_from([BUY, SELL]),
        tif=st.sampled_from([GTC, GTC, DAY]),
        qty=st.integers(1, 8),
        p1=st.integers(*PRICES),
        p2=st.integers(*PRICES),
        p3=st.integers(*PRICES),
        exit_type=st.sampled_from(EXIT_TYPES),
        trail=st.sampled_from(TRAILS),
        swap=st.booleans(),
        account_id=st.integers(*ACCOUNTS),
    )
    def submit_class(self, kind, side, tif, qty, p1, p2, p3, exit_type, trail, swap, account_id):
        args, kwargs, used, _ = class_submit(
            kind, self.next_id + 1, account_id, side, tif, qty, p1, p2, p3, exit_type, trail, swap,
            self.ref.last_price,
        )  # fmt: skip
        self.next_id += used
        self.ledger.submitted(args, kwargs)
        self.run("submit", *args, **kwargs)

    @rule(pick=st.integers(0, 1000))
    def cancel(self, pick):
        self.run("cancel", self.some_id(pick))

    @rule(
        pick=st.integers(0, 1000),
        qty=st.none() | st.integers(1, 10),
        price=st.none() | st.integers(*PRICES),
        stop_price=st.none() | st.integers(*PRICES),
    )
    def replace(self, pick, qty, price, stop_price):
        self.run("replace", self.some_id(pick), qty, price, stop_price)

    @rule(pick=st.integers(0, 1000), trail=st.sampled_from(TRAILS), qty=st.none() | st.integers(1, 10))
    def replace_trail(self, pick, trail, qty):
        self.run("replace", self.some_id(pick), qty, **trail_kwargs(trail))

    @rule()
    def end_of_day(self):
        self.run("expire_day_orders")

    @rule()
    def restart(self):
        self.book = restored_copy(self.book)

    @invariant()
    def same_book(self):
        assert_same_book(self.book, self.ref, self.ledger)
        self.ledger.check_classes()


BookMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_matches_reference = BookMachine.TestCase


def random_command(rng, step, last_price):
    """One command of a long random sequence; submits return their Ledger registration too."""
    roll = rng.random()
    if roll < 0.45:
        order_type = rng.choice(ORDER_TYPES)
        args = submit_args(
            step + 1, rng.randint(1, 4), rng.choice([BUY, SELL]), order_type, rng.choice(TIMES_IN_FORCE),
            rng.randint(1, 20), rng.randint(90, 110), rng.randint(90, 110), rng.choice([None, rng.randint(90, 110)]),
        )  # fmt: skip
        return ("submit", args, {})
    if roll < 0.60:
        args, kwargs, _, _ = class_submit(
            rng.choice(CLASS_KINDS), step + 1, rng.randint(1, 4), rng.choice([BUY, SELL]), rng.choice([GTC, DAY]),
            rng.randint(1, 20), rng.randint(90, 110), rng.randint(90, 110), rng.randint(90, 110),
            rng.choice(EXIT_TYPES), rng.choice(TRAILS), rng.random() < 0.3, last_price,
        )  # fmt: skip
        return ("submit", args, kwargs)
    if roll < 0.82:
        return ("cancel", (rng.randint(1, 3 * step + 3),), {})
    if roll < 0.95:
        args = (
            rng.randint(1, 3 * step + 3), rng.choice([None, rng.randint(1, 25)]),
            rng.choice([None, rng.randint(90, 110)]), rng.choice([None, None, rng.randint(90, 110)]),
        )  # fmt: skip
        return ("replace", args, {})
    if roll < 0.99:
        return ("replace", (rng.randint(1, 3 * step + 3),), trail_kwargs(rng.choice(TRAILS)))
    return ("expire_day_orders", (), {})


@pytest.mark.parametrize("seed", range(40))
def test_long_random_sequences_match_reference(seed):
    """Longer sequences than the state machine runs, over a deeper book, with a restart midway.

    Order ids go up by 3 a step, so a class (up to three ids) never collides with the next order.
    """
    rng = random.Random(seed)
    book, ref, ledger = OrderBook("RAND"), ReferenceBook(), Ledger()
    restart_at = rng.randrange(100, 400)
    for step in range(400):
        name, args, kwargs = random_command(rng, 3 * step, ref.last_price)
        if name == "submit":
            ledger.submitted(args, kwargs)
        got = getattr(book, name)(*args, **kwargs)
        assert got == getattr(ref, name)(*args, **kwargs), (name, args, kwargs)
        ledger.check(got)
        ledger.check_classes()
        if step == restart_at:
            book = restored_copy(book)
        if step % 20 == 0:
            assert_same_book(book, ref, ledger)
    assert_same_book(book, ref, ledger)
