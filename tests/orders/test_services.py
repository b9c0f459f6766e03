"""Order placement, replace and cancel: pre-trade checks, reservations, versions and the event log."""
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, transaction

from orders.errors import OrderNotOpen, OrderRejected, StaleOrderVersion
from orders.models import Instrument, Order, OrderEvent
from orders.selectors import instrument_cache_invalidate, order_state_from_events
from orders.services import OrderRequest, buy_reservation, order_cancel, order_place, order_replace
from outbox.models import OutboxEvent
from tests.trading_fixtures import assert_books_balanced, balance, match

pytestmark = pytest.mark.django_db


def limit(side="buy", qty="10", price="100.00", **kw):
    return OrderRequest(symbol="ACME", side=side, type="limit", time_in_force=kw.pop("tif", "day"),
                        qty=Decimal(qty), limit_price=Decimal(price), **kw)


def test_a_limit_buy_reserves_notional_plus_fee_and_writes_order_event_and_outbox(instrument, make_trader, books):
    trader = make_trader(cash="10000")

    order, created = order_place(user=trader, request=limit(qty="10", price="100.00"))

    assert created and order.status == "new" and order.version == 1 and order.leaves_qty == 10
    expected = Decimal("1000.00") + Decimal("0.50")  # taker fee 5 bp
    assert order.reserved_amount == expected == buy_reservation(Decimal("10"), Decimal("100.00"))
    assert balance(trader, "cash_available") == Decimal("10000") - expected
    assert balance(trader, "cash_reserved") == expected
    assert list(order.events.values_list("type", flat=True)) == ["accepted"]
    event = OutboxEvent.objects.get(topic="order.created", aggregate_id=str(order.pk))
    assert event.partition_key == "ACME" and event.queue == "critical"


def test_a_sell_reserves_shares(instrument, make_trader, books):
    trader = make_trader(shares={"ACME": "50"})

    order, _ = order_place(user=trader, request=limit(side="sell", qty="20", price="101.00"))

    assert order.reserved_amount == 20
    assert balance(trader, "securities_available", "ACME") == 30
    assert balance(trader, "securities_reserved", "ACME") == 20


@pytest.mark.parametrize(("request_kwargs", "code"), [
    ({"symbol": "NOPE"}, "unknown_symbol"),
    ({"qty": Decimal("1.5")}, "invalid_lot_size"),
    ({"qty": Decimal("0")}, "invalid_qty"),
    ({"limit_price": Decimal("100.005")}, "invalid_tick_size"),
    ({"limit_price": Decimal("120.00")}, "price_out_of_band"),
    ({"limit_price": Decimal("89.99")}, "price_out_of_band"),
    ({"qty": Decimal("6000")}, "max_notional_exceeded"),
    ({"limit_price": None}, "missing_limit_price"),
    ({"stop_price": Decimal("99")}, "unexpected_stop_price"),
    ({"type": "stop", "limit_price": None}, "missing_stop_price"),
    ({"type": "market", "limit_price": None, "time_in_force": "gtc"}, "invalid_time_in_force"),
])
def test_each_pre_trade_check_rejects_with_its_own_code_and_writes_nothing(instrument, make_trader, request_kwargs,
                                                                           code):
    trader = make_trader(cash="1000000")
    base = {"symbol": "ACME", "side": "buy", "type": "limit", "time_in_force": "day", "qty": Decimal("10"),
            "limit_price": Decimal("100.00")}

    with pytest.raises(OrderRejected) as err:
        order_place(user=trader, request=OrderRequest(**{**base, **request_kwargs}))

    assert err.value.code == code
    assert Order.objects.count() == 0 and OutboxEvent.objects.filter(topic="order.created").count() == 0
    assert balance(trader, "cash_reserved") == 0


def test_halted_and_untradable_symbols_are_refused(instrument, make_trader):
    trader = make_trader(cash="10000")
    Instrument.objects.filter(pk=instrument.pk).update(trading_status="halted")
    instrument_cache_invalidate("ACME")
    with pytest.raises(OrderRejected) as err:
        order_place(user=trader, request=limit())
    assert err.value.code == "symbol_halted"

    Instrument.objects.filter(pk=instrument.pk).update(trading_status="open", is_tradable=False)
    instrument_cache_invalidate("ACME")
    with pytest.raises(OrderRejected) as err:
        order_place(user=trader, request=limit())
    assert err.value.code == "symbol_not_tradable"


