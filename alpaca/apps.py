"""App config of the Alpaca-compatible surface."""
from django.apps import AppConfig


class AlpacaConfig(AppConfig):
    name = "alpaca"
    verbose_name = "Alpaca-compatible API"
