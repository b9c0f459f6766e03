"""App config for the project package, so its templates, commands and checks are discovered."""
from django.apps import AppConfig


class BrokerxConfig(AppConfig):
    name = "brokerx"
    verbose_name = "BrokerX platform"

    def ready(self) -> None:
        from . import metrics  # noqa: F401  (registers the Celery queue-depth collector for /metrics)
