"""The Celery application: queues critical/default/low, task routes and settings come from Django settings."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")

app = Celery("brokerx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from . import observability  # noqa: E402

observability.connect_celery_signals()