def test_buying_power_and_naked_shorts_are_refused(instrument, make_trader, books):
    trader = make_trader(cash="500", shares={"ACME": "5"})

    with pytest.raises(OrderRejected) as err:
        order_place(user=trader, request=limit(qty="5", price="100.00"))  # 500 + fee > 500
    assert err.value.code == "insufficient_buying_power"

    with pytest.raises(OrderRejected) as err:
        order_place(user=trader, request=limit(side="sell", qty="6"))
    assert err.value.code == "insufficient_shares"
    assert Order.objects.count() == 0


def test_market_buy_reserves_at_the_protection_price(instrument, make_trader, books):
    trader = make_trader(cash="10000")

    order, _ = order_place(user=trader, request=OrderRequest(symbol="ACME", side="buy", type="market",
                                                             time_in_force="ioc", qty=Decimal("10")))

    assert order.protection_price == Decimal("110.00")
    assert order.reserved_amount == buy_reservation(Decimal("10"), Decimal("110.00"))


def test_a_repeated_client_order_id_returns_the_existing_order(instrument, make_trader, books):
    trader = make_trader(cash="10000")

    first, created = order_place(user=trader, request=limit(client_order_id="abc-1"))
    again, created_again = order_place(user=trader, request=limit(qty="3", client_order_id="abc-1"))

    assert created and not created_again and again.pk == first.pk and again.qty == 10
    assert Order.objects.count() == 1
    assert balance(trader, "cash_reserved") == first.reserved_amount


def test_cancel_releases_exactly_the_reservation_and_double_cancel_is_refused(instrument, make_trader, books):
    trader = make_trader(cash="10000")
    order, _ = order_place(user=trader, request=limit())

    canceled = order_cancel(user=trader, order_id=order.pk, version=1)

    assert canceled.status == "canceled" and canceled.version == 2 and canceled.leaves_qty == 0
    assert balance(trader, "cash_available") == Decimal("10000") and balance(trader, "cash_reserved") == 0
    with pytest.raises(OrderNotOpen):
        order_cancel(user=trader, order_id=order.pk, version=2)


def test_stale_version_is_refused_with_the_current_order(instrument, make_trader, books):
    trader = make_trader(cash="10000")
    order, _ = order_place(user=trader, request=limit())
    order_replace(user=trader, order_id=order.pk, version=1, limit_price=Decimal("99.00"))

    with pytest.raises(StaleOrderVersion) as err:
        order_cancel(user=trader, order_id=order.pk, version=1)

    assert err.value.current.version == 2
    assert Order.objects.get(pk=order.pk).status == "new"


def test_replace_adjusts_the_reservation_and_says_when_priority_is_lost(instrument, make_trader, books):
    trader = make_trader(cash="10000")
    order, _ = order_place(user=trader, request=limit(qty="10", price="100.00"))

    smaller = order_replace(user=trader, order_id=order.pk, version=1, qty=Decimal("6"))
    assert smaller.reserved_amount == buy_reservation(Decimal("6"), Decimal("100.00"))
    assert OrderEvent.objects.filter(order=order, type="replaced").last().data["priority_lost"] is False

    repriced = order_replace(user=trader, order_id=order.pk, version=2, limit_price=Decimal("101.00"))
    assert repriced.reserved_amount == buy_reservation(Decimal("6"), Decimal("101.00"))
    assert OrderEvent.objects.filter(order=order, type="replaced").last().data["priority_lost"] is True
    assert balance(trader, "cash_reserved") == repriced.reserved_amount
    replaced = OutboxEvent.objects.filter(topic="order.replaced", aggregate_id=str(order.pk)).order_by("id")
    assert [e.payload["priority_lost"] for e in replaced] == [False, True]


@pytest.mark.usefixtures("fresh_books")
def test_replace_after_a_partial_fill_applies_to_the_remaining_quantity(instrument, make_trader, books):
    trader = make_trader(shares={"ACME": "100"})
    buyer = make_trader(cash="1000")
    order, _ = order_place(user=trader, request=limit(side="sell", qty="10", price="100.00"))
    match()
    order_place(user=buyer, request=limit(qty="4", price="100.00"))
    match()  # a real partial fill of 4: shares leave the reservation, the order is partially filled
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.cum_qty, order.leaves_qty, order.reserved_amount) == ("partially_filled", 4, 6, 6)

    with pytest.raises(OrderRejected) as err:
        order_replace(user=trader, order_id=order.pk, version=order.version, qty=Decimal("4"))
    assert err.value.code == "qty_below_filled"

    replaced = order_replace(user=trader, order_id=order.pk, version=order.version, qty=Decimal("8"))

    assert replaced.qty == 8 and replaced.cum_qty == 4 and replaced.leaves_qty == 4
    assert replaced.reserved_amount == 4
    assert balance(trader, "securities_reserved", "ACME") == 4


