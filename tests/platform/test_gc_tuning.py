"""Server processes freeze their start-up heap and collect the young generation less often (brokerx.gc_tuning)."""
import gc

import pytest

from brokerx.gc_tuning import DEFAULT_GEN0, gc_tune


@pytest.fixture
def gc_state():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_gc_tune_freezes_the_heap_and_raises_the_young_threshold(gc_state, monkeypatch):
    monkeypatch.setenv("BROKERX_GC_GEN0", "12345")
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    survivor = [object()]  # something alive before the freeze

    assert gc_tune() is True

    assert gc.get_threshold() == (12345, 20, 20)
    assert gc.get_freeze_count() > 0
    assert not any(survivor is o for o in gc.get_objects(generation=2)), "frozen objects are not scanned"


def test_gc_tune_zero_leaves_python_defaults(gc_state, monkeypatch):
    monkeypatch.setenv("BROKERX_GC_GEN0", "0")
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)

    assert gc_tune() is False

    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_web_entry_point_tunes_its_process(gc_state, monkeypatch):
    monkeypatch.delenv("BROKERX_GC_GEN0", raising=False)
    import importlib

    import brokerx.asgi

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    importlib.reload(brokerx.asgi)
    assert gc.get_threshold()[0] == DEFAULT_GEN0


def test_celery_processes_tune_on_start(gc_state, monkeypatch):
    from celery.signals import worker_init, worker_process_init

    from brokerx.celery import _tune_gc

    monkeypatch.delenv("BROKERX_GC_GEN0", raising=False)
    for signal in (worker_init, worker_process_init):
        # Connected strongly (weak=False): the stored receiver is the function itself.
        assert any(receiver is _tune_gc for _key, receiver in signal.receivers), signal.name
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    _tune_gc()
    assert gc.get_threshold()[0] == DEFAULT_GEN0
