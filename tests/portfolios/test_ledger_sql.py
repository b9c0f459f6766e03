"""Postgres itself keeps the ledger's invariants, whatever SQL writes to it."""
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from portfolios.models import JournalEntry, LedgerAccount, Posting
from portfolios.services import cash_accounts_open, house_account, ledger_post

from .helpers import assert_books_balanced

pytestmark = pytest.mark.django_db(transaction=True)
Kind = LedgerAccount.Kind


@pytest.fixture
def funded(trader, fund):
    fund(trader, cash="100")
    return cash_accounts_open(user=trader)


INSERT = "INSERT INTO portfolios_posting (entry_id, account_id, amount) VALUES "


def _sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_update_of_a_posting_is_refused(funded):
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("UPDATE portfolios_posting SET amount = amount * 2")
    assert_books_balanced()


def test_delete_of_a_posting_or_entry_is_refused(funded):
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("DELETE FROM portfolios_posting")
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("DELETE FROM portfolios_journalentry")
    with pytest.raises(IntegrityError, match="append-only"):
        _sql("UPDATE portfolios_journalentry SET memo = 'changed'")
    assert Posting.objects.count() == 2


def test_an_unbalanced_entry_cannot_be_committed(funded):
    available = funded[Kind.CASH_AVAILABLE]
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        entry = JournalEntry.objects.create(kind="adjustment", reference="raw")
        _sql(INSERT + "(%s, %s, 5)", [entry.pk, available.pk])
    assert LedgerAccount.objects.get(pk=available.pk).balance == Decimal("100")
    assert_books_balanced()


def test_a_balanced_entry_written_in_several_statements_commits(funded, trader):
    available, reserved = funded[Kind.CASH_AVAILABLE], funded[Kind.CASH_RESERVED]
    with transaction.atomic():
        entry = JournalEntry.objects.create(kind="cash_reserve", reference="raw")
        _sql(INSERT + "(%s, %s, -30)", [entry.pk, available.pk])
        _sql(INSERT + "(%s, %s, 30)", [entry.pk, reserved.pk])
    assert LedgerAccount.objects.get(pk=reserved.pk).balance == Decimal("30")
    assert_books_balanced()


def test_postings_cannot_be_added_to_an_entry_of_another_transaction(funded):
    entry = JournalEntry.objects.filter(kind="adjustment").get()
    with pytest.raises(IntegrityError, match="transaction that created it"), transaction.atomic():
        _sql(INSERT + "(%s, %s, 1), (%s, %s, -1)",
             [entry.pk, funded[Kind.CASH_RESERVED].pk, entry.pk, funded[Kind.CASH_AVAILABLE].pk])
    assert_books_balanced()


def test_an_entry_may_be_written_inside_savepoints(funded):
    available, reserved = funded[Kind.CASH_AVAILABLE], funded[Kind.CASH_RESERVED]
    with transaction.atomic():
        with transaction.atomic():
            entry = JournalEntry.objects.create(kind="cash_reserve", reference="raw")
        with transaction.atomic():
            _sql(INSERT + "(%s, %s, -5)", [entry.pk, available.pk])
        _sql(INSERT + "(%s, %s, 5)", [entry.pk, reserved.pk])
    assert LedgerAccount.objects.get(pk=reserved.pk).balance == Decimal("5")
    assert_books_balanced()


def test_a_negative_available_balance_cannot_be_committed(funded):
    available = funded[Kind.CASH_AVAILABLE]
    gateway = house_account(kind=Kind.HOUSE_GATEWAY, asset="USD")
    with pytest.raises(IntegrityError, match="balance_nonnegative"), transaction.atomic():
        entry = JournalEntry.objects.create(kind="withdrawal", reference="raw")
        _sql(INSERT + "(%s, %s, -100.01), (%s, %s, 100.01)",
             [entry.pk, available.pk, entry.pk, gateway.pk])
    assert LedgerAccount.objects.get(pk=available.pk).balance == Decimal("100")
    assert_books_balanced()


