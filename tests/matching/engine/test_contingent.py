"""Unit tests of contingent orders (README, "Contingent orders"): OCO pairs, legs held for a parent
(OTO, bracket) and trailing stops, one behaviour per test, with the exact event sequences.

Accounts: 7 owns the class under test, 8 and 9 are the other side of the market.
"""

import pytest

from matching.engine import (
    BUY,
    CANCELED,
    DAY,
    FILLED,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    SELL,
    STOP,
    TRAILING_STOP,
    Accepted,
    CancelReason,
    InvalidOrder,
    Leg,
    OrderBook,
    OrderUpdate,
    Rejected,
    RejectReason,
    Replaced,
    Resized,
    Rested,
    StopTriggered,
    Trade,
    TrailMoved,
    named,
)

from .test_against_reference import restored_copy

OCO = CancelReason.OCO


def ev(events):
    return [named(e) for e in events]


def filled(order_id, qty, cum):
    return OrderUpdate("order_update", order_id, FILLED, qty, cum, 0, None)


def partial(order_id, qty, cum):
    return OrderUpdate("order_update", order_id, PARTIALLY_FILLED, qty, cum, qty - cum, None)


def canceled(order_id, qty, cum, reason):
    return OrderUpdate("order_update", order_id, CANCELED, qty, cum, 0, reason)


def resized(order_id, qty, cum, reason):
    return Resized("resized", order_id, qty, cum, qty - cum, reason)


def limit(book, order_id, account, side, qty, price, tif=GTC, **kwargs):
    return book.submit(order_id, account, side, LIMIT, tif, qty, price, **kwargs)


def set_last(book, price, first_id):
    """Make a trade at price between accounts 8 and 9 (ids first_id, first_id + 1): last_price = price."""
    limit(book, first_id, 9, BUY, 1, price)
    limit(book, first_id + 1, 8, SELL, 1, price)
    assert book.last_price == price


@pytest.fixture
def book():
    return OrderBook("CONT")


@pytest.fixture
def oco_book(book):
    """A sell take-profit 10 @ 105 (id 1) with a sell stop at 95 (id 2) as its OCO leg."""
    events = limit(book, 1, 7, SELL, 10, 105, oco=Leg(2, STOP, stop_price=95))
    assert ev(events) == [
        Accepted("accepted", 1, 1),
        Rested("rested", 1, SELL, 105, 10, 1),
        Accepted("accepted", 2, 2),  # the leg enters after the order, with the next priority
    ]
    return book


@pytest.fixture
def bracket_book(book):
    """Buy parent 5 @ 100 (id 2) with a take-profit sell limit @ 110 (id 3) and a stop at 90 (id 4),
    filled 3 on submit by id 1, so both legs are live with 3."""
    limit(book, 1, 9, SELL, 3, 100)
    limit(book, 2, 7, BUY, 5, 100, legs=(Leg(3, LIMIT, price=110), Leg(4, STOP, stop_price=90)))
    return book


# ---------------------------------------------------------------------- OCO pairs


def test_an_oco_leg_takes_the_orders_account_side_quantity_and_tif(oco_book):
    stop = oco_book.get_order(2)

    assert (stop.account_id, stop.side, stop.qty, stop.leaves_qty, stop.tif) == (7, SELL, 10, 10, GTC)
    assert not stop.triggered
    assert oco_book.contingencies() == [(1, None, 2), (2, None, 1)]


def test_oco_take_profit_fill_cancels_the_stop(oco_book):
    events = limit(oco_book, 3, 8, BUY, 10, 105)

    assert ev(events) == [
        Accepted("accepted", 3, 3),
        Trade("trade", 105, 10, 1, 3, 7, 8, BUY),
        filled(1, 10, 10),
        filled(3, 10, 10),
        canceled(2, 10, 0, OCO),
    ]
    assert len(oco_book) == 0 and oco_book.contingencies() == []


def test_oco_partial_fill_reduces_the_sibling(oco_book):
    events = limit(oco_book, 3, 8, BUY, 4, 105)

    assert ev(events) == [
        Accepted("accepted", 3, 3),
        Trade("trade", 105, 4, 1, 3, 7, 8, BUY),
        partial(1, 10, 4),
        filled(3, 4, 4),
        resized(2, 6, 0, "oco"),
    ]
    assert (oco_book.get_order(2).qty, oco_book.get_order(2).leaves_qty) == (6, 6)
    assert oco_book.get_order(1).leaves_qty == 6


