"""Fixtures shared by every test: real Postgres (pytest-django) and the real Redis named by REDIS_URL."""
import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache: only this suite's prefixed keys, never the broker's queues."""
    cache.delete_pattern("*")
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
