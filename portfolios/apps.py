from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        # Importing the tasks registers them in every process (web included), so the services' enqueue by name finds
        # them and eager mode runs them inline. They import models, so not before the apps are ready.
        from . import tasks  # noqa: F401