def test_oco_reduce_keeps_the_queue_position_and_a_leg_filled_cancels_the_other(book):
    limit(book, 1, 9, SELL, 5, 106)
    limit(book, 2, 7, SELL, 4, 105, oco=Leg(3, LIMIT, price=106))
    limit(book, 4, 9, SELL, 5, 106)
    assert ev(limit(book, 5, 8, BUY, 1, 105))[-1] == resized(3, 3, 0, "oco")
    assert ev(book.replace(2, price=107)) == [
        Replaced("replaced", 2, 4, 1, 3, 107, None, True, 6),
        Rested("rested", 2, SELL, 107, 3, 6),
    ]

    events = limit(book, 6, 8, BUY, 9, 106)

    assert ev(events) == [
        Accepted("accepted", 6, 7),
        Trade("trade", 106, 5, 1, 6, 9, 8, BUY),
        filled(1, 5, 5),
        partial(6, 9, 5),
        Trade("trade", 106, 3, 3, 6, 7, 8, BUY),
        filled(3, 3, 3),
        partial(6, 9, 8),
        canceled(2, 4, 1, OCO),
        Trade("trade", 106, 1, 4, 6, 9, 8, BUY),
        partial(4, 5, 1),
        filled(6, 9, 9),
    ]


def test_oco_stop_leg_triggered_and_filled_cancels_the_take_profit(book):
    limit(book, 1, 9, BUY, 1, 100)
    limit(book, 2, 9, BUY, 5, 98)
    limit(book, 3, 7, SELL, 2, 110, oco=Leg(4, STOP, stop_price=99))

    events = limit(book, 5, 8, SELL, 2, 98)

    assert ev(events) == [
        Accepted("accepted", 5, 5),
        Trade("trade", 100, 1, 1, 5, 9, 8, SELL),
        filled(1, 1, 1),
        partial(5, 2, 1),
        Trade("trade", 98, 1, 2, 5, 9, 8, SELL),
        partial(2, 5, 1),
        filled(5, 2, 2),
        StopTriggered("stop_triggered", 4, 99, 98),
        Trade("trade", 98, 2, 2, 4, 9, 7, SELL),
        partial(2, 5, 3),
        filled(4, 2, 2),
        canceled(3, 2, 0, OCO),
    ]
    assert book.get_order(3) is None and book.get_order(4) is None


def test_the_oco_leg_enters_after_the_order_and_before_the_stops_its_trades_triggered(book):
    book.submit(1, 8, SELL, STOP, GTC, 1, stop_price=99)
    limit(book, 2, 9, BUY, 1, 99)
    limit(book, 3, 9, BUY, 5, 95)

    events = limit(book, 4, 7, SELL, 2, 99, oco=Leg(5, LIMIT, price=105))

    assert ev(events) == [
        Accepted("accepted", 4, 4),
        Trade("trade", 99, 1, 2, 4, 9, 7, SELL),
        filled(2, 1, 1),
        partial(4, 2, 1),
        resized(5, 1, 0, "oco"),
        Rested("rested", 4, SELL, 99, 1, 4),
        Accepted("accepted", 5, 5),
        Rested("rested", 5, SELL, 105, 1, 5),
        StopTriggered("stop_triggered", 1, 99, 99),
        Trade("trade", 95, 1, 3, 1, 9, 8, SELL),
        partial(3, 5, 1),
        filled(1, 1, 1),
    ]


def test_an_oco_order_filled_on_submit_cancels_its_leg_before_it_enters(book):
    limit(book, 1, 9, BUY, 3, 100)

    events = limit(book, 2, 7, SELL, 3, 100, oco=Leg(3, STOP, stop_price=90))

    assert ev(events) == [
        Accepted("accepted", 2, 2),
        Trade("trade", 100, 3, 1, 2, 9, 7, SELL),
        filled(1, 3, 3),
        filled(2, 3, 3),
        canceled(3, 3, 0, OCO),  # never entered: no Accepted
    ]
    assert len(book) == 0


