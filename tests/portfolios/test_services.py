"""Portfolios services: reservations, trade settlement and positions, deposits, withdrawals, adjustments."""
from decimal import Decimal

import pytest
from django.db import transaction

from portfolios import selectors, services
from portfolios.errors import InsufficientFunds, InvalidAmount, InvalidState, LimitExceeded, UnbalancedEntry
from portfolios.models import Deposit, JournalEntry, LedgerAccount, Position
from tests.factories import UserFactory

D = Decimal
Kind = LedgerAccount.Kind
pytestmark = pytest.mark.usefixtures("books")


def cash(user) -> dict:
    b = selectors.balances_for_user(user)
    return {"available": b["cash_available"], "reserved": b["cash_reserved"], "pending": b["cash_pending"]}


def shares(user, symbol) -> dict:
    return selectors.balances_for_user(user)["securities"].get(symbol, {"available": D(0), "reserved": D(0)})


def test_cash_reserve_and_release_move_cash_between_available_and_reserved(trader, fund):
    fund(trader, cash="1000")
    services.cash_reserve(user=trader, amount=D("250.50"), reference="order:1")
    assert cash(trader) == {"available": D("749.50"), "reserved": D("250.50"), "pending": 0}
    services.cash_release(user=trader, amount=D("50.50"), reference="order:1")
    assert cash(trader) == {"available": D("800"), "reserved": D("200"), "pending": 0}


def test_cash_reserve_beyond_available_raises_and_writes_nothing(trader, fund):
    fund(trader, cash="100")
    entries = JournalEntry.objects.count()
    with pytest.raises(InsufficientFunds) as info:
        services.cash_reserve(user=trader, amount=D("100.01"), reference="order:1")
    assert info.value.details["available"] == "100.0000"
    assert JournalEntry.objects.count() == entries


def test_release_of_more_than_reserved_is_refused(trader, fund):
    fund(trader, cash="100")
    services.cash_reserve(user=trader, amount=D("10"), reference="order:1")
    with pytest.raises(InsufficientFunds):
        services.cash_release(user=trader, amount=D("11"), reference="order:1")


def test_shares_reserve_and_release(trader, fund):
    fund(trader, shares={"ACME": "10"}, unit_cost="90")
    services.shares_reserve(user=trader, symbol="ACME", qty=D("4"), reference="order:2")
    assert shares(trader, "ACME") == {"available": D(6), "reserved": D(4)}
    with pytest.raises(InsufficientFunds):
        services.shares_reserve(user=trader, symbol="ACME", qty=D("7"), reference="order:3")
    services.shares_release(user=trader, symbol="ACME", qty=D("4"), reference="order:2")
    assert shares(trader, "ACME") == {"available": D(10), "reserved": D(0)}


def test_amounts_must_be_decimal_with_at_most_four_places(trader):
    with pytest.raises(InvalidAmount):
        services.cash_reserve(user=trader, amount=1.5, reference="x")
    with pytest.raises(InvalidAmount):
        services.cash_reserve(user=trader, amount=D("0.00001"), reference="x")
    with pytest.raises(InvalidAmount):
        services.cash_reserve(user=trader, amount=D("-1"), reference="x")


def test_ledger_post_refuses_an_unbalanced_entry_before_writing(trader):
    accounts = services.cash_accounts_open(user=trader)
    with pytest.raises(UnbalancedEntry):
        services.ledger_post(kind="adjustment", reference="x", postings=[(accounts[Kind.CASH_PENDING], D(1))])


def test_trade_settle_moves_cash_shares_and_fees_and_keeps_positions(fund):
    buyer, seller = UserFactory(), UserFactory()
    fund(buyer, cash="10000")
    fund(seller, shares={"ACME": "100"}, unit_cost="80")
    services.cash_reserve(user=buyer, amount=D("1010"), reference="order:b")  # 10 @ 101 limit
    services.shares_reserve(user=seller, symbol="ACME", qty=D("10"), reference="order:s")

    services.trade_settle(buyer=buyer, seller=seller, symbol="ACME", qty=D("10"), price=D("100"),
                          buyer_fee=D("0.50"), seller_fee=D("0.40"), reference="fill:1")
    # The buyer paid 1000.50 from reserved; the 9.50 left reserved is released by the caller.
    assert cash(buyer) == {"available": D("8990"), "reserved": D("9.50"), "pending": 0}
    services.cash_release(user=buyer, amount=D("9.50"), reference="order:b")
    assert cash(seller)["available"] == D("999.60")
    assert shares(buyer, "ACME") == {"available": D(10), "reserved": D(0)}
    assert shares(seller, "ACME") == {"available": D(90), "reserved": D(0)}
    fees = [h for h in selectors.house_balances() if h["kind"] == Kind.HOUSE_FEES]
    assert fees[0]["balance"] == D("0.90")

    bought = Position.objects.get(user=buyer, symbol="ACME")
    assert (bought.qty, bought.avg_cost, bought.realized_pnl) == (D(10), D("100.05"), D(0))
    sold = Position.objects.get(user=seller, symbol="ACME")
    # 1000 - 0.40 fee - 10 x 80 average cost
    assert (sold.qty, sold.avg_cost, sold.realized_pnl) == (D(90), D(80), D("199.60"))


