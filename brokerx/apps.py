"""App config for the project package, so its templates, commands and checks are discovered."""
from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BrokerxConfig(AppConfig):
    name = "brokerx"
    verbose_name = "BrokerX platform"

    def ready(self) -> None:
        from . import metrics  # noqa: F401  (registers the Celery queue-depth collector for /metrics)
        from .database_code import apply_after_migrate

        # Sent once per app after every migrate: this sender makes it once per run (ADR 008).
        post_migrate.connect(apply_after_migrate, sender=self, dispatch_uid="brokerx.database_code")