# ---------------------------------------------------------------------- legs held for a parent


def test_bracket_legs_are_held_until_the_parent_fills(book):
    events = limit(book, 1, 7, BUY, 5, 100, legs=(Leg(2, LIMIT, price=110), Leg(3, STOP, stop_price=90)))

    assert ev(events) == [Accepted("accepted", 1, 1), Rested("rested", 1, BUY, 100, 5, 1)]
    assert book.held_orders() == [
        (2, 1, LIMIT, 110, None, None, None, None),
        (3, 1, STOP, None, 90, None, None, None),
    ]
    assert book.get_order(2) is None and len(book) == 1
    assert book.contingencies() == [(2, 1, 3), (3, 1, 2)]


def test_a_partial_parent_fill_activates_the_legs_after_the_incoming_order(book):
    limit(book, 1, 9, SELL, 3, 100)

    events = limit(book, 2, 7, BUY, 5, 100, legs=(Leg(3, LIMIT, price=110), Leg(4, STOP, stop_price=90)))

    assert ev(events) == [
        Accepted("accepted", 2, 2),
        Trade("trade", 100, 3, 1, 2, 9, 7, BUY),
        filled(1, 3, 3),
        partial(2, 5, 3),
        resized(3, 3, 0, "parent_fill"),
        resized(4, 3, 0, "parent_fill"),
        Rested("rested", 2, BUY, 100, 2, 2),
        Accepted("accepted", 3, 3),
        Rested("rested", 3, SELL, 110, 3, 3),
        Accepted("accepted", 4, 4),
    ]
    stop = book.get_order(4)
    assert (stop.side, stop.qty, stop.account_id, stop.triggered) == (SELL, 3, 7, False)
    assert book.held_orders() == []


def test_the_next_parent_fill_grows_live_legs_in_place(bracket_book):
    book = bracket_book
    limit(book, 5, 9, SELL, 1, 110)  # behind the take-profit

    events = limit(book, 6, 8, SELL, 2, 100)

    assert ev(events) == [
        Accepted("accepted", 6, 6),
        Trade("trade", 100, 2, 2, 6, 7, 8, SELL),
        filled(2, 5, 5),
        filled(6, 2, 2),
        resized(3, 5, 0, "parent_fill"),
        resized(4, 5, 0, "parent_fill"),
    ]
    assert book.get_order(3).priority == 3 and book.get_order(4).qty == 5
    assert book.depth().asks[0] == (110, 6, 2)
    # The parent has gone; the legs go on as an OCO pair, still its legs (their quantity stays the class's).
    assert book.contingencies() == [(3, 2, 4), (4, 2, 3)]


def test_a_leg_filling_completely_cancels_the_parent_remainder(bracket_book):
    events = limit(bracket_book, 5, 8, BUY, 3, 110)

    assert ev(events) == [
        Accepted("accepted", 5, 5),
        Trade("trade", 110, 3, 3, 5, 7, 8, BUY),
        filled(3, 3, 3),
        filled(5, 3, 3),
        canceled(4, 3, 0, OCO),
        canceled(2, 5, 3, OCO),
    ]
    assert len(bracket_book) == 0


def test_a_leg_canceled_by_the_book_ends_its_class(bracket_book):
    # The take-profit moved to 100 reaches its own parent's bid: self-trade cancels it.
    events = bracket_book.replace(3, price=100)

    assert ev(events) == [
        Replaced("replaced", 3, 3, 0, 3, 100, None, True, 5),
        canceled(3, 3, 0, CancelReason.SELF_TRADE),
        canceled(4, 3, 0, OCO),
        canceled(2, 5, 3, OCO),
    ]
    assert len(bracket_book) == 0


def test_held_legs_enter_before_the_stops_the_incoming_trades_triggered(book):
    book.submit(1, 9, SELL, STOP, GTC, 1, stop_price=100)
    limit(book, 2, 9, BUY, 5, 95)
    limit(book, 3, 7, BUY, 2, 100, legs=(Leg(4, LIMIT, price=110),))

    events = limit(book, 5, 8, SELL, 1, 100)

    assert ev(events) == [
        Accepted("accepted", 5, 4),
        Trade("trade", 100, 1, 3, 5, 7, 8, SELL),
        partial(3, 2, 1),
        filled(5, 1, 1),
        resized(4, 1, 0, "parent_fill"),
        Accepted("accepted", 4, 5),
        Rested("rested", 4, SELL, 110, 1, 5),
        StopTriggered("stop_triggered", 1, 100, 100),
        Trade("trade", 100, 1, 3, 1, 7, 9, SELL),
        filled(3, 2, 2),
        filled(1, 1, 1),
        resized(4, 2, 0, "parent_fill"),
    ]


