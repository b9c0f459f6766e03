"""Unit tests of the order book's rules, one behaviour at a time, reading events by field name."""

import pytest

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
    NEW,
    PARTIALLY_FILLED,
    SELL,
    STOP,
    STOP_LIMIT,
    Accepted,
    CancelReason,
    DuplicateOrderId,
    InvalidOrder,
    OrderBook,
    OrderUpdate,
    Rejected,
    RejectReason,
    Replaced,
    Rested,
    StopTriggered,
    Trade,
    named,
)


def of(events, kind):
    return [e for e in map(named, events) if isinstance(e, kind)]


def trades(events):
    return [(t.price, t.qty, t.maker_order_id, t.taker_order_id) for t in of(events, Trade)]


def updates(events, order_id):
    return [(u.status, u.cum_qty, u.leaves_qty, u.reason) for u in of(events, OrderUpdate) if u.order_id == order_id]


def limit(book, order_id, side, qty, price, account=None, tif=GTC):
    return book.submit(order_id, order_id if account is None else account, side, LIMIT, tif, qty, price)


@pytest.fixture
def book():
    return OrderBook("TEST")


# ---------------------------------------------------------------------- resting and priority


def test_a_limit_order_that_does_not_cross_rests(book):
    events = limit(book, 1, BUY, 10, 100)

    assert [named(e) for e in events] == [
        Accepted("accepted", 1, 1),
        Rested("rested", 1, BUY, 100, 10, 1),
    ]
    assert book.best_bid() == 100 and book.best_ask() is None
    assert book.get_order(1).status == NEW and book.get_order(1).leaves_qty == 10


def test_better_price_fills_first_then_time_priority(book):
    limit(book, 1, SELL, 5, 101)
    limit(book, 2, SELL, 5, 100)
    limit(book, 3, SELL, 5, 100)

    events = limit(book, 4, BUY, 12, 101)

    assert trades(events) == [(100, 5, 2, 4), (100, 5, 3, 4), (101, 2, 1, 4)]
    assert updates(events, 1) == [(PARTIALLY_FILLED, 2, 3, None)]
    assert updates(events, 4)[-1] == (FILLED, 12, 0, None)


def test_trade_happens_at_the_resting_order_price(book):
    limit(book, 1, BUY, 5, 100)

    events = limit(book, 2, SELL, 5, 90)

    assert trades(events) == [(100, 5, 1, 2)]
    assert book.last_price == 100


def test_partial_fill_rests_the_remainder_of_the_taker(book):
    limit(book, 1, SELL, 4, 100)

    events = limit(book, 2, BUY, 10, 100)

    assert trades(events) == [(100, 4, 1, 2)]
    assert updates(events, 1) == [(FILLED, 4, 0, None)]
    assert updates(events, 2) == [(PARTIALLY_FILLED, 4, 6, None)]
    assert of(events, Rested) == [Rested("rested", 2, BUY, 100, 6, 2)]
    assert book.get_order(2).status == PARTIALLY_FILLED
    assert book.get_order(1) is None


def test_trade_event_names_both_sides(book):
    book.submit(1, 71, SELL, LIMIT, GTC, 3, 100)

    events = book.submit(2, 72, BUY, LIMIT, GTC, 3, 100)

    assert of(events, Trade) == [Trade("trade", 100, 3, 1, 2, 71, 72, BUY)]


# ---------------------------------------------------------------------- IOC, FOK, market


def test_ioc_cancels_what_it_cannot_fill_at_once(book):
    limit(book, 1, SELL, 3, 100)

    events = limit(book, 2, BUY, 10, 100, tif=IOC)

    assert trades(events) == [(100, 3, 1, 2)]
    assert updates(events, 2)[-1] == (CANCELED, 3, 0, CancelReason.IOC)
    assert book.best_bid() is None


def test_ioc_that_does_not_cross_never_rests(book):
    events = limit(book, 1, BUY, 10, 100, tif=IOC)

    assert updates(events, 1) == [(CANCELED, 0, 0, CancelReason.IOC)]
    assert len(book) == 0


