from django.apps import AppConfig


class WatchlistsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "watchlists"
