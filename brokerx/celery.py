"""The Celery application: queues critical/default/low, task routes and settings come from Django settings."""
import os
import random

from celery import Celery, Task
from celery.signals import task_postrun, worker_init, worker_process_init
from django.conf import settings
from django.db import close_old_connections, connections

from .faults import DATABASE_FAULTS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")


class BrokerXTask(Task):
    """Every task: one that meets a database fault (its connection killed, Postgres restarting, a deadlock) drops
    its connections and runs again a few seconds later, up to CELERY_DB_FAULT_RETRIES times, instead of failing.
    Safe because every task is idempotent (the database, not the message, says what is done; ADR 006)."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except DATABASE_FAULTS as exc:
            if self.request.is_eager or self.request.called_directly:
                raise  # inside the caller's transaction: the caller decides
            for connection in connections.all(initialized_only=True):
                connection.close()  # a broken pooled connection goes back to be discarded
            retries = self.request.retries
            countdown = min(0.5 * 2 ** retries, 8.0) * random.uniform(0.5, 1.0)  # noqa: S311  (jitter)
            raise self.retry(exc=exc, countdown=countdown, max_retries=settings.CELERY_DB_FAULT_RETRIES) from exc


app = Celery("brokerx", task_cls=BrokerXTask)
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
