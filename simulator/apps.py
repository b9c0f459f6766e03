"""App config of the market simulator: a client of the platform that keeps the demo market moving."""
from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    name = "simulator"
    verbose_name = "Market simulator"