def test_fok_fills_entirely_across_levels(book):
    limit(book, 1, SELL, 3, 100)
    limit(book, 2, SELL, 3, 101)

    events = limit(book, 3, BUY, 6, 101, tif=FOK)

    assert trades(events) == [(100, 3, 1, 3), (101, 3, 2, 3)]
    assert updates(events, 3)[-1] == (FILLED, 6, 0, None)


def test_fok_without_enough_liquidity_changes_nothing(book):
    limit(book, 1, SELL, 3, 100)
    limit(book, 2, SELL, 3, 102)
    before = book.depth()

    events = limit(book, 3, BUY, 6, 101, tif=FOK)

    assert [named(e) for e in events] == [
        Accepted("accepted", 3, 3),
        OrderUpdate("order_update", 3, CANCELED, 6, 0, 0, CancelReason.FOK),
    ]
    assert book.depth() == before
    assert book.get_order(1).leaves_qty == 3


def test_fok_blocked_by_own_resting_order_is_canceled_as_self_trade(book):
    book.submit(1, 7, SELL, LIMIT, GTC, 3, 100)
    book.submit(2, 7, SELL, LIMIT, GTC, 3, 100)
    book.submit(3, 8, SELL, LIMIT, GTC, 3, 100)

    events = book.submit(4, 7, BUY, LIMIT, FOK, 3, 100)

    assert updates(events, 4) == [(CANCELED, 0, 0, CancelReason.SELF_TRADE)]
    assert len(book) == 3


def test_market_order_walks_the_book_and_never_rests(book):
    limit(book, 1, SELL, 2, 100)
    limit(book, 2, SELL, 2, 105)

    events = book.submit(3, 3, BUY, MARKET, DAY, 10)

    assert trades(events) == [(100, 2, 1, 3), (105, 2, 2, 3)]
    assert updates(events, 3)[-1] == (CANCELED, 4, 0, CancelReason.NO_LIQUIDITY)
    assert len(book) == 0


def test_market_order_on_an_empty_side_is_canceled(book):
    limit(book, 1, BUY, 2, 100)

    events = book.submit(2, 2, BUY, MARKET, GTC, 5)

    assert updates(events, 2) == [(CANCELED, 0, 0, CancelReason.NO_LIQUIDITY)]


def test_market_order_stops_at_its_protection_price(book):
    limit(book, 1, BUY, 2, 100)
    limit(book, 2, BUY, 2, 98)
    limit(book, 3, BUY, 2, 95)

    events = book.submit(4, 4, SELL, MARKET, DAY, 10, protection_price=98)

    assert trades(events) == [(100, 2, 1, 4), (98, 2, 2, 4)]
    assert updates(events, 4)[-1] == (CANCELED, 4, 0, CancelReason.PROTECTION)
    assert book.best_bid() == 95


def test_market_fok_is_all_or_none_within_protection(book):
    limit(book, 1, SELL, 2, 100)
    limit(book, 2, SELL, 5, 110)

    events = book.submit(3, 3, BUY, MARKET, FOK, 4, protection_price=105)

    assert updates(events, 3) == [(CANCELED, 0, 0, CancelReason.FOK)]
    assert book.get_order(1).leaves_qty == 2


# ---------------------------------------------------------------------- self-trade prevention


def test_self_trade_cancels_the_incoming_remainder_and_keeps_earlier_fills(book):
    book.submit(1, 8, SELL, LIMIT, GTC, 2, 100)  # someone else, first in the queue
    book.submit(2, 7, SELL, LIMIT, GTC, 5, 100)  # our own resting order
    book.submit(3, 8, SELL, LIMIT, GTC, 5, 100)

    events = book.submit(4, 7, BUY, LIMIT, GTC, 10, 101)

    assert trades(events) == [(100, 2, 1, 4)]
    assert updates(events, 4)[-1] == (CANCELED, 2, 0, CancelReason.SELF_TRADE)
    assert book.get_order(2).leaves_qty == 5  # the resting order is untouched
    assert book.get_order(3).leaves_qty == 5
    assert book.best_bid() is None  # the incoming order did not rest either


def test_self_trade_only_applies_at_prices_the_incoming_order_accepts(book):
    book.submit(1, 7, SELL, LIMIT, GTC, 5, 102)

    events = book.submit(2, 7, BUY, LIMIT, GTC, 5, 101)

    assert of(events, Rested) == [Rested("rested", 2, BUY, 101, 5, 2)]


