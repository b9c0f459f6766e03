"""Trading fixtures shared by the order, matching and API suites: instruments, funded traders, invariants."""
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from brokerx.invariants import invariants_check
from matching.services import book_forget
from orders.models import Instrument
from orders.selectors import instrument_cache_invalidate
from outbox.services import outbox_drain
from portfolios.models import LedgerAccount
from portfolios.services import adjustment_post
from tests.portfolios.helpers import assert_books_balanced as ledger_books_balanced


@pytest.fixture
def instrument(db):
    inst = Instrument.objects.create(symbol="ACME", name="Acme Corp", reference_price=Decimal("100.00"),
                                     tick_size=Decimal("0.01"), lot_size=Decimal("1"),
                                     price_band_pct=Decimal("0.10"), max_order_notional=Decimal("500000"))
    instrument_cache_invalidate("ACME")
    yield inst
    instrument_cache_invalidate("ACME")


@pytest.fixture
def staff(db):
    from accounts.models import User

    return User.objects.create_user(email="desk@brokerx.example", password="x-Staff-pass-1", is_staff=True,
                                    email_verified_at=timezone.now())


_counter = iter(range(10**6))


@pytest.fixture
def make_trader(db, staff):
    from accounts.models import User

    def make(*, cash: str = "0", shares: dict[str, str] | None = None, verified: bool = True):
        user = User.objects.create_user(email=f"trader{next(_counter)}@brokerx.example", password="x-Trader-pass-1",
                                        email_verified_at=timezone.now() if verified else None)
        if Decimal(cash):
            adjustment_post(staff_user=staff, user=user, kind=LedgerAccount.Kind.CASH_AVAILABLE, asset="USD",
                            amount=Decimal(cash), reason="test funding")
        for symbol, qty in (shares or {}).items():
            adjustment_post(staff_user=staff, user=user, kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, asset=symbol,
                            amount=Decimal(qty), reason="test funding", unit_cost=Decimal("90"))
        return user

    return make


def balance(user, kind: str, asset: str = "USD") -> Decimal:
    account = LedgerAccount.objects.filter(owner=user, kind=kind, asset=asset).first()
    return account.balance if account else Decimal("0")


def assert_books_balanced() -> None:
    """The ledger's checks (balanced, no drift, nothing negative), plus every platform invariant
    (brokerx.invariants: reservations equal open-order holds, quantities, fills, sagas, outbox)."""
    ledger_books_balanced()
    violations = [str(v) for v in invariants_check()]
    assert violations == [], "invariants drifted:\n" + "\n".join(violations)


@pytest.fixture
def books():
    yield
    assert_books_balanced()


_after_commit = None  # the running test's django_capture_on_commit_callbacks, for the module-level helpers below


@pytest.fixture
def fresh_books(django_capture_on_commit_callbacks):
    """Matching books forgotten before and after the test; enables `committed()` and `match()`."""
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    book_forget()
    yield
    book_forget()
    _after_commit = None


@pytest.fixture
async def fresh_books_async():
    """For async tests: matching books forgotten before and after; then the connection of sync_to_async's thread is
    closed, so the test database can be flushed and dropped."""
    book_forget()
    yield
    book_forget()
    await sync_to_async(connections.close_all, thread_sensitive=True)()


def committed():
    """A block whose on_commit work (kicks, pushes) runs at its end, as a real commit would run it."""
    return _after_commit(execute=True)


def match(symbol: str = "ACME") -> int:
    """One matching drain of `symbol` with its after-commit work; returns how many events it claimed."""
    with committed():
        return outbox_drain(queue="critical", partition_key=symbol)

