"""Deposit settlement through a real Celery worker on the `default` queue, after the provider's delay."""
import time

import pytest
from rest_framework.test import APIClient

from portfolios.models import Deposit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_deposits_settle_or_fail_in_the_worker(celery_worker_default, settings, assert_books_balanced):
    settings.DEPOSIT_SETTLE_DELAY_SECONDS = 0.3
    client = APIClient()
    client.force_authenticate(UserFactory())
    ok = client.post("/api/v1/deposits", {"amount": "250.00"}, format="json", HTTP_IDEMPOTENCY_KEY="a").json()
    declined = client.post("/api/v1/deposits", {"amount": "10.00", "simulate": "fail"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="b").json()
    assert ok["status"] == declined["status"] == "pending"

    assert _wait_for(lambda: not Deposit.objects.filter(status=Deposit.Status.PENDING).exists())
    assert client.get(f"/api/v1/deposits/{ok['id']}").json()["status"] == "settled"
    assert client.get(f"/api/v1/deposits/{declined['id']}").json()["status"] == "failed"
    portfolio = client.get("/api/v1/portfolio").json()
    assert (portfolio["cash"], portfolio["cash_pending"]) == ("250.0000", "0.0000")
    assert_books_balanced()