def test_a_parent_canceled_by_the_book_before_any_fill_cancels_its_held_legs(book):
    limit(book, 1, 7, SELL, 2, 100)

    events = limit(book, 2, 7, BUY, 5, 100, legs=(Leg(3, LIMIT, price=110), Leg(4, STOP, stop_price=90)))

    assert ev(events) == [
        Accepted("accepted", 2, 2),
        canceled(2, 5, 0, CancelReason.SELF_TRADE),
        canceled(3, 0, 0, OCO),
        canceled(4, 0, 0, OCO),
    ]
    assert book.held_orders() == [] and len(book) == 1


def test_a_market_parent_that_fills_nothing_cancels_its_held_leg(book):
    events = book.submit(1, 7, BUY, MARKET, DAY, 5, legs=(Leg(2, LIMIT, price=110),))

    assert ev(events) == [
        Accepted("accepted", 1, 1),
        canceled(1, 5, 0, CancelReason.NO_LIQUIDITY),
        canceled(2, 0, 0, OCO),
    ]


def test_a_leg_entering_as_a_stop_already_reached_triggers_at_once(book):
    limit(book, 1, 9, SELL, 2, 98)
    limit(book, 2, 9, BUY, 5, 90)

    events = limit(book, 3, 7, BUY, 2, 100, legs=(Leg(4, STOP, stop_price=99),))

    assert ev(events) == [
        Accepted("accepted", 3, 3),
        Trade("trade", 98, 2, 1, 3, 9, 7, BUY),
        filled(1, 2, 2),
        filled(3, 2, 2),
        resized(4, 2, 0, "parent_fill"),
        Accepted("accepted", 4, 4),
        StopTriggered("stop_triggered", 4, 99, 98),
        Trade("trade", 90, 2, 2, 4, 9, 7, SELL),
        partial(2, 5, 2),
        filled(4, 2, 2),
    ]


# ---------------------------------------------------------------------- cancel and expiry of a class


def test_cancel_takes_the_whole_class_named_order_first_then_by_id(book):
    limit(book, 1, 7, BUY, 5, 100, legs=(Leg(2, LIMIT, price=110), Leg(3, STOP, stop_price=90)))

    events = book.cancel(3)

    assert ev(events) == [
        canceled(3, 0, 0, CancelReason.USER),
        canceled(1, 5, 0, CancelReason.USER),
        canceled(2, 0, 0, CancelReason.USER),
    ]
    assert len(book) == 0 and book.held_orders() == []


def test_cancel_of_a_parent_takes_its_live_legs(bracket_book):
    events = bracket_book.cancel(2)

    assert ev(events) == [
        canceled(2, 5, 3, CancelReason.USER),
        canceled(3, 3, 0, CancelReason.USER),
        canceled(4, 3, 0, CancelReason.USER),
    ]


def test_cancel_of_a_finished_class_member_is_rejected(oco_book):
    limit(oco_book, 3, 8, BUY, 10, 105)

    assert ev(oco_book.cancel(2)) == [Rejected("rejected", 2, RejectReason.TOO_LATE_TO_CANCEL)]


def test_expiry_takes_the_whole_class(book):
    limit(book, 1, 9, SELL, 3, 100)
    limit(book, 2, 7, BUY, 5, 100, tif=DAY, legs=(Leg(3, LIMIT, price=110), Leg(4, STOP, stop_price=90)))
    limit(book, 5, 8, BUY, 1, 90, tif=DAY)

    events = book.expire_day_orders()

    assert ev(events) == [
        canceled(2, 5, 3, CancelReason.EXPIRED),
        canceled(3, 3, 0, CancelReason.EXPIRED),
        canceled(4, 3, 0, CancelReason.EXPIRED),
        canceled(5, 1, 0, CancelReason.EXPIRED),
    ]


