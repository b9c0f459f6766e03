"""Durable matching through the outbox: fills, partial fills, IOC/FOK, market, self-trade, stops, halts, restarts."""
from decimal import Decimal

import pytest

from matching.models import Trade
from matching.services import book_forget
from notifications.models import ExecutionReport
from orders.models import Instrument, Order
from orders.selectors import instrument_cache_invalidate
from orders.services import OrderRequest, order_cancel, order_place, order_replace
from outbox.models import OutboxEvent
from tests.trading_fixtures import assert_books_balanced, balance, match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]


def place(user, side, qty, price=None, *, type="limit", tif="gtc", stop=None, coid=None) -> Order:
    order, _ = order_place(user=user, request=OrderRequest(
        symbol="ACME", side=side, type=type, time_in_force=tif, qty=Decimal(qty),
        limit_price=Decimal(price) if price else None, stop_price=Decimal(stop) if stop else None,
        client_order_id=coid))
    return order


def fresh(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def test_crossing_orders_of_two_traders_fill_and_settle(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    sell = place(seller, "sell", "10", "100.00")
    match()
    buy = place(buyer, "buy", "10", "101.00")
    match()

    sell, buy = fresh(sell), fresh(buy)
    assert sell.status == buy.status == "filled"
    assert sell.avg_px == buy.avg_px == Decimal("100.00")  # at the resting (maker) price
    trade = Trade.objects.get()
    assert (trade.price, trade.qty, trade.aggressor_side) == (Decimal("100.00"), 10, "buy")
    # maker pays 2 bp, taker 5 bp; the buyer's surplus reservation (limit 101) is back in available cash
    assert trade.seller_fee == Decimal("0.20") and trade.buyer_fee == Decimal("0.50")
    assert balance(buyer, "cash_available") == Decimal("5000") - Decimal("1000.50")
    assert balance(buyer, "cash_reserved") == 0
    assert balance(buyer, "securities_available", "ACME") == 10
    assert balance(seller, "cash_available") == Decimal("999.80")
    assert balance(seller, "securities_reserved", "ACME") == 0
    assert sell.saga_state == buy.saga_state == "completed"
    assert_books_balanced()


def test_partial_fill_then_rest_then_cancel_releases_the_rest(instrument, make_trader):
    seller = make_trader(shares={"ACME": "4"})
    buyer = make_trader(cash="5000")
    buy = place(buyer, "buy", "10", "100.00")
    sell = place(seller, "sell", "4", "99.00")
    match()

    buy, sell = fresh(buy), fresh(sell)
    assert sell.status == "filled" and buy.status == "partially_filled"
    assert buy.cum_qty == 4 and buy.leaves_qty == 6
    assert_books_balanced()

    order_cancel(user=buyer, order_id=buy.pk, version=buy.version)
    match()
    assert fresh(buy).status == "canceled"
    assert balance(buyer, "cash_reserved") == 0
    assert balance(buyer, "cash_available") == Decimal("5000") - Decimal("400.08")  # 4 @ 100 + maker fee
    assert_books_balanced()


def test_fok_that_cannot_fill_is_canceled_with_its_reservation_released(instrument, make_trader):
    seller = make_trader(shares={"ACME": "5"})
    buyer = make_trader(cash="5000")
    place(seller, "sell", "5", "100.00")
    fok = place(buyer, "buy", "10", "100.00", tif="fok")
    match()

    fok = fresh(fok)
    assert fok.status == "canceled" and fok.reason == "fok" and fok.cum_qty == 0
    assert balance(buyer, "cash_available") == Decimal("5000") and balance(buyer, "cash_reserved") == 0
    assert Trade.objects.count() == 0
    assert_books_balanced()


def test_ioc_fills_what_it_can_and_cancels_the_rest(instrument, make_trader):
    seller = make_trader(shares={"ACME": "3"})
    buyer = make_trader(cash="5000")
    place(seller, "sell", "3", "100.00")
    ioc = place(buyer, "buy", "10", "100.00", tif="ioc")
    match()

    ioc = fresh(ioc)
    assert ioc.status == "canceled" and ioc.cum_qty == 3 and ioc.leaves_qty == 0 and ioc.reason == "ioc"
    assert balance(buyer, "cash_reserved") == 0
    assert_books_balanced()


def test_market_order_walks_the_book_within_its_protection(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    place(seller, "sell", "2", "100.00")
    place(seller, "sell", "3", "101.00")
    mkt = place(buyer, "buy", "10", type="market", tif="day")
    match()

    mkt = fresh(mkt)
    assert mkt.cum_qty == 5 and mkt.status == "canceled"
    assert mkt.avg_px == Decimal("100.6")
    assert balance(buyer, "securities_available", "ACME") == 5
    assert balance(buyer, "cash_reserved") == 0
    assert_books_balanced()


def test_self_trade_is_prevented_by_canceling_the_newest(instrument, make_trader):
    trader = make_trader(cash="5000", shares={"ACME": "10"})
    resting = place(trader, "sell", "5", "100.00")
    incoming = place(trader, "buy", "5", "100.00")
    match()

    assert fresh(resting).status == "new"
    incoming = fresh(incoming)
    assert incoming.status == "canceled" and incoming.reason == "self_trade"
    assert Trade.objects.count() == 0
    assert balance(trader, "cash_reserved") == 0
    assert_books_balanced()


def test_a_stop_triggers_on_the_last_trade(instrument, make_trader):
    seller = make_trader(shares={"ACME": "20"})
    buyer = make_trader(cash="10000")
    stopper = make_trader(cash="10000")
    stop = place(stopper, "buy", "2", type="stop", tif="day", stop="101.00")
    place(seller, "sell", "1", "101.00")
    place(seller, "sell", "5", "102.00")
    match()
    assert fresh(stop).status == "new" and fresh(stop).cum_qty == 0

    place(buyer, "buy", "1", "101.00")  # last trade 101 reaches the stop
    match()

    stop = fresh(stop)
    assert stop.stop_triggered is False or stop.status == "filled"
    assert stop.status == "filled" and stop.avg_px == Decimal("102.00")
    assert stop.events.filter(type="triggered").exists()
    assert_books_balanced()


def test_an_order_reaching_a_halted_symbol_is_compensated(instrument, make_trader):
    buyer = make_trader(cash="5000")
    order = place(buyer, "buy", "10", "100.00")
    Instrument.objects.filter(symbol="ACME").update(trading_status="halted")
    instrument_cache_invalidate("ACME")

    match()

    order = fresh(order)
    assert order.status == "rejected" and order.reason == "symbol_halted" and order.saga_state == "compensated"
    assert balance(buyer, "cash_available") == Decimal("5000") and balance(buyer, "cash_reserved") == 0
    assert OutboxEvent.objects.filter(topic="saga.compensated", aggregate_id=str(order.pk)).exists()
    assert ExecutionReport.objects.filter(order=order, exec_type="rejected").exists()
    assert_books_balanced()


def test_replace_after_partial_fill_and_priority(instrument, make_trader):
    seller = make_trader(shares={"ACME": "20"})
    early = make_trader(cash="10000")
    late = make_trader(cash="10000")
    first = place(early, "buy", "10", "100.00")
    second = place(late, "buy", "5", "100.00")
    place(seller, "sell", "4", "100.00")
    match()
    first = fresh(first)
    assert first.cum_qty == 4 and fresh(second).cum_qty == 0  # time priority

    # Shrinking keeps priority; the next sell still goes to the first order.
    first = order_replace(user=early, order_id=first.pk, version=first.version, qty=Decimal("8"))
    place(seller, "sell", "2", "100.00")
    match()
    assert fresh(first).cum_qty == 6 and fresh(second).cum_qty == 0

    # Growing loses priority: the second order is now first in line.
    first = order_replace(user=early, order_id=first.pk, version=fresh(first).version, qty=Decimal("12"))
    place(seller, "sell", "3", "100.00")
    match()
    assert fresh(second).cum_qty == 3 and fresh(first).cum_qty == 6
    assert fresh(first).leaves_qty == 6
    assert_books_balanced()


def test_cancel_before_matching_sees_the_order_is_not_matched(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    sell = place(seller, "sell", "10", "100.00")
    match()
    buy = place(buyer, "buy", "10", "100.00")
    order_cancel(user=seller, order_id=sell.pk, version=fresh(sell).version)  # committed before matching runs
    match()

    assert fresh(sell).status == "canceled" and fresh(buy).status == "new" and Trade.objects.count() == 0
    assert_books_balanced()


def test_a_replace_that_lost_priority_survives_a_worker_restart(instrument, make_trader):
    seller = make_trader(shares={"ACME": "20"})
    early, late = make_trader(cash="10000"), make_trader(cash="10000")
    first = place(early, "buy", "10", "100.00")
    second = place(late, "buy", "5", "100.00")
    match()
    order_replace(user=early, order_id=first.pk, version=fresh(first).version, qty=Decimal("12"))
    book_forget()  # the worker restarts before it takes the replace

    place(seller, "sell", "3", "100.00")
    match()

    assert fresh(second).cum_qty == 3 and fresh(first).cum_qty == 0
    assert fresh(first).book_seq > fresh(second).book_seq
    assert_books_balanced()


def test_an_order_reentering_a_rebuilt_book_keeps_what_it_already_filled(instrument, make_trader, caplog):
    """A rebuilt book lacks an order whose replace lost its priority; it re-enters with its fills counted, so a
    second replace in the same batch (quantities are totals) cannot let it fill more than its quantity.

    Before, it re-entered as a fresh order for its leaves: the next replace gave it its whole quantity again,
    the batch overfilled it, the database's check refused the batch and the events were replayed one by one."""
    seller = make_trader(shares={"ACME": "20"})
    buyer = make_trader(cash="10000")
    order = place(buyer, "buy", "10", "100.00")
    place(seller, "sell", "4", "100.00")
    match()
    order_replace(user=buyer, order_id=order.pk, version=fresh(order).version, qty=Decimal("12"))  # priority lost
    book_forget()  # the worker restarts before it takes the replace
    order_replace(user=buyer, order_id=order.pk, version=fresh(order).version, qty=Decimal("8"))
    sell = place(seller, "sell", "16", "100.00")
    with caplog.at_level("WARNING", logger="outbox.services"):
        assert match() == 3

    assert not [r for r in caplog.records if r.name == "outbox.services"], "the batch failed and was replayed"
    order, sell = fresh(order), fresh(sell)
    assert (order.status, order.cum_qty, order.leaves_qty) == ("filled", 8, 0)
    assert (sell.status, sell.cum_qty, sell.leaves_qty) == ("partially_filled", 4, 12)
    assert not OutboxEvent.objects.exclude(status="done").filter(queue="critical").exists()
    assert_books_balanced()


def test_a_restarted_worker_rebuilds_the_book_from_the_database(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    sell_a = place(seller, "sell", "4", "100.00")
    sell_b = place(seller, "sell", "6", "100.00")
    match()
    book_forget()  # the worker process died; a new one knows nothing

    place(buyer, "buy", "5", "100.00")
    match()

    assert fresh(sell_a).status == "filled" and fresh(sell_b).cum_qty == 1  # priority survived
    assert_books_balanced()


def test_a_batch_that_fails_half_way_leaves_nothing_and_is_replayed(instrument, make_trader, monkeypatch):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    place(seller, "sell", "10", "100.00")
    match()
    buy = place(buyer, "buy", "10", "100.00")

    import matching.services as svc

    real = svc.execution_reports_record

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("worker died")

    monkeypatch.setattr(svc, "execution_reports_record", crash)
    match()
    assert Trade.objects.count() == 0 and fresh(buy).status == "new" and fresh(buy).saga_state == "created"
    assert OutboxEvent.objects.get(topic="order.created", aggregate_id=str(buy.pk)).status == "pending"
    assert_books_balanced()

    monkeypatch.setattr(svc, "execution_reports_record", real)
    OutboxEvent.objects.filter(status="pending").update(available_at="2000-01-01T00:00:00Z")
    match()
    assert Trade.objects.count() == 1 and fresh(buy).status == "filled"
    assert ExecutionReport.objects.filter(order=buy, exec_type="trade").count() == 1
    assert_books_balanced()


def test_a_second_replace_in_a_batch_does_not_bring_back_an_order_the_book_canceled(instrument, make_trader,
                                                                                    caplog):
    """Every replace event of a batch applies the order as it is in the database now, so the book takes an order's
    replace once. Taking it twice, a first replace that crossed the trader's own bid was canceled by self-trade
    prevention, and the second found the order missing and put it back in the book (the bid had moved away
    meanwhile): canceled in the database, live in the book, where a later buy filled it."""
    maker = make_trader(cash="10000", shares={"ACME": "20"})
    buyer = make_trader(cash="10000")
    bid = place(maker, "buy", "10", "100.00")
    ask = place(maker, "sell", "10", "102.00")
    match()
    order_replace(user=maker, order_id=ask.pk, version=fresh(ask).version, limit_price=Decimal("99.00"))
    order_replace(user=maker, order_id=bid.pk, version=fresh(bid).version, limit_price=Decimal("98.00"))
    order_replace(user=maker, order_id=ask.pk, version=fresh(ask).version, qty=Decimal("9"))
    match()  # one batch: the ask crosses the maker's own bid (self-trade: canceled), then the bid moves down
    assert (fresh(ask).status, fresh(ask).reason) == ("canceled", "self_trade")

    buy = place(buyer, "buy", "5", "99.00")
    with caplog.at_level("WARNING", logger="outbox.services"):
        match()
    assert not [r for r in caplog.records if r.name == "outbox.services"], "the batch failed and was replayed"
    assert fresh(buy).status == "new" and Trade.objects.count() == 0
    assert fresh(ask).status == "canceled" and fresh(ask).reserved_amount == 0
    assert_books_balanced()


def test_an_event_that_fails_after_another_succeeded_leaves_the_book_to_be_rebuilt(instrument, make_trader,
                                                                                   monkeypatch):
    """Replayed one by one, a failing event has already moved the in-memory book; the success committed before it
    must not mark that book as matching the database (the next batch would trust a book holding a rolled-back
    fill: here the sell would be gone and the buy would rest instead of filling)."""
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    sell = place(seller, "sell", "10", "100.00")
    buy = place(buyer, "buy", "10", "100.00")

    import matching.services as svc

    real = svc.execution_reports_record

    def crash_on_fills(reports, **kwargs):
        real(reports, **kwargs)
        if any(r.exec_type == "trade" for r in reports):
            raise RuntimeError("worker died")

    monkeypatch.setattr(svc, "execution_reports_record", crash_on_fills)
    match()  # the batch fails; one by one, the sell rests and commits, the buy fails after crossing it in the book
    assert fresh(sell).status == "new" and fresh(sell).book_seq is not None and fresh(buy).saga_state == "created"

    monkeypatch.setattr(svc, "execution_reports_record", real)
    OutboxEvent.objects.filter(status="pending").update(available_at="2000-01-01T00:00:00Z")
    match()
    assert Trade.objects.count() == 1
    assert fresh(buy).status == "filled" and fresh(sell).status == "filled"
    assert_books_balanced()


def test_execution_reports_are_numbered_per_user_without_gaps(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    place(seller, "sell", "5", "100.00")
    place(seller, "sell", "5", "100.00")
    match()
    place(buyer, "buy", "10", "100.00")
    match()

    for user in (seller, buyer):
        seqs = list(ExecutionReport.objects.filter(user=user).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
    buyer_reports = list(ExecutionReport.objects.filter(user=buyer).order_by("seq"))
    assert [r.exec_type for r in buyer_reports] == ["new", "trade", "trade"]
    assert buyer_reports[-1].order_status == "filled" and buyer_reports[-1].leaves_qty == 0
    assert buyer_reports[1].cum_qty == 5 and buyer_reports[1].leaves_qty == 5


def test_entering_the_book_keeps_the_clients_version_and_reports_carry_the_order(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="5000")
    sell = place(seller, "sell", "10", "100.00")
    match()
    assert fresh(sell).version == 1 and fresh(sell).book_seq is not None  # resting, version untouched

    order_cancel(user=seller, order_id=sell.pk, version=1)  # the version the ACK gave still works
    sell = place(seller, "sell", "4", "100.00")
    buy = place(buyer, "buy", "4", "100.00")
    match()

    assert fresh(sell).version == 2 and fresh(buy).version == 2  # the fill moved both
    fills = list(ExecutionReport.objects.filter(exec_type="trade").order_by("id"))
    trade = Trade.objects.get()
    assert [f.trade_id for f in fills] == [trade.pk, trade.pk]
    assert {f.order_id for f in fills} == {sell.pk, buy.pk}
