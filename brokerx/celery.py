"""The Celery application: queues critical/default/low, task routes and settings come from Django settings."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")

app = Celery("brokerx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from . import metrics, observability  # noqa: E402

observability.connect_celery_signals()
# BROKERX_WORKER_METRICS_PORT: the worker serves its pool's counters (multiprocess files); pool processes that
# exit mark themselves dead for prometheus_client.
metrics.connect_celery_signals()
