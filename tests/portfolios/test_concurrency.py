"""Races for real: threads with their own database connections, released together by a barrier."""
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from portfolios import selectors, services
from portfolios.errors import InsufficientFunds
from portfolios.models import Deposit, JournalEntry
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("books", "celery_eager")]
D = Decimal


def run_together(n: int, work):
    """Run work(i) in n threads started at the same instant; each closes its own connection."""
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_fifty_concurrent_deposits_with_one_key_make_exactly_one_entry():
    user = UserFactory()

    def post(_i):
        client = APIClient()
        client.force_authenticate(user)
        response = client.post("/api/v1/deposits", {"amount": "100.00"}, format="json",
                               HTTP_IDEMPOTENCY_KEY="same-key")
        return response.status_code, response.headers.get("Idempotent-Replayed"), response.json()

    results = run_together(50, post)

    outcomes = Counter((status, replayed) for status, replayed, _ in results)
    assert outcomes[(201, None)] == 1, outcomes
    assert outcomes[(201, "true")] + outcomes[(409, None)] == 49, outcomes
    assert all(body["code"] == "idempotency_in_flight" for status, _, body in results if status == 409)
    created = {body["id"] for status, _, body in results if status == 201}
    assert len(created) == 1
    assert Deposit.objects.count() == 1
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert selectors.balances_for_user(user)["cash_available"] == D("100")  # settled once (tasks run inline)


def test_two_concurrent_withdrawals_exceeding_the_balance_one_succeeds(fund):
    user = UserFactory()
    fund(user, cash="100")

    def withdraw(i):
        client = APIClient()
        client.force_authenticate(user)
        response = client.post("/api/v1/withdrawals", {"amount": "60"}, format="json", HTTP_IDEMPOTENCY_KEY=f"w{i}")
        return response.status_code, response.json().get("code")

    results = sorted(run_together(2, withdraw))
    assert results == [(201, None), (422, "insufficient_funds")]
    assert selectors.balances_for_user(user)["cash_available"] == D("40")


def test_concurrent_reservations_never_overdraw(fund):
    user = UserFactory()
    fund(user, cash="100")

    def reserve(i):
        try:
            services.cash_reserve(user=user, amount=D("30"), reference=f"order:{i}")
            return "ok"
        except InsufficientFunds:
            return "refused"

    assert Counter(run_together(8, reserve)) == {"ok": 3, "refused": 5}
    assert selectors.balances_for_user(user)["cash_reserved"] == D("90")


def test_crossing_trades_between_two_clients_do_not_deadlock(fund):
    alice, bob = UserFactory(), UserFactory()
    fund(alice, cash="100000", shares={"ACME": "1000"}, unit_cost="10")
    fund(bob, cash="100000", shares={"ACME": "1000"}, unit_cost="10")
    for user in (alice, bob):
        services.cash_reserve(user=user, amount=D("20000"), reference="order:buy")
        services.shares_reserve(user=user, symbol="ACME", qty=D("1000"), reference="order:sell")

    def settle(i):
        buyer, seller = (alice, bob) if i % 2 else (bob, alice)
        for n in range(10):
            services.trade_settle(buyer=buyer, seller=seller, symbol="ACME", qty=D("1"), price=D("10"),
                                  buyer_fee=D("0.01"), seller_fee=D("0.01"), reference=f"fill:{i}:{n}")
        return "ok"

    assert run_together(6, settle) == ["ok"] * 6
    assert JournalEntry.objects.filter(kind="trade").count() == 60


def test_raw_sql_writers_that_take_no_locks_first_do_not_deadlock(fund):
    """SQL written elsewhere (batch settlement, order functions) may insert postings in any order without
    locking first: the posting trigger's key-compatible locks in primary-key order keep them deadlock-free."""
    alice, bob = UserFactory(), UserFactory()
    fund(alice, cash="1000")
    fund(bob, cash="1000")
    a = services.cash_accounts_open(user=alice)["cash_available"].pk
    b = services.cash_accounts_open(user=bob)["cash_available"].pk

    def transfer(i):
        source, target = (a, b) if i % 2 else (b, a)
        for _ in range(40):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO portfolios_journalentry (kind, reference, memo, created_at) "
                               "VALUES ('adjustment', 'raw', '', now()) RETURNING id")
                entry = cursor.fetchone()[0]
                # The FK checks of a long statement take key-share locks on both accounts, in this writer's order,
                # well before the statement's trigger moves the balances.
                cursor.execute("INSERT INTO portfolios_posting (entry_id, account_id, amount) "
                               "SELECT %s, CASE WHEN n %% 2 = 0 THEN %s ELSE %s END, "
                               "       CASE WHEN n %% 2 = 0 THEN -0.01 ELSE 0.01 END "
                               "FROM generate_series(0, 399) AS n", [entry, source, target])
        return "ok"

    assert run_together(4, transfer) == ["ok"] * 4
    assert selectors.balances_for_user(alice)["cash_available"] == D("1000")


def test_batch_settlement_looks_up_accounts_without_waiting_for_an_order_in_flight(fund):
    """A trader's order in flight holds its accounts until commit; the matching worker's settlement of other
    orders of that trader must not queue behind it just to learn the accounts' ids."""
    from portfolios.settlement import _open_and_lookup

    alice = UserFactory()
    fund(alice, cash="1000")
    currency = services.ledger_currency()
    reserved, release = threading.Event(), threading.Event()

    def order_in_flight():
        try:
            with transaction.atomic():
                services.cash_reserve(user=alice, amount=D("10"), reference="order:in-flight")
                reserved.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=order_in_flight)
    thread.start()
    try:
        assert reserved.wait(timeout=30)
        keys = {(alice.pk, "cash_available", currency), (alice.pk, "cash_reserved", currency)}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")
            accounts = _open_and_lookup(keys)  # before: waited for the reservation's commit (lock timeout)
        assert set(accounts) == keys
    finally:
        release.set()
        thread.join()
    assert selectors.balances_for_user(alice)["cash_reserved"] == D("10")
