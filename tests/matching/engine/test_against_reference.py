"""The engine against the brute-force reference: same events and same book after every command.

Prices span a few ticks and there are three accounts, so crossing, partial fills, self-trade
prevention, stops and cascades happen in nearly every sequence. Every event stream is also checked
for conservation: qty == cum_qty + leaves_qty + canceled_qty, with cum_qty the sum of the order's
trades.
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
    OrderBook,
)

from .reference import ReferenceBook

PRICES = (95, 105)
ACCOUNTS = (1, 3)
ORDER_TYPES = [LIMIT] * 6 + [MARKET, STOP, STOP_LIMIT]
TIMES_IN_FORCE = [GTC, GTC, DAY, IOC, FOK]


def submit_args(order_id, account_id, side, order_type, tif, qty, price, stop_price, protection_price):
    """A valid submit for the order type, from freely drawn fields."""
    if order_type == LIMIT:
        return (order_id, account_id, side, LIMIT, tif, qty, price)
    if order_type == MARKET:
        return (order_id, account_id, side, MARKET, tif, qty, None, None, protection_price)
    if order_type == STOP:
        return (order_id, account_id, side, STOP, tif, qty, None, stop_price, protection_price)
    return (order_id, account_id, side, STOP_LIMIT, tif, qty, price, stop_price)


def restored_copy(book: OrderBook) -> OrderBook:
    """What a worker rebuilds after a restart: open orders in priority order, then the last price."""
    copy = OrderBook(book.symbol)
    for o in book.open_orders():
        copy.restore(
            o.order_id, o.account_id, o.side, o.order_type, o.tif, o.qty, o.price, o.stop_price,
            cum_qty=o.cum_qty, priority=o.priority, triggered=o.triggered, protection_price=o.protection_price,
        )  # fmt: skip
    copy.set_last_price(book.last_price)
    copy.set_sequences(last_priority=book.last_priority, max_order_id=book.max_order_id)
    return copy


class Ledger:
    """Checks every event stream for conservation and consistent statuses."""

    def __init__(self) -> None:
        self.filled = defaultdict(int)

    def check(self, events: list) -> None:
        for e in events:
            kind = e[0]
            if kind == "trade":
                _, price, qty, maker, taker, maker_account, taker_account, _ = e
                assert qty > 0 and maker_account != taker_account
                self.filled[maker] += qty
                self.filled[taker] += qty
            elif kind == "order_update":
                _, order_id, status, qty, cum, leaves, reason = e
                canceled = qty - cum - leaves
                assert cum == self.filled[order_id]
                assert cum >= 0 and leaves >= 0 and canceled >= 0
                if status == FILLED:
                    assert (cum, leaves, reason) == (qty, 0, None)
                elif status == PARTIALLY_FILLED:
                    assert 0 < cum < qty and canceled == 0 and reason is None
                else:
                    assert status == CANCELED and leaves == 0 and reason
            elif kind == "replaced":
                _, order_id, qty, cum, leaves, *_ = e
                assert cum == self.filled[order_id] and qty == cum + leaves and leaves > 0


def assert_same_book(book: OrderBook, ref: ReferenceBook) -> None:
    engine_orders = [
        (o.order_id, o.account_id, o.side, o.order_type, o.qty, o.cum_qty, o.leaves_qty, o.price, o.stop_price,
         o.priority, o.triggered or o.order_type == LIMIT)
        for o in book.open_orders()
    ]  # fmt: skip
    ref_orders = [
        (o.order_id, o.account_id, o.side, o.order_type, o.qty, o.cum_qty, o.leaves_qty, o.price, o.stop_price,
         o.priority, not o.parked)
        for o in sorted(ref.live, key=lambda o: o.priority)
    ]  # fmt: skip
    assert engine_orders == ref_orders
    for o in book.open_orders():
        assert o.leaves_qty > 0 and o.qty == o.cum_qty + o.leaves_qty
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

    def run(self, command, *args):
        got = getattr(self.book, command)(*args)
        want = getattr(self.ref, command)(*args)
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
        self.run("submit", *args)

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

    @rule()
    def end_of_day(self):
        self.run("expire_day_orders")

    @rule()
    def restart(self):
        self.book = restored_copy(self.book)

    @invariant()
    def same_book(self):
        assert_same_book(self.book, self.ref)


BookMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_matches_reference = BookMachine.TestCase


@pytest.mark.parametrize("seed", range(40))
def test_long_random_sequences_match_reference(seed):
    """Longer sequences than the state machine runs, over a deeper book, with a restart midway."""
    rng = random.Random(seed)
    book, ref, ledger = OrderBook("RAND"), ReferenceBook(), Ledger()
    restart_at = rng.randrange(100, 400)
    for step in range(400):
        roll = rng.random()
        if roll < 0.55:
            order_type = rng.choice(ORDER_TYPES)
            args = submit_args(
                step + 1, rng.randint(1, 4), rng.choice([BUY, SELL]), order_type, rng.choice(TIMES_IN_FORCE),
                rng.randint(1, 20), rng.randint(90, 110), rng.randint(90, 110),
                rng.choice([None, rng.randint(90, 110)]),
            )  # fmt: skip
            command = ("submit", *args)
        elif roll < 0.85:
            command = ("cancel", rng.randint(1, step + 2))
        elif roll < 0.99:
            command = (
                "replace", rng.randint(1, step + 2), rng.choice([None, rng.randint(1, 25)]),
                rng.choice([None, rng.randint(90, 110)]), rng.choice([None, None, rng.randint(90, 110)]),
            )  # fmt: skip
        else:
            command = ("expire_day_orders",)
        got = getattr(book, command[0])(*command[1:])
        assert got == getattr(ref, command[0])(*command[1:]), command
        ledger.check(got)
        if step == restart_at:
            book = restored_copy(book)
        if step % 20 == 0:
            assert_same_book(book, ref)
    assert_same_book(book, ref)
