"""The invariant checker: silent on books made by real trading, and naming the drift in deliberately broken copies."""
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F
from django.utils import timezone

from brokerx.invariants import CHECKS, invariants_check
from matching.models import Trade
from notifications.models import ExecutionReport
from orders.models import Order
from orders.services import OrderRequest, order_cancel, order_place, order_replace
from outbox.models import OutboxEvent
from portfolios.models import JournalEntry, LedgerAccount
from portfolios.services import house_account
from tests.trading_fixtures import match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]


def place(user, side: str, qty: str, price: str | None = None, *, type: str = "limit", tif: str = "gtc") -> Order:
    order, _ = order_place(user=user, request=OrderRequest(
        symbol="ACME", side=side, type=type, time_in_force=tif, qty=Decimal(qty),
        limit_price=Decimal(price) if price else None))
    return order


def fresh(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def traded(instrument, make_trader):
    """Books made by real trading: fills, a partial fill, a replace, cancels (one before matching saw the order),
    a market order, and an order still waiting for matching."""
    seller = make_trader(shares={"ACME": "20"})
    buyer = make_trader(cash="10000")
    sell = place(seller, "sell", "10", "100.00")
    match()
    buy = place(buyer, "buy", "4", "101.00")
    match()  # sell partially filled, buy filled
    resting = place(buyer, "buy", "5", "95.00")
    match()
    resting = order_replace(user=buyer, order_id=resting.pk, version=fresh(resting).version, qty=Decimal("6"),
                            limit_price=Decimal("96.00"))
    match()
    market = place(buyer, "buy", "2", type="market", tif="day")
    match()
    order_cancel(user=seller, order_id=sell.pk, version=fresh(sell).version)
    early = place(buyer, "buy", "1", "99.00")
    order_cancel(user=buyer, order_id=early.pk, version=early.version)  # before matching took its order.created
    match()
    waiting = place(seller, "sell", "2", "105.00")  # order.created still pending
    return SimpleNamespace(seller=seller, buyer=buyer, sell=fresh(sell), buy=fresh(buy), resting=fresh(resting),
                           market=fresh(market), early=fresh(early), waiting=fresh(waiting))


def checks_failing(**kwargs) -> dict[str, list[str]]:
    failing: dict[str, list[str]] = {}
    for violation in invariants_check(**kwargs):
        failing.setdefault(violation.check, []).append(f"{violation.subject}: {violation.detail}")
    return failing


def test_books_made_by_real_trading_pass_every_check(traded):
    assert traded.sell.status == "canceled" and traded.sell.cum_qty == 6  # 4 to the limit buy, 2 to the market
    assert traded.buy.status == "filled" and traded.market.status == "filled"
    assert traded.resting.status == "new" and traded.resting.book_seq is not None
    assert traded.waiting.saga_state == "created"
    assert Trade.objects.count() == 2
    assert invariants_check() == []


def test_an_order_canceled_before_matching_took_it_ends_its_saga_completed_and_never_reaches_the_book(traded):
    early = traded.early
    assert (early.status, early.saga_state, early.book_seq) == ("canceled", "completed", None)
    assert OutboxEvent.objects.filter(topic="saga.completed", aggregate_id=str(early.pk)).count() == 1
    assert not Trade.objects.filter(buy_order=early).exists()
    created = OutboxEvent.objects.get(topic="order.created", aggregate_id=str(early.pk))
    assert created.status == "done"  # matching took it and skipped the closed order


def test_a_balance_changed_without_postings_is_named(traded):
    account = LedgerAccount.objects.get(owner=traded.buyer, kind="cash_available", asset="USD")
    with connection.cursor() as cursor:  # around the guard trigger, as only a bug or a hand edit could
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE portfolios_ledgeraccount SET balance = balance + 1 WHERE id = %s", [account.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")

    failing = checks_failing()
    assert list(failing) == ["balances_match_postings"]
    assert failing["balances_match_postings"] == [
        f"account {account.pk} (user {traded.buyer.pk} cash_available USD): "
        f"balance {account.balance + 1} but postings sum to {account.balance}"]


