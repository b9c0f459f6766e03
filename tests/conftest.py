"""Fixtures shared by every test: real Postgres (pytest-django) and the real Redis named by REDIS_URL."""
import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clean_cache():
    """Each test starts with an empty cache (this suite's own key prefix only)."""
    cache.clear()
    yield


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
