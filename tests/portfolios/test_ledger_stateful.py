"""Hypothesis drives random deposits, withdrawals, reservations, releases and trades; the books hold at every step."""
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from portfolios import selectors, services
from portfolios.errors import InsufficientFunds
from portfolios.models import Deposit, LedgerAccount, Position
from tests.factories import UserFactory

from .helpers import assert_books_balanced

D = Decimal
SYMBOL = "ACME"
users = st.integers(min_value=0, max_value=2)
cents = st.integers(min_value=1, max_value=500_00).map(lambda c: D(c) / 100)
quantities = st.integers(min_value=1, max_value=50).map(D)
prices = st.integers(min_value=1_00, max_value=200_00).map(lambda c: D(c) / 100)
SETTLED = Counter()  # successful steps per rule, to show the run exercised them
fees = st.integers(min_value=0, max_value=500).map(lambda c: D(c) / 100)


class LedgerMachine(RuleBasedStateMachine):
    """A model of every client's cash and shares, checked against the ledger after every step."""

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()  # each example runs in a savepoint rolled back by teardown
        self.staff = UserFactory(is_staff=True)
        self.users = [UserFactory() for _ in range(3)]
        self.model = [{"available": D(0), "reserved": D(0), "pending": D(0), "shares": D(0),
                       "shares_reserved": D(0)} for _ in self.users]
        self.pending: list[tuple[int, int, Decimal]] = []
        for user, m in zip(self.users, self.model, strict=True):  # a start that lets orders trade early
            services.adjustment_post(staff_user=self.staff, user=user, kind=LedgerAccount.Kind.CASH_AVAILABLE,
                                     asset="USD", amount=D(5000), reason="opening balance")
            services.adjustment_post(staff_user=self.staff, user=user, asset=SYMBOL, amount=D(100),
                                     kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, reason="opening", unit_cost=D(10))
            m["available"], m["shares"] = D(5000), D(100)

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _expect(self, ok: bool, call) -> bool:
        if ok:
            call()
            return True
        with pytest.raises(InsufficientFunds):
            call()
        return False

    @rule(u=users, amount=cents)
    def deposit(self, u, amount):
        deposit = services.deposit_create(user=self.users[u], amount=amount)
        self.model[u]["pending"] += amount
        self.pending.append((deposit.pk, u, amount))

    @precondition(lambda self: self.pending)
    @rule(index=st.integers(min_value=0), settle=st.booleans())
    def resolve_deposit(self, index, settle):
        deposit_id, u, amount = self.pending.pop(index % len(self.pending))
        self.model[u]["pending"] -= amount
        if settle:
            assert services.deposit_settle(deposit_id=deposit_id).status == Deposit.Status.SETTLED
            self.model[u]["available"] += amount
        else:
            assert services.deposit_fail(deposit_id=deposit_id).status == Deposit.Status.FAILED

    @rule(u=users, amount=cents)
    def withdraw(self, u, amount):
        m = self.model[u]
        if self._expect(m["available"] >= amount,
                        lambda: services.withdrawal_create(user=self.users[u], amount=amount)):
            m["available"] -= amount

    @rule(u=users, amount=cents)
    def reserve_cash(self, u, amount):
        m = self.model[u]
        if self._expect(m["available"] >= amount,
                        lambda: services.cash_reserve(user=self.users[u], amount=amount, reference="order")):
            m["available"] -= amount
            m["reserved"] += amount

    @rule(u=users, amount=cents)
    def release_cash(self, u, amount):
        m = self.model[u]
        if self._expect(m["reserved"] >= amount,
                        lambda: services.cash_release(user=self.users[u], amount=amount, reference="order")):
            m["reserved"] -= amount
            m["available"] += amount

    @rule(u=users, qty=quantities, unit_cost=prices)
    def grant_shares(self, u, qty, unit_cost):
        services.adjustment_post(staff_user=self.staff, user=self.users[u], asset=SYMBOL, amount=qty,
                                 kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, reason="test grant", unit_cost=unit_cost)
        self.model[u]["shares"] += qty

    @rule(u=users, qty=quantities)
    def reserve_shares(self, u, qty):
        m = self.model[u]
        if self._expect(m["shares"] >= qty, lambda: services.shares_reserve(
                user=self.users[u], symbol=SYMBOL, qty=qty, reference="order")):
            m["shares"] -= qty
            m["shares_reserved"] += qty

    @rule(u=users, qty=quantities)
    def release_shares(self, u, qty):
        m = self.model[u]
        if self._expect(m["shares_reserved"] >= qty, lambda: services.shares_release(
                user=self.users[u], symbol=SYMBOL, qty=qty, reference="order")):
            m["shares_reserved"] -= qty
            m["shares"] += qty

    @rule(b=users, s=users, qty=st.integers(min_value=1, max_value=5).map(D), price=prices.map(lambda p: p / 4),
          buyer_fee=fees, seller_fee=fees)
    def trade(self, b, s, qty, price, buyer_fee, seller_fee):
        if b == s:
            return
        buyer, seller = self.model[b], self.model[s]
        cost = services.trade_notional(qty=qty, price=price) + buyer_fee
        proceeds = services.trade_notional(qty=qty, price=price) - seller_fee
        ok = buyer["reserved"] >= cost and seller["shares_reserved"] >= qty and proceeds + seller["available"] >= 0
        if self._expect(ok, lambda: services.trade_settle(
                buyer=self.users[b], seller=self.users[s], symbol=SYMBOL, qty=qty, price=price,
                buyer_fee=buyer_fee, seller_fee=seller_fee, reference="fill")):
            SETTLED["trade"] += 1
            buyer["reserved"] -= cost
            buyer["shares"] += qty
            seller["shares_reserved"] -= qty
            seller["available"] += proceeds

    @rule(b=users, s=users, qty=st.integers(min_value=1, max_value=5).map(D), limit=prices, improvement=fees)
    def order_flow(self, b, s, qty, limit, improvement):
        """As the orders context does it: reserve at the limit, fill at a better price, release the surplus."""
        if b == s or improvement >= limit:
            return
        buyer, seller = self.model[b], self.model[s]
        hold = services.trade_notional(qty=qty, price=limit)
        if buyer["available"] < hold or seller["shares"] < qty:
            return
        services.cash_reserve(user=self.users[b], amount=hold, reference="order:b")
        services.shares_reserve(user=self.users[s], symbol=SYMBOL, qty=qty, reference="order:s")
        price = limit - improvement
        notional = services.trade_notional(qty=qty, price=price)
        services.trade_settle(buyer=self.users[b], seller=self.users[s], symbol=SYMBOL, qty=qty, price=price,
                              buyer_fee=D(0), seller_fee=D(0), reference="fill")
        if hold > notional:
            services.cash_release(user=self.users[b], amount=hold - notional, reference="order:b")
        buyer["available"] -= notional
        buyer["shares"] += qty
        seller["shares"] -= qty
        seller["available"] += notional
        SETTLED["order_flow"] += 1

    @invariant()
    def books_balance_and_match_the_model(self):
        with connection.cursor() as cursor:
            # Run the deferred balanced-entry checks now rather than at a commit that never comes.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        assert_books_balanced()
        for user, m in zip(self.users, self.model, strict=True):
            balances = selectors.balances_for_user(user)
            held = balances["securities"].get(SYMBOL, {"available": D(0), "reserved": D(0)})
            assert (balances["cash_available"], balances["cash_reserved"], balances["cash_pending"]) == (
                m["available"], m["reserved"], m["pending"])
            assert (held["available"], held["reserved"]) == (m["shares"], m["shares_reserved"])
            position = Position.objects.filter(user=user, symbol=SYMBOL).first()
            assert (position.qty if position else D(0)) == m["shares"] + m["shares_reserved"]


@pytest.mark.slow
def test_random_ledger_histories_keep_the_books(db, settings):
    settings.DEPOSIT_MIN_AMOUNT = D("0.01")
    settings.DEPOSIT_DAILY_LIMIT = D("100000000")
    settings.WITHDRAWAL_DAILY_LIMIT = D("100000000")
    SETTLED.clear()
    run_state_machine_as_test(LedgerMachine, settings=hypothesis_settings(
        max_examples=15, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]))
    assert SETTLED["trade"] + SETTLED["order_flow"] > 0