def test_trade_settle_with_buyer_cash_from_reserved_returns_the_surplus_in_the_same_entry(fund):
    buyer, seller = UserFactory(), UserFactory()
    fund(buyer, cash="1000")
    fund(seller, shares={"ACME": "5"})
    services.cash_reserve(user=buyer, amount=D("550"), reference="order:b")
    services.shares_reserve(user=seller, symbol="ACME", qty=D("5"), reference="order:s")
    services.trade_settle(buyer=buyer, seller=seller, symbol="ACME", qty=D("5"), price=D("100"),
                          buyer_fee=D("0"), seller_fee=D("0"), reference="fill:1", buyer_cash_from_reserved=D("550"))
    assert cash(buyer) == {"available": D("500"), "reserved": D("0"), "pending": 0}


def test_trade_settle_without_reserved_shares_is_refused_and_leaves_no_trace(fund):
    buyer, seller = UserFactory(), UserFactory()
    fund(buyer, cash="1000")
    fund(seller, shares={"ACME": "5"})
    services.cash_reserve(user=buyer, amount=D("500"), reference="order:b")
    with pytest.raises(InsufficientFunds):
        services.trade_settle(buyer=buyer, seller=seller, symbol="ACME", qty=D("5"), price=D("100"),
                              buyer_fee=D("0"), seller_fee=D("0"), reference="fill:1")
    assert not Position.objects.filter(user=buyer).exists()


def test_selling_everything_resets_average_cost_and_keeps_realized_pnl(fund):
    a, b = UserFactory(), UserFactory()
    fund(a, cash="1000", shares={"ACME": "2"}, unit_cost="50")
    fund(b, cash="1000")
    services.shares_reserve(user=a, symbol="ACME", qty=D("2"), reference="o1")
    services.cash_reserve(user=b, amount=D("120"), reference="o2")
    services.trade_settle(buyer=b, seller=a, symbol="ACME", qty=D("2"), price=D("60"), buyer_fee=D(0),
                          seller_fee=D(0), reference="fill:1")
    position = Position.objects.get(user=a, symbol="ACME")
    assert (position.qty, position.avg_cost, position.realized_pnl) == (D(0), D(0), D(20))


def test_services_nest_inside_a_callers_transaction_and_roll_back_with_it(trader, fund):
    fund(trader, cash="100")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.cash_reserve(user=trader, amount=D("40"), reference="order:1")
        raise RuntimeError("the order insert failed")
    assert cash(trader)["available"] == D("100")


# --- deposits and withdrawals ---------------------------------------------------------------------