# ---------------------------------------------------------------------- stops


def test_stop_waits_until_the_last_trade_reaches_it(book):
    events = book.submit(1, 1, BUY, STOP, GTC, 3, stop_price=105)
    assert [named(e) for e in events] == [Accepted("accepted", 1, 1)]
    assert book.get_order(1).triggered is False
    limit(book, 2, SELL, 10, 104)
    assert book.depth().asks[0].qty == 10  # a parked stop is not on the book

    limit(book, 3, BUY, 1, 104)  # trades at 104: below the stop
    assert book.get_order(1) is not None
    limit(book, 4, SELL, 1, 105)
    events = limit(book, 5, BUY, 10, 105)  # sweeps 104 and 105, leaving nothing for the stop

    assert of(events, StopTriggered) == [StopTriggered("stop_triggered", 1, 105, 105)]
    assert updates(events, 1)[-1] == (CANCELED, 0, 0, CancelReason.NO_LIQUIDITY)


def test_sell_stop_triggers_when_last_falls_to_it_and_enters_as_market(book):
    limit(book, 1, BUY, 5, 99)
    limit(book, 2, BUY, 5, 95)
    book.submit(3, 3, SELL, STOP, DAY, 4, stop_price=99)

    events = limit(book, 4, SELL, 1, 99)  # trades at 99

    assert of(events, StopTriggered) == [StopTriggered("stop_triggered", 3, 99, 99)]
    assert trades(events) == [(99, 1, 1, 4), (99, 4, 1, 3)]


def test_stop_limit_rests_at_its_limit_once_triggered(book):
    book.submit(1, 1, BUY, STOP_LIMIT, GTC, 5, price=101, stop_price=100)
    limit(book, 2, SELL, 1, 100)

    events = limit(book, 3, BUY, 1, 100)

    assert of(events, StopTriggered)[0].order_id == 1
    assert of(events, Rested)[-1].order_id == 1 and of(events, Rested)[-1].price == 101
    assert book.best_bid() == 101
    assert book.get_order(1).triggered is True


def test_stops_cascade_and_trigger_in_priority_order(book):
    limit(book, 10, SELL, 1, 100)
    limit(book, 11, SELL, 1, 101)
    limit(book, 12, SELL, 1, 102)
    book.submit(1, 1, BUY, STOP, GTC, 1, stop_price=101)  # reached only by stop 3's trade
    book.submit(2, 2, BUY, STOP, GTC, 1, stop_price=100)
    book.submit(3, 3, BUY, STOP, GTC, 1, stop_price=100)

    events = limit(book, 4, BUY, 1, 100)

    triggered = [e.order_id for e in of(events, StopTriggered)]
    assert triggered == [2, 3, 1]
    assert trades(events) == [(100, 1, 10, 4), (101, 1, 11, 2), (102, 1, 12, 3)]


def test_a_stop_already_reached_triggers_on_submit(book):
    limit(book, 1, SELL, 1, 100)
    limit(book, 2, BUY, 1, 100)
    limit(book, 3, SELL, 5, 101)

    events = book.submit(4, 4, BUY, STOP, GTC, 2, stop_price=99)

    assert of(events, StopTriggered) == [StopTriggered("stop_triggered", 4, 99, 100)]
    assert trades(events) == [(101, 2, 3, 4)]


def test_stop_triggers_use_every_trade_price_of_the_incoming_order(book):
    limit(book, 1, BUY, 1, 100)
    limit(book, 2, BUY, 1, 98)
    book.submit(3, 3, BUY, STOP, GTC, 1, stop_price=100)  # reached by the first trade (100)
    limit(book, 4, SELL, 9, 200)

    events = book.submit(5, 5, SELL, MARKET, DAY, 2)  # trades at 100 then 98: last ends at 98

    assert book.last_price == 200  # the triggered buy stop then lifted the 200 offer
    assert [e.order_id for e in of(events, StopTriggered)] == [3]


# ---------------------------------------------------------------------- cancel


