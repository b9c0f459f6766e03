"""Fixtures of the portfolios tests: traders, staff, funding through a manual adjustment, Celery run inline."""
from decimal import Decimal

import pytest

from brokerx.celery import app as celery_app
from portfolios.models import LedgerAccount
from portfolios.services import adjustment_post
from tests.factories import UserFactory

from .helpers import assert_books_balanced


@pytest.fixture
def trader(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, email="desk@brokerx.example")


@pytest.fixture
def fund(staff):
    """fund(user, cash="1000", shares={"ACME": "10"}, unit_cost="90"): credit through a staff adjustment."""

    def fund(user, *, cash: str = "0", shares: dict[str, str] | None = None, unit_cost: str = "0"):
        if Decimal(cash):
            adjustment_post(staff_user=staff, user=user, kind=LedgerAccount.Kind.CASH_AVAILABLE, asset="USD",
                            amount=Decimal(cash), reason="test funding")
        for symbol, qty in (shares or {}).items():
            adjustment_post(staff_user=staff, user=user, kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, asset=symbol,
                            amount=Decimal(qty), reason="test funding", unit_cost=Decimal(unit_cost))

    return fund


@pytest.fixture
def books(db):
    """Asserts the books balance after the test."""
    yield
    assert_books_balanced()


@pytest.fixture
def celery_eager(monkeypatch):
    """Run tasks inline (the settle delay is not waited for): enqueued after commit, executed at once.

    Outbox kicks are dropped meanwhile: settling a deposit emits an event, and an eager drain would run in the
    kicker's background thread, on a connection of its own, racing the test (the notification tests drain it).
    """
    from outbox import services as outbox_services

    monkeypatch.setattr(outbox_services._kicker, "request", lambda queue, partition_key: None)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