def test_parents_and_oco_pairs_take_day_or_gtc_only(book):
    with pytest.raises(InvalidOrder):
        limit(book, 1, 7, BUY, 5, 100, tif=IOC, legs=(Leg(2, LIMIT, price=110),))
    with pytest.raises(InvalidOrder):
        limit(book, 1, 7, SELL, 5, 100, tif=IOC, oco=Leg(2, STOP, stop_price=90))
    assert len(book) == 0 and book.held_orders() == []


# ---------------------------------------------------------------------- replace within a class


def test_a_legs_quantity_belongs_to_the_class(bracket_book):
    assert ev(bracket_book.replace(3, qty=2)) == [Rejected("rejected", 3, RejectReason.INVALID_REPLACE)]
    assert ev(bracket_book.replace(3, qty=3)) == [Replaced("replaced", 3, 3, 0, 3, 110, None, False, 3)]


def test_a_held_leg_cannot_be_replaced(book):
    limit(book, 1, 7, BUY, 5, 100, legs=(Leg(2, LIMIT, price=110),))

    assert ev(book.replace(2, price=111)) == [Rejected("rejected", 2, RejectReason.INVALID_REPLACE)]


def test_a_replaced_leg_keeps_its_class(bracket_book):
    assert ev(bracket_book.replace(3, price=108)) == [
        Replaced("replaced", 3, 3, 0, 3, 108, None, True, 5),
        Rested("rested", 3, SELL, 108, 3, 5),
    ]

    events = limit(bracket_book, 5, 8, BUY, 1, 108)

    assert ev(events)[-1] == resized(4, 2, 0, "oco")
    assert bracket_book.contingencies() == [(3, 2, 4), (4, 2, 3)]


def test_a_parents_quantity_can_grow_and_its_legs_follow_its_fills(book):
    limit(book, 1, 7, BUY, 2, 100, legs=(Leg(2, LIMIT, price=110),))
    assert ev(book.replace(1, qty=4)) == [
        Replaced("replaced", 1, 4, 0, 4, 100, None, True, 2),
        Rested("rested", 1, BUY, 100, 4, 2),
    ]

    events = limit(book, 3, 8, SELL, 4, 100)

    assert ev(events) == [
        Accepted("accepted", 3, 3),
        Trade("trade", 100, 4, 1, 3, 7, 8, SELL),
        filled(1, 4, 4),
        filled(3, 4, 4),
        resized(2, 4, 0, "parent_fill"),
        Accepted("accepted", 2, 4),
        Rested("rested", 2, SELL, 110, 4, 4),
    ]


# ---------------------------------------------------------------------- trailing stops


def test_a_trailing_stop_needs_a_last_price(book):
    with pytest.raises(InvalidOrder):
        book.submit(1, 7, SELL, TRAILING_STOP, GTC, 2, trail_price=3)
    assert len(book) == 0


def test_a_trailing_stop_follows_the_price_up_and_triggers_on_a_drop_by_the_trail(book):
    set_last(book, 100, 1)
    assert ev(book.submit(3, 7, SELL, TRAILING_STOP, GTC, 2, trail_price=3)) == [
        Accepted("accepted", 3, 3),
        TrailMoved("trail_moved", 3, 97, 100),
    ]
    assert book.get_order(3).stop_price == 97
    limit(book, 4, 9, SELL, 1, 102)

    events = limit(book, 5, 8, BUY, 1, 102)

    assert ev(events) == [
        Accepted("accepted", 5, 5),
        Trade("trade", 102, 1, 4, 5, 9, 8, BUY),
        filled(4, 1, 1),
        filled(5, 1, 1),
        TrailMoved("trail_moved", 3, 99, 102),
    ]
    limit(book, 6, 9, BUY, 1, 100)
    assert TrailMoved not in map(type, ev(limit(book, 7, 8, SELL, 1, 100)))  # a dip within the trail
    limit(book, 8, 9, BUY, 1, 99)
    limit(book, 9, 9, BUY, 5, 98)

    events = limit(book, 10, 8, SELL, 1, 99)

    assert ev(events) == [
        Accepted("accepted", 10, 10),
        Trade("trade", 99, 1, 8, 10, 9, 8, SELL),
        filled(8, 1, 1),
        filled(10, 1, 1),
        StopTriggered("stop_triggered", 3, 99, 99),
        Trade("trade", 98, 2, 9, 3, 9, 7, SELL),
        partial(9, 5, 2),
        filled(3, 2, 2),
    ]