def test_cancel_reports_what_was_filled_and_frees_the_level(book):
    limit(book, 1, SELL, 10, 100)
    limit(book, 2, BUY, 4, 100)

    events = book.cancel(1)

    assert [named(e) for e in events] == [OrderUpdate("order_update", 1, CANCELED, 10, 4, 0, CancelReason.USER)]
    assert named(events[0]).canceled_qty == 6
    assert book.best_ask() is None and len(book) == 0


def test_cancel_of_a_finished_order_is_too_late_and_of_an_unseen_one_unknown(book):
    limit(book, 1, SELL, 1, 100)
    limit(book, 2, BUY, 1, 100)

    assert book.cancel(1) == [("rejected", 1, RejectReason.TOO_LATE_TO_CANCEL)]
    assert book.cancel(99) == [("rejected", 99, RejectReason.UNKNOWN_ORDER)]
    assert of(book.cancel(1), Rejected)[0].reason == RejectReason.TOO_LATE_TO_CANCEL


def test_cancel_of_a_parked_stop(book):
    book.submit(1, 1, SELL, STOP, GTC, 5, stop_price=90)

    assert updates(book.cancel(1), 1) == [(CANCELED, 0, 0, CancelReason.USER)]
    limit(book, 2, BUY, 1, 80)
    assert of(limit(book, 3, SELL, 1, 80), StopTriggered) == []


def test_canceled_orders_are_skipped_by_matching_and_depth(book):
    for order_id in range(1, 201):
        limit(book, order_id, SELL, 1, 100)
    for order_id in range(1, 200, 2):
        book.cancel(order_id)

    assert book.depth().asks[0] == (100, 100, 100)
    events = limit(book, 500, BUY, 3, 100)
    assert trades(events) == [(100, 1, 2, 500), (100, 1, 4, 500), (100, 1, 6, 500)]


# ---------------------------------------------------------------------- replace


def test_replace_to_a_smaller_qty_keeps_time_priority(book):
    limit(book, 1, SELL, 10, 100)
    limit(book, 2, SELL, 10, 100)

    events = book.replace(1, qty=4)

    assert [named(e) for e in events] == [Replaced("replaced", 1, 4, 0, 4, 100, None, False, 1)]
    assert trades(limit(book, 3, BUY, 5, 100)) == [(100, 4, 1, 3), (100, 1, 2, 3)]


def test_replace_to_a_larger_qty_loses_time_priority(book):
    limit(book, 1, SELL, 10, 100)
    limit(book, 2, SELL, 10, 100)

    events = book.replace(1, qty=12)

    assert of(events, Replaced)[0].priority_lost is True
    assert of(events, Rested) == [Rested("rested", 1, SELL, 100, 12, 3)]
    assert trades(limit(book, 3, BUY, 11, 100)) == [(100, 10, 2, 3), (100, 1, 1, 3)]


def test_replace_to_a_new_price_loses_priority_and_may_trade(book):
    limit(book, 1, BUY, 5, 99)
    limit(book, 2, SELL, 3, 101)

    events = book.replace(1, price=101)

    assert of(events, Replaced)[0].priority_lost is True
    assert trades(events) == [(101, 3, 2, 1)]
    assert of(events, Rested) == [Rested("rested", 1, BUY, 101, 2, 3)]


def test_replace_after_a_partial_fill_sets_the_new_total(book):
    limit(book, 1, SELL, 10, 100)
    limit(book, 2, BUY, 4, 100)

    events = book.replace(1, qty=7)

    assert of(events, Replaced)[0][2:5] == (7, 4, 3)  # qty, cum_qty, leaves_qty
    assert book.depth().asks[0].qty == 3
    assert book.replace(1, qty=4) == [("rejected", 1, RejectReason.INVALID_REPLACE)]
    assert book.replace(1, qty=3) == [("rejected", 1, RejectReason.INVALID_REPLACE)]


def test_an_order_entering_with_fills_trades_only_its_leaves_and_replaces_count_them(book):
    limit(book, 1, BUY, 10, 100)
    events = book.submit(2, 2, SELL, LIMIT, GTC, 12, 100, filled=8)  # 8 of 12 executed elsewhere already

    assert trades(events) == [(100, 4, 1, 2)]
    assert updates(events, 2) == [(FILLED, 12, 0, None)]
    events = book.submit(3, 3, SELL, LIMIT, GTC, 10, 101, filled=6)
    assert of(events, Rested)[0].leaves_qty == 4
    assert of(book.replace(3, qty=9), Replaced)[0][2:5] == (9, 6, 3)  # the total counts the earlier fills
    assert book.depth().asks[0].qty == 3
    assert book.replace(3, qty=6) == [("rejected", 3, RejectReason.INVALID_REPLACE)]
    for bad in (10, 11, -1, 2.0):
        with pytest.raises(InvalidOrder):
            book.submit(4, 4, SELL, LIMIT, GTC, 10, 101, filled=bad)