def test_the_event_log_rebuilds_every_order(instrument, make_trader):
    trader = make_trader(cash="100000")
    a, _ = order_place(user=trader, request=limit())
    b, _ = order_place(user=trader, request=limit(qty="3"))
    order_replace(user=trader, order_id=a.pk, version=1, qty=Decimal("7"), limit_price=Decimal("98.00"))
    order_cancel(user=trader, order_id=b.pk, version=1)

    for order in Order.objects.all():
        rebuilt = order_state_from_events(order.pk)
        assert rebuilt["status"] == order.status
        assert Decimal(rebuilt["qty"]) == order.qty and Decimal(rebuilt["leaves_qty"]) == order.leaves_qty
        assert Decimal(rebuilt["reserved_amount"]) == order.reserved_amount
        assert rebuilt["version"] == order.version


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_orders_exceeding_buying_power_accept_exactly_the_affordable_ones(instrument, make_trader):
    trader = make_trader(cash="7035")  # each order holds 1000.50: exactly seven fit
    barrier = threading.Barrier(20)

    def place(n: int) -> str:
        barrier.wait()
        try:
            order_place(user=trader, request=limit(qty="10", price="100.00", client_order_id=f"race-{n}"))
            return "accepted"
        except OrderRejected as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(place, range(20)))

    assert outcomes.count("accepted") == 7
    assert outcomes.count("insufficient_buying_power") == 13
    assert balance(trader, "cash_available") == Decimal("7035") - 7 * Decimal("1000.50")
    assert_books_balanced()


@contextlib.contextmanager
def accounts_taken_out_of_order(trader, waiting_query: str):
    """A writer taking the trader's two cash accounts against the ledger's order (none of ours does; the cycles
    seen under load went through rows locked implicitly, by foreign-key checks at commit): it takes the higher
    id, waits until a statement matching `waiting_query` waits for it (holding the lower id), then asks for the
    lower id. Postgres breaks the cycle by aborting the statement that waited first: the code under test."""
    from portfolios.models import LedgerAccount

    low, high = sorted(LedgerAccount.objects.filter(owner=trader, kind__in=["cash_available", "cash_reserved"])
                       .values_list("pk", flat=True))
    high_locked, outcome = threading.Event(), []

    def writer():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL deadlock_timeout = '10s'")  # the other side's check, at 1 s, finds the cycle
                cursor.execute("SELECT 1 FROM portfolios_ledgeraccount WHERE id = %s FOR NO KEY UPDATE", [high])
                high_locked.set()
                for _ in range(500):
                    cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the view is read once per transaction
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND query LIKE %s", [waiting_query])
                    if cursor.fetchone()[0]:
                        break
                    time.sleep(0.01)
                cursor.execute("SELECT 1 FROM portfolios_ledgeraccount WHERE id = %s FOR NO KEY UPDATE", [low])
            outcome.append("done")
        except Exception as exc:
            outcome.append(repr(exc))
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert high_locked.wait(timeout=30)
        yield
    finally:
        thread.join(timeout=30)
    assert outcome == ["done"]


@pytest.mark.django_db(transaction=True)
def test_an_order_chosen_as_a_deadlock_victim_runs_again_and_is_placed(instrument, make_trader, caplog):
    trader = make_trader(cash="10000")
    with caplog.at_level("WARNING", logger="brokerx.db"), accounts_taken_out_of_order(trader, "%orders_place%"):
        order, created = order_place(user=trader, request=limit(qty="10", price="100.00"))

    assert created
    assert [(r.getMessage(), r.function) for r in caplog.records] == [("deadlock victim; running it again",
                                                                       "_orders_place")]
    assert Order.objects.filter(user=trader).count() == 1
    assert balance(trader, "cash_reserved") == buy_reservation(Decimal("10"), Decimal("100.00"))
    assert_books_balanced()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_chosen_as_a_deadlock_victim_runs_again_and_releases_once(instrument, make_trader, caplog):
    trader = make_trader(cash="10000")
    order, _ = order_place(user=trader, request=limit(qty="10", price="100.00"))
    with caplog.at_level("WARNING", logger="brokerx.db"), accounts_taken_out_of_order(trader, "%ledgeraccount%"):
        canceled = order_cancel(user=trader, order_id=order.pk, version=order.version)

    assert canceled.status == "canceled" and canceled.version == order.version + 1
    assert [(r.getMessage(), r.function) for r in caplog.records] == [("deadlock victim; running it again",
                                                                       "order_cancel")]
    assert balance(trader, "cash_reserved") == 0 and balance(trader, "cash_available") == Decimal("10000")
    assert OrderEvent.objects.filter(order=order, type="canceled").count() == 1
    assert_books_balanced()
