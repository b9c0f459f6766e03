"""Periodic jobs of the matching context: the market simulator's tick (beat, when BROKERX_SIMULATOR is on)."""
from celery import shared_task
from django.conf import settings


@shared_task(name="matching.simulator_tick", ignore_result=True)
def simulator_tick() -> int:
    """Runs on the `default` queue (see the beat entry): the simulator is a client of matching, not part of it."""
    if not settings.BROKERX_SIMULATOR:
        return 0
    from .simulator import simulator_run_once

    report = simulator_run_once()
    return 0 if report is None else report.symbols
