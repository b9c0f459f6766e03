"""The Celery application: queues critical/default/low, task routes and settings come from Django settings."""
import os

from celery import Celery
from celery.signals import task_postrun, worker_init, worker_process_init
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")

app = Celery("brokerx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from . import metrics, observability  # noqa: E402
from .gc_tuning import gc_tune  # noqa: E402

observability.connect_celery_signals()
# BROKERX_WORKER_METRICS_PORT: the worker serves its pool's counters (multiprocess files); pool processes that
# exit mark themselves dead for prometheus_client.
metrics.connect_celery_signals()


@task_postrun.connect(weak=False)
def _drop_unusable_connections(task=None, **kwargs) -> None:
    """Connections live across tasks (CELERY_DB_REUSE_MAX): drop one that errored or is too old, as Django does
    at the end of a request. Not for eager tasks, which run inside their caller's transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


@worker_init.connect(weak=False)
@worker_process_init.connect(weak=False)
def _tune_gc(**kwargs) -> None:
    """Freeze the start-up heap (in the parent before it forks the pool, and in each pool process) and collect
    the young generation less often (brokerx.gc_tuning)."""
    gc_tune()
