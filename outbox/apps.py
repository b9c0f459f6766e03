from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import metrics  # noqa: F401

        # Each context registers its topic consumers in a `handlers` module.
        autodiscover_modules("handlers")
