"""Periodic job of the market simulator: its tick (beat, when BROKERX_SIMULATOR is on)."""
from celery import shared_task
from django.conf import settings

from .services import simulator_run_once


@shared_task(name="simulator.tick", ignore_result=True)
def simulator_tick() -> int:
    """Runs on the `default` queue: the simulator is a client of matching, not part of it."""
    if not settings.BROKERX_SIMULATOR:
        return 0
    report = simulator_run_once()
    return 0 if report is None else report.symbols