def test_an_entry_that_does_not_balance_is_named(traded):
    fees = house_account(kind=LedgerAccount.Kind.HOUSE_FEES, asset="USD")
    with connection.cursor() as cursor:
        # The fixture's entries are checked now (their deferred check reads every later entry of the transaction),
        # then the broken one is written around the check.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL session_replication_role = replica")
        entry = JournalEntry.objects.create(kind="adjustment", reference="broken")
        cursor.execute("INSERT INTO portfolios_posting (entry_id, account_id, amount) VALUES (%s, %s, 5)",
                       [entry.pk, fees.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")

    assert checks_failing() == {"entries_balanced": [f"journal entry {entry.pk} USD: postings sum to 5.0000"]}


def test_a_reservation_that_does_not_match_the_open_orders_is_named(traded):
    Order.objects.filter(pk=traded.resting.pk).update(reserved_amount=F("reserved_amount") - 1)

    failing = checks_failing()
    assert list(failing) == ["reservations_match_holds"]
    [line] = failing["reservations_match_holds"]
    assert line.startswith(f"user {traded.buyer.pk} cash_reserved USD: ledger holds ")


def test_a_closed_order_still_holding_a_reservation_is_named(traded):
    Order.objects.filter(pk=traded.buy.pk).update(reserved_amount=Decimal("3"))

    failing = checks_failing()
    assert f"order {traded.buy.pk}: filled but still holds 3.0000" in failing["reservations_match_holds"]


def test_an_order_whose_quantities_do_not_add_up_is_named(traded):
    Order.objects.filter(pk=traded.resting.pk).update(leaves_qty=F("leaves_qty") + 1)

    assert checks_failing() == {"order_quantities": [
        f"order {traded.resting.pk} (new): cum_qty + leaves_qty <> qty: qty 6.0000, cum_qty 0.0000, leaves_qty 7.0000"]}


def test_a_stale_pending_outbox_event_is_named_past_its_deadline_only(traded):
    event = OutboxEvent.objects.create(topic="execution.reports", queue="default", payload={},
                                       available_at=timezone.now() - timedelta(minutes=10))

    failing = checks_failing()
    assert list(failing) == ["outbox_not_stale"]
    [line] = failing["outbox_not_stale"]
    assert line.startswith(f"outbox event {event.pk} (execution.reports ): pending since ")
    assert checks_failing(outbox_deadline=timedelta(hours=1)) == {}


def test_a_fill_without_its_execution_report_is_named(traded):
    trade = Trade.objects.order_by("pk").first()
    ExecutionReport.objects.filter(trade_id=trade.pk, order_id=trade.buy_order_id).delete()

    assert checks_failing() == {"fills_complete": [
        f"trade {trade.pk}: no execution report for the buy order {trade.buy_order_id}"]}


def test_a_trade_without_its_ledger_entry_is_named(traded):
    trade = Trade.objects.create(symbol="ACME", price=Decimal("100"), qty=Decimal("1"), buy_order=traded.resting,
                                 sell_order=traded.sell, aggressor_side="buy", buyer_fee=0, seller_fee=0)

    failing = checks_failing()["fills_complete"]
    assert f"trade {trade.pk}: no ledger entry (trade:<id>)" in failing
    assert f"trade {trade.pk}: no execution report for the buy order {traded.resting.pk}" in failing
    assert (f"order {traded.resting.pk}: cum_qty 0.0000 / fees_paid 0.0000 but its trades sum to qty 1.0000 / "
            f"fees 0.0000") in failing


def test_an_open_order_neither_resting_nor_queued_for_matching_is_named(traded):
    Order.objects.filter(pk=traded.resting.pk).update(book_seq=None)  # lost its place, no order.replaced pending

    assert checks_failing() == {"orders_resting_or_terminal": [
        f"order {traded.resting.pk} (new, saga completed): "
        "open but neither resting in the book nor waiting in the outbox for matching"]}


def test_an_order_whose_order_created_was_lost_is_named(traded):
    OutboxEvent.objects.filter(topic="order.created", aggregate_id=str(traded.waiting.pk)).update(status="dead")

    assert list(checks_failing()) == ["orders_resting_or_terminal"]


def test_a_saga_state_the_status_does_not_allow_is_named(traded):
    Order.objects.filter(pk=traded.early.pk).update(saga_state="created")  # the drift seen before the fix

    assert checks_failing() == {"saga_matches_status": [f"order {traded.early.pk}: status canceled with saga created"]}


def test_the_command_says_all_checks_hold(traded, capsys):
    call_command("check_invariants")

    assert f"all {len(CHECKS)} invariant checks hold" in capsys.readouterr().out


def test_the_command_prints_the_drift_and_exits_non_zero(traded, capsys):
    Order.objects.filter(pk=traded.resting.pk).update(leaves_qty=F("leaves_qty") + 1)

    with pytest.raises(CommandError) as raised:
        call_command("check_invariants")

    assert raised.value.returncode == 1
    assert "order_quantities" in str(raised.value)
    assert f"order_quantities: order {traded.resting.pk} (new): cum_qty + leaves_qty <> qty" in capsys.readouterr().out


def test_the_command_reads_one_snapshot_outside_a_transaction(transactional_db, capsys):
    call_command("check_invariants", "--check", "entries_balanced", "--check", "outbox_not_stale")

    assert "all 2 invariant checks hold: entries_balanced, outbox_not_stale" in capsys.readouterr().out
