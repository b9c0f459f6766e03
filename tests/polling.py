"""Waiting for what another process or thread does (a Celery worker, a live server): poll until true or timed out."""
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """True as soon as `predicate()` is; False when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