def test_deposit_is_pending_until_settled_and_pending_cash_is_not_buying_power(
        trader, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        deposit = services.deposit_create(user=trader, amount=D("500"))
    assert deposit.status == Deposit.Status.PENDING and len(callbacks) == 1
    portfolio = selectors.portfolio_for_user(trader)
    assert (portfolio["cash_pending"], portfolio["buying_power"]) == (D("500"), D("0"))

    services.deposit_settle(deposit_id=deposit.pk)
    assert cash(trader) == {"available": D("500"), "reserved": 0, "pending": 0}
    assert services.deposit_settle(deposit_id=deposit.pk).status == Deposit.Status.SETTLED  # replay: no-op
    assert services.deposit_fail(deposit_id=deposit.pk).status == Deposit.Status.SETTLED
    assert JournalEntry.objects.filter(reference=deposit.reference).count() == 2


@pytest.mark.parametrize(("amount", "simulate"), [("100.13", None), ("100", "fail")])
def test_a_failed_deposit_reverses_the_pending_entry(
        trader, amount, simulate, celery_eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deposit = services.deposit_create(user=trader, amount=D(amount), simulate=simulate)
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.FAILED
    assert cash(trader) == {"available": 0, "reserved": 0, "pending": 0}
    kinds = list(JournalEntry.objects.filter(reference=deposit.reference).values_list("kind", flat=True))
    assert sorted(kinds) == ["deposit", "deposit_fail"]


def test_the_settle_task_settles_and_is_idempotent(trader, celery_eager, django_capture_on_commit_callbacks):
    from portfolios.tasks import deposit_settle_task

    with django_capture_on_commit_callbacks(execute=True):
        deposit = services.deposit_create(user=trader, amount=D("250"))
    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.SETTLED
    assert deposit_settle_task.apply(args=(deposit.pk,)).get() == "skipped"
    assert cash(trader)["available"] == D("250")


def test_deposit_limits(trader, settings):
    settings.DEPOSIT_MAX_AMOUNT = D("1000")
    settings.DEPOSIT_DAILY_LIMIT = D("1500")
    with pytest.raises(LimitExceeded):
        services.deposit_create(user=trader, amount=D("1000.01"))
    services.deposit_create(user=trader, amount=D("1000"))
    with pytest.raises(LimitExceeded):
        services.deposit_create(user=trader, amount=D("600"))
    services.deposit_create(user=trader, amount=D("500"))


def test_failed_deposits_do_not_count_towards_the_daily_limit(trader, settings):
    settings.DEPOSIT_DAILY_LIMIT = D("1000")
    deposit = services.deposit_create(user=trader, amount=D("1000"))
    services.deposit_fail(deposit_id=deposit.pk)
    services.deposit_create(user=trader, amount=D("1000"))


def test_withdrawal_only_from_available_cash(trader, fund):
    fund(trader, cash="300")
    services.deposit_create(user=trader, amount=D("1000"))  # pending: cannot be withdrawn
    services.cash_reserve(user=trader, amount=D("100"), reference="order:1")
    with pytest.raises(InsufficientFunds):
        services.withdrawal_create(user=trader, amount=D("200.01"))
    withdrawal = services.withdrawal_create(user=trader, amount=D("200"))
    assert withdrawal.provider_ref.startswith("sim-payout-")
    assert cash(trader) == {"available": D(0), "reserved": D(100), "pending": D(1000)}


def test_withdrawal_limits(trader, fund, settings):
    settings.WITHDRAWAL_MAX_AMOUNT = D("100")
    settings.WITHDRAWAL_DAILY_LIMIT = D("150")
    fund(trader, cash="1000")
    with pytest.raises(LimitExceeded):
        services.withdrawal_create(user=trader, amount=D("101"))
    services.withdrawal_create(user=trader, amount=D("100"))
    with pytest.raises(LimitExceeded):
        services.withdrawal_create(user=trader, amount=D("51"))


# --- adjustments and reads ------------------------------------------------------------------------

def test_adjustment_needs_a_reason_and_records_staff_and_reason(trader, staff):
    with pytest.raises(InvalidState):
        services.adjustment_post(staff_user=staff, user=trader, kind=Kind.CASH_AVAILABLE, asset="USD",
                                 amount=D("10"), reason="  ")
    entry = services.adjustment_post(staff_user=staff, user=trader, kind=Kind.CASH_AVAILABLE, asset="USD",
                                     amount=D("10"), reason="goodwill credit, ticket 42")
    assert (entry.created_by, entry.memo, entry.kind) == (staff, "goodwill credit, ticket 42", "adjustment")
    with pytest.raises(InsufficientFunds):
        services.adjustment_post(staff_user=staff, user=trader, kind=Kind.CASH_AVAILABLE, asset="USD",
                                 amount=D("-10.01"), reason="reversal")


def test_portfolio_values_positions_at_given_prices_else_average_cost(trader, fund):
    fund(trader, cash="1000", shares={"ACME": "10", "BETA": "4"}, unit_cost="50")
    services.cash_reserve(user=trader, amount=D("100"), reference="o")
    portfolio = selectors.portfolio_for_user(trader, prices={"ACME": D("55")})
    acme, beta = portfolio["positions"]
    assert (acme["market_value"], acme["unrealized_pnl"], acme["market_price_source"]) == (D(550), D(50), "market")
    assert (beta["market_value"], beta["unrealized_pnl"], beta["market_price_source"]) == (D(200), D(0), "avg_cost")
    assert portfolio["buying_power"] == D(900)
    assert portfolio["equity"] == D(900) + D(100) + D(750)

    looked_up = selectors.portfolio_for_user(trader, price_lookup=lambda symbols: {s: D("60") for s in symbols})
    assert looked_up["market_value"] == D(840)


def test_reconcile_reports_nothing_when_the_books_agree(trader, fund):
    fund(trader, cash="10", shares={"ACME": "1"})
    assert selectors.ledger_reconcile() == []
    assert all(total == 0 for total in selectors.books_balance().values())


def test_portfolio_prices_default_to_the_instruments_last_or_reference_price(trader, fund):
    from orders.models import Instrument

    Instrument.objects.create(symbol="ACME", name="Acme", reference_price=D("30"), tick_size=D("0.01"),
                              lot_size=D("1"), price_band_pct=D("0.10"), max_order_notional=D("500000"))
    fund(trader, shares={"ACME": "2"}, unit_cost="20")
    assert selectors.portfolio_for_user(trader)["positions"][0]["market_value"] == D("60")
    Instrument.objects.filter(symbol="ACME").update(last_price=D("31"))
    assert selectors.portfolio_for_user(trader)["positions"][0]["unrealized_pnl"] == D("22")


def test_demo_seed_funds_the_demo_trader_once(staff):
    import io

    from brokerx.demo_users import DEMO_STAFF_EMAIL, DEMO_TRADER_EMAIL
    from portfolios.demo import DEMO_CASH, seed_demo

    UserFactory(email=DEMO_STAFF_EMAIL, is_staff=True)
    trader = UserFactory(email=DEMO_TRADER_EMAIL)
    seed_demo(io.StringIO())
    seed_demo(io.StringIO())
    assert cash(trader)["available"] == DEMO_CASH
    assert shares(trader, "AAPL")["available"] == D("50")


def test_a_reservation_is_one_lock_and_one_insert(trader, fund, django_assert_max_num_queries):
    fund(trader, cash="100")
    with django_assert_max_num_queries(4):  # savepoint, lock both accounts, entry + postings, release
        services.cash_reserve(user=trader, amount=D("1"), reference="order:1")


def test_the_sweep_enqueues_settlement_of_overdue_pending_deposits(trader, celery_eager, settings):
    import datetime as dt

    from django.utils import timezone

    from portfolios.tasks import deposits_pending_sweep_task

    settings.DEPOSIT_SETTLE_DELAY_SECONDS = 1
    lost = services.deposit_create(user=trader, amount=D("40"))  # its on-commit enqueue never ran
    fresh = services.deposit_create(user=trader, amount=D("2"))
    Deposit.objects.filter(pk=lost.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    assert deposits_pending_sweep_task() == 1
    assert Deposit.objects.get(pk=lost.pk).status == Deposit.Status.SETTLED
    assert Deposit.objects.get(pk=fresh.pk).status == Deposit.Status.PENDING


def test_reconcile_lists_balance_and_position_drift(trader, fund):
    from django.db import connection

    fund(trader, cash="10", shares={"ACME": "3"})
    available = services.cash_accounts_open(user=trader)[Kind.CASH_AVAILABLE]
    with connection.cursor() as cursor:  # simulate damage the triggers prevent (rolled back with the test)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the pending balanced-entry checks first
        cursor.execute("ALTER TABLE portfolios_ledgeraccount DISABLE TRIGGER portfolios_ledgeraccount_guard")
        cursor.execute("UPDATE portfolios_ledgeraccount SET balance = balance + 1 WHERE id = %s", [available.pk])
        cursor.execute("ALTER TABLE portfolios_ledgeraccount ENABLE TRIGGER portfolios_ledgeraccount_guard")
    Position.objects.filter(user=trader, symbol="ACME").update(qty=D(4))

    drifts = {(d.check, d.kind, d.asset): (d.recorded, d.expected, d.difference) for d in selectors.ledger_reconcile()}
    assert drifts == {("balance", Kind.CASH_AVAILABLE, "USD"): (D(11), D(10), D(1)),
                      ("position", "position", "ACME"): (D(4), D(3), D(1))}
    # Undo the damage so the books fixture sees them agree again.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portfolios_ledgeraccount DISABLE TRIGGER portfolios_ledgeraccount_guard")
        cursor.execute("UPDATE portfolios_ledgeraccount SET balance = balance - 1 WHERE id = %s", [available.pk])
        cursor.execute("ALTER TABLE portfolios_ledgeraccount ENABLE TRIGGER portfolios_ledgeraccount_guard")
    Position.objects.filter(user=trader, symbol="ACME").update(qty=D(3))
