"""Deposit settlement through a real Celery worker on the `default` queue, after the provider's delay."""
import pytest
from rest_framework.test import APIClient

from portfolios.models import Deposit
from tests.factories import UserFactory
from tests.polling import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
def test_deposits_settle_or_fail_in_the_worker(celery_worker_default, settings, assert_books_balanced):
    settings.DEPOSIT_SETTLE_DELAY_SECONDS = 0.3
    client = APIClient()
    client.force_authenticate(UserFactory())
    ok = client.post("/api/v1/deposits", {"amount": "250.00"}, format="json", HTTP_IDEMPOTENCY_KEY="a").json()
    declined = client.post("/api/v1/deposits", {"amount": "10.00", "simulate": "fail"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="b").json()
    assert ok["status"] == declined["status"] == "pending"

    assert wait_until(lambda: not Deposit.objects.filter(status=Deposit.Status.PENDING).exists(), interval=0.1)
    assert client.get(f"/api/v1/deposits/{ok['id']}").json()["status"] == "settled"
    assert client.get(f"/api/v1/deposits/{declined['id']}").json()["status"] == "failed"
    portfolio = client.get("/api/v1/portfolio").json()
    assert (portfolio["cash"], portfolio["cash_pending"]) == ("250.0000", "0.0000")
    assert_books_balanced()