def test_replace_refusals(book):
    book.submit(1, 1, BUY, STOP, GTC, 5, stop_price=110)
    limit(book, 2, BUY, 5, 100)

    assert of(book.replace(1, price=105), Rejected)[0].reason == RejectReason.INVALID_REPLACE  # a stop has no limit
    assert of(book.replace(2, stop_price=105), Rejected)[0].reason == RejectReason.INVALID_REPLACE
    assert of(book.replace(2, qty=0), Rejected)[0].reason == RejectReason.INVALID_REPLACE
    assert of(book.replace(3, qty=1), Rejected)[0].reason == RejectReason.UNKNOWN_ORDER


def test_replace_of_a_parked_stop_moves_its_trigger(book):
    book.submit(1, 1, BUY, STOP_LIMIT, GTC, 5, price=120, stop_price=110)
    limit(book, 2, SELL, 1, 105)
    limit(book, 3, SELL, 5, 106)

    events = book.replace(1, stop_price=104)  # the next trade at 105 now reaches it
    assert of(events, Replaced)[0].priority_lost is True and of(events, StopTriggered) == []

    events = limit(book, 4, BUY, 1, 105)
    assert [e.order_id for e in of(events, StopTriggered)] == [1]
    assert trades(events)[-1] == (106, 5, 3, 1)


def test_replace_of_a_stop_to_a_price_already_reached_triggers_it(book):
    limit(book, 1, SELL, 1, 100)
    limit(book, 2, BUY, 1, 100)
    book.submit(3, 3, SELL, STOP, GTC, 5, stop_price=90)

    events = book.replace(3, stop_price=100)

    assert of(events, StopTriggered) == [StopTriggered("stop_triggered", 3, 100, 100)]
    assert updates(events, 3) == [(CANCELED, 0, 0, CancelReason.NO_LIQUIDITY)]


# ---------------------------------------------------------------------- day orders


def test_expire_day_orders_cancels_only_day_orders(book):
    limit(book, 1, BUY, 5, 100, tif=DAY)
    limit(book, 2, BUY, 5, 100, tif=GTC)
    book.submit(3, 3, SELL, STOP, DAY, 5, stop_price=90)

    events = book.expire_day_orders()

    assert [(u.order_id, u.reason) for u in of(events, OrderUpdate)] == [
        (1, CancelReason.EXPIRED),
        (3, CancelReason.EXPIRED),
    ]
    assert [o.order_id for o in book.open_orders()] == [2]


# ---------------------------------------------------------------------- restore


def test_restore_rebuilds_queues_without_matching():
    book = OrderBook()
    book.restore(7, 1, SELL, LIMIT, GTC, 10, 100, cum_qty=4, priority=3)
    book.restore(5, 2, SELL, LIMIT, GTC, 2, 100, priority=8)
    book.restore(9, 3, BUY, STOP_LIMIT, DAY, 3, 99, 98, priority=9, triggered=True)
    book.restore(6, 4, SELL, STOP, GTC, 1, stop_price=99, priority=12)
    book.set_last_price(100)

    assert book.depth().asks[0] == (100, 8, 2)
    assert book.best_bid() == 99
    assert book.get_order(6).triggered is False and book.get_order(9).triggered is True
    events = book.submit(10, 5, BUY, LIMIT, GTC, 7, 100)
    assert trades(events) == [(100, 6, 7, 10), (100, 1, 5, 10)]  # restore order, not id order
    assert of(events, Accepted)[0].priority == 13
    events = book.submit(11, 6, SELL, LIMIT, GTC, 3, 95)
    assert [e.order_id for e in of(events, StopTriggered)] == [6]


