"""Fixtures shared by every test: real Postgres (pytest-django) and the real Redis named by REDIS_URL."""
import pytest
from django.core.cache import cache

pytest_plugins = ["tests.trading_fixtures"]


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache: only this suite's prefixed keys, never the broker's queues."""
    cache.delete_pattern("*")
    # A Redis channel layer receives on one event loop only; each test (and live server) may bring its own.
    from tests.live_server import reset_channel_layers

    reset_channel_layers()
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def celery_worker_default(transactional_db):
    """A real Celery worker (threads, real Redis broker) consuming the `default` queue during the test."""
    from celery.contrib.testing.worker import start_worker

    from brokerx.celery import app

    with start_worker(app, pool="threads", concurrency=2, queues=["default"], perform_ping_check=False,
                      shutdown_timeout=10, loglevel="WARNING") as worker:
        yield worker


@pytest.fixture
def assert_books_balanced():
    """The ledger check any test that moves money can call: every asset's postings sum to zero, maintained
    balances and positions agree with the postings, no client balance is negative."""
    from tests.portfolios.helpers import assert_books_balanced as check

    return check
