from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        # Imported once the apps are ready, as they import models: the metrics collector registers itself; the tasks
        # register in every process (web included), so the kicker's enqueue by name finds the drain and eager mode
        # runs it inline.
        from . import metrics, tasks  # noqa: F401

        # Each context registers its topic consumers in a `handlers` module.
        autodiscover_modules("handlers")