def test_a_balance_changes_only_through_postings(funded):
    with pytest.raises(IntegrityError, match="only through postings"):
        _sql("UPDATE portfolios_ledgeraccount SET balance = balance + 1000 WHERE owner_id IS NOT NULL")
    with pytest.raises(IntegrityError, match="never deleted"):
        _sql("DELETE FROM portfolios_ledgeraccount")


def test_house_accounts_may_go_negative_and_keep_no_balance_row(funded):
    gateway = house_account(kind=Kind.HOUSE_GATEWAY, asset="USD")
    ledger_post(kind="deposit", reference="t", postings=[(gateway, Decimal("-5")), (funded[Kind.CASH_PENDING], 5)])
    gateway.refresh_from_db()
    assert gateway.balance is None and gateway.may_go_negative


def test_accounts_open_is_idempotent(trader):
    first = cash_accounts_open(user=trader)
    second = cash_accounts_open(user=trader)
    assert {k: a.pk for k, a in first.items()} == {k: a.pk for k, a in second.items()}
    assert set(first) == {Kind.CASH_AVAILABLE, Kind.CASH_RESERVED, Kind.CASH_PENDING}
    assert house_account(kind=Kind.HOUSE_FEES, asset="USD").pk == house_account(kind=Kind.HOUSE_FEES, asset="USD").pk


def test_an_entry_without_postings_cannot_be_committed(trader):
    with pytest.raises(IntegrityError, match="has no postings"), transaction.atomic():
        JournalEntry.objects.create(kind="adjustment", reference="empty")


def test_a_bad_entry_among_many_in_one_transaction_is_found(funded):
    """The check reads the transaction's entries together at commit: a bad one in the middle is still caught."""
    available, reserved = funded[Kind.CASH_AVAILABLE], funded[Kind.CASH_RESERVED]
    for bad in ("unbalanced", "empty"):
        with pytest.raises(IntegrityError) as caught, transaction.atomic():
            entries = [JournalEntry.objects.create(kind="cash_reserve", reference=f"raw-{n}") for n in range(5)]
            for n, entry in enumerate(entries):
                if n == 3 and bad == "empty":
                    continue
                _sql(INSERT + "(%s, %s, -1), (%s, %s, %s)",
                     [entry.pk, available.pk, entry.pk, reserved.pk, 2 if n == 3 else 1])
        message = "does not balance" if bad == "unbalanced" else "has no postings"
        assert message in str(caught.value) and f"entry {entries[3].pk} " in str(caught.value)
    assert LedgerAccount.objects.get(pk=reserved.pk).balance == Decimal("0")
    assert_books_balanced()


def test_entries_checked_immediately_do_not_excuse_later_ones(funded):
    """After SET CONSTRAINTS IMMEDIATE has checked the entries so far, later entries are still checked."""
    available, reserved = funded[Kind.CASH_AVAILABLE], funded[Kind.CASH_RESERVED]
    pair = ("WITH e AS (INSERT INTO portfolios_journalentry (kind, reference, memo, created_at) "
            "VALUES ('cash_reserve', 'raw', '', now()) RETURNING id) "
            "INSERT INTO portfolios_posting (entry_id, account_id, amount) "
            "SELECT id, %s, -1 FROM e UNION ALL SELECT id, %s, %s FROM e")
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        _sql(pair, [available.pk, reserved.pk, 1])
        _sql("SET CONSTRAINTS portfolios_entry_balanced IMMEDIATE")
        _sql(pair, [available.pk, reserved.pk, 1])
        _sql(pair, [available.pk, reserved.pk, 3])  # checked at the end of this statement
    with transaction.atomic():
        _sql("SET CONSTRAINTS portfolios_entry_balanced IMMEDIATE")
        _sql(pair, [available.pk, reserved.pk, 1])
        _sql(pair, [available.pk, reserved.pk, 1])
    assert LedgerAccount.objects.get(pk=reserved.pk).balance == Decimal("2")
    assert_books_balanced()