def test_a_percent_trail_is_rounded_up_to_whole_ticks(book):
    set_last(book, 100, 1)
    book.submit(3, 7, SELL, TRAILING_STOP, GTC, 1, trail_bp=250)  # ceil(2.5) = 3
    assert book.get_order(3).stop_price == 97
    limit(book, 4, 9, SELL, 1, 110)

    assert ev(limit(book, 5, 8, BUY, 1, 110))[-1] == TrailMoved("trail_moved", 3, 107, 110)  # ceil(2.75) = 3
    limit(book, 6, 9, BUY, 1, 107)
    limit(book, 7, 9, BUY, 1, 100)

    events = limit(book, 8, 8, SELL, 1, 107)

    assert ev(events)[4:] == [
        StopTriggered("stop_triggered", 3, 107, 107),
        Trade("trade", 100, 1, 7, 3, 9, 7, SELL),
        filled(7, 1, 1),
        filled(3, 1, 1),
    ]


def test_a_buy_trailing_stop_follows_the_price_down(book):
    set_last(book, 100, 1)
    book.submit(3, 7, BUY, TRAILING_STOP, GTC, 1, trail_price=2)
    assert book.get_order(3).stop_price == 102
    limit(book, 4, 9, BUY, 1, 99)
    limit(book, 5, 9, BUY, 1, 97)

    events = limit(book, 6, 8, SELL, 2, 97)

    # The walk goes 99 then 97: the mark takes the first price, then the last; one event.
    assert ev(events)[-1] == TrailMoved("trail_moved", 3, 99, 97)
    assert [type(e) for e in ev(events)].count(TrailMoved) == 1
    limit(book, 7, 9, SELL, 1, 99)
    limit(book, 8, 9, SELL, 1, 101)

    events = limit(book, 9, 8, BUY, 1, 99)

    assert ev(events)[4:] == [
        StopTriggered("stop_triggered", 3, 99, 99),
        Trade("trade", 101, 1, 8, 3, 9, 7, BUY),
        filled(8, 1, 1),
        filled(3, 1, 1),
    ]


def test_the_mark_takes_the_first_trade_price_before_the_stops_are_taken(book):
    set_last(book, 100, 1)
    book.submit(3, 7, SELL, TRAILING_STOP, GTC, 2, trail_price=3)  # stop 97
    limit(book, 4, 9, BUY, 1, 104)
    limit(book, 5, 9, BUY, 1, 98)
    limit(book, 6, 9, BUY, 5, 95)

    events = limit(book, 7, 8, SELL, 2, 98)

    # The incoming sell trades 104 then 98: the mark takes 104 (stop 101) and 98 reaches it.
    assert ev(events)[7:] == [
        StopTriggered("stop_triggered", 3, 101, 98),
        Trade("trade", 95, 2, 6, 3, 9, 7, SELL),
        partial(6, 5, 2),
        filled(3, 2, 2),
    ]


def test_trail_moved_comes_in_priority_order_after_the_orders_events(book):
    set_last(book, 100, 1)
    book.submit(3, 7, SELL, TRAILING_STOP, GTC, 1, trail_price=5)
    book.submit(4, 7, SELL, TRAILING_STOP, GTC, 1, trail_bp=100)
    limit(book, 5, 9, SELL, 1, 103)

    events = limit(book, 6, 8, BUY, 2, 103)

    assert ev(events)[-3:] == [
        Rested("rested", 6, BUY, 103, 1, 6),
        TrailMoved("trail_moved", 3, 98, 103),
        TrailMoved("trail_moved", 4, 101, 103),  # ceil(1.03) = 2
    ]


def test_replacing_the_trail_keeps_the_mark_and_loses_priority(book):
    set_last(book, 100, 1)
    book.submit(3, 7, SELL, TRAILING_STOP, GTC, 2, trail_price=3)

    events = book.replace(3, trail_price=5)

    assert ev(events) == [Replaced("replaced", 3, 2, 0, 2, None, 95, True, 4)]
    assert book.get_order(3).priority == 4 and book.get_order(3).stop_price == 95


