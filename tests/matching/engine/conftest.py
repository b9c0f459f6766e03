"""The order-book core is pure Python: its tests need no database, cache or Django settings."""

import pytest


@pytest.fixture(autouse=True)
def _clean_cache():
    """Stands in for the suite-wide cache reset, which the engine tests have no use for."""
    yield