def test_restore_refuses_what_could_not_be_resting():
    book = OrderBook()
    book.restore(1, 1, SELL, LIMIT, GTC, 5, 100, priority=5)

    with pytest.raises(InvalidOrder):
        book.restore(2, 2, BUY, LIMIT, GTC, 5, 100)  # would cross
    with pytest.raises(InvalidOrder):
        book.restore(3, 2, BUY, LIMIT, GTC, 5, 90, priority=4)  # out of priority order
    with pytest.raises(InvalidOrder):
        book.restore(4, 2, BUY, MARKET, GTC, 5)
    with pytest.raises(InvalidOrder):
        book.restore(5, 2, BUY, LIMIT, IOC, 5, 90)
    with pytest.raises(InvalidOrder):
        book.restore(6, 2, BUY, LIMIT, GTC, 5, 90, cum_qty=5)
    with pytest.raises(DuplicateOrderId):
        book.restore(1, 2, BUY, LIMIT, GTC, 5, 90)
    assert len(book) == 1


def test_open_orders_replayed_through_restore_give_the_same_book(book):
    limit(book, 1, SELL, 5, 101)
    limit(book, 2, SELL, 5, 101)
    limit(book, 3, BUY, 5, 99)
    book.replace(1, qty=6)
    limit(book, 4, BUY, 2, 101)
    book.submit(5, 5, BUY, STOP, GTC, 1, stop_price=102)

    copy = OrderBook()
    for o in book.open_orders():
        copy.restore(o.order_id, o.account_id, o.side, o.order_type, o.tif, o.qty, o.price, o.stop_price,
                     cum_qty=o.cum_qty, priority=o.priority, triggered=o.triggered,
                     protection_price=o.protection_price)  # fmt: skip
    copy.set_last_price(book.last_price)

    assert copy.open_orders() == book.open_orders()
    assert copy.depth() == book.depth()
    assert copy.submit(6, 6, BUY, LIMIT, GTC, 20, 102) == book.submit(6, 6, BUY, LIMIT, GTC, 20, 102)


# ---------------------------------------------------------------------- depth and validation


def test_depth_aggregates_the_top_levels_best_first(book):
    limit(book, 1, BUY, 5, 99)
    limit(book, 2, BUY, 3, 99)
    limit(book, 3, BUY, 1, 97)
    limit(book, 4, BUY, 1, 95)
    limit(book, 5, SELL, 2, 101)

    depth = book.depth(2)

    assert depth.bids == [(99, 8, 2), (97, 1, 1)]
    assert depth.asks == [(101, 2, 1)]


@pytest.mark.parametrize(
    "args",
    [
        (1, 1, "hold", LIMIT, GTC, 5, 100),
        (1, 1, BUY, "iceberg", GTC, 5, 100),
        (1, 1, BUY, LIMIT, "gtd", 5, 100),
        (1, 1, BUY, LIMIT, GTC, 0, 100),
        (1, 1, BUY, LIMIT, GTC, 2.5, 100),
        (1, 1, BUY, LIMIT, GTC, 5, None),
        (1, 1, BUY, LIMIT, GTC, 5, 0),
        (1, 1, BUY, LIMIT, GTC, 5, 100.5),
        (1, 1, BUY, LIMIT, GTC, 5, 100, 99),
        (1, 1, BUY, MARKET, GTC, 5, 100),
        (1, 1, BUY, STOP, GTC, 5, None, None),
        (1, 1, BUY, STOP_LIMIT, GTC, 5, None, 100),
        (1, 1, BUY, MARKET, IOC, 5, None, None, -1),
        ("1", 1, BUY, LIMIT, GTC, 5, 100),
    ],
)
def test_malformed_orders_are_refused_and_leave_no_trace(book, args):
    limit(book, 9, SELL, 5, 101)
    before = (book.open_orders(), book.depth())

    with pytest.raises(InvalidOrder):
        book.submit(*args)

    assert (book.open_orders(), book.depth()) == before
    assert book.cancel(1) == [("rejected", 1, RejectReason.TOO_LATE_TO_CANCEL)]  # ids up to 9 were seen


def test_a_live_order_id_cannot_be_submitted_twice(book):
    limit(book, 1, BUY, 5, 100)

    with pytest.raises(DuplicateOrderId):
        limit(book, 1, SELL, 5, 200)