def test_replacing_the_trail_may_trigger_at_once(book):
    set_last(book, 100, 1)
    book.submit(3, 7, SELL, TRAILING_STOP, GTC, 2, trail_price=3)  # mark 100, stop 97
    limit(book, 4, 9, BUY, 1, 98)
    limit(book, 5, 8, SELL, 1, 98)  # last 98, the mark stays 100
    limit(book, 6, 9, BUY, 5, 96)

    events = book.replace(3, trail_bp=100)  # offset ceil(1.0) = 1: stop 99, already reached

    assert ev(events) == [
        Replaced("replaced", 3, 2, 0, 2, None, 99, True, 7),
        StopTriggered("stop_triggered", 3, 99, 98),
        Trade("trade", 96, 2, 6, 3, 9, 7, SELL),
        partial(6, 5, 2),
        filled(3, 2, 2),
    ]


def test_a_trailing_stop_replace_refusals(book):
    set_last(book, 100, 1)
    book.submit(3, 7, SELL, TRAILING_STOP, GTC, 2, trail_price=3)
    limit(book, 4, 7, SELL, 2, 110)

    assert ev(book.replace(4, trail_price=2)) == [Rejected("rejected", 4, RejectReason.INVALID_REPLACE)]
    assert ev(book.replace(3, price=99)) == [Rejected("rejected", 3, RejectReason.INVALID_REPLACE)]


def test_a_trailing_leg_starts_its_mark_when_it_enters(book):
    set_last(book, 100, 1)
    limit(book, 3, 9, SELL, 2, 102)

    events = limit(book, 4, 7, BUY, 2, 102, legs=(Leg(5, TRAILING_STOP, trail_price=2),))

    assert ev(events)[-2:] == [Accepted("accepted", 5, 5), TrailMoved("trail_moved", 5, 100, 102)]
    assert book.trail_of(5) == (2, None, 102)  # the mark starts at the parent's fill price


# ---------------------------------------------------------------------- restart


def classy_book():
    """An OCO pair, a bracket with held legs, one with live legs and a trailing stop whose mark moved."""
    book = OrderBook("CONT")
    limit(book, 1, 9, SELL, 3, 100)
    limit(book, 2, 7, BUY, 5, 100, legs=(Leg(3, LIMIT, price=110), Leg(4, STOP, stop_price=90)))
    limit(book, 5, 8, BUY, 4, 95, legs=(Leg(6, LIMIT, price=108), Leg(7, TRAILING_STOP, trail_bp=300)))
    limit(book, 8, 9, SELL, 4, 104, oco=Leg(9, STOP, stop_price=94))
    book.submit(10, 9, SELL, TRAILING_STOP, GTC, 2, trail_price=2)
    limit(book, 11, 8, SELL, 1, 102)
    limit(book, 12, 9, BUY, 1, 102)  # the trailing stop's mark moves to 102
    return book


def test_restart_rebuilds_classes_held_legs_and_marks():
    book = classy_book()

    copy = restored_copy(book)

    assert copy.contingencies() == book.contingencies()
    assert copy.held_orders() == book.held_orders()
    assert copy.open_orders() == book.open_orders()


@pytest.mark.parametrize(
    "command",
    [
        lambda b: b.submit(20, 9, SELL, LIMIT, GTC, 5, 95),  # fills parent 2 and part of 5: legs grow, enter
        lambda b: b.submit(20, 8, BUY, LIMIT, GTC, 3, 110),  # fills the OCO order 8 in part: its stop shrinks
        lambda b: b.submit(20, 8, SELL, MARKET, GTC, 9),  # walks the bids: triggers the trailing stop 10
        lambda b: b.cancel(9),
        lambda b: b.cancel(7),
        lambda b: b.replace(10, trail_price=1),
        lambda b: b.replace(6, price=109),
    ],
)
def test_a_restored_book_behaves_as_the_original(command):
    book = classy_book()
    copy = restored_copy(book)

    assert command(copy) == command(book)
    assert copy.open_orders() == book.open_orders()
    assert copy.contingencies() == book.contingencies()
    assert copy.held_orders() == book.held_orders()
