"""Browser pages of the trader UI, at the site root."""
from django.urls import include, path

from . import views

_patterns = [
    path("trade/", views.trade, name="trade"),
    path("portfolio/", views.portfolio, name="portfolio"),
]

urlpatterns = [path("", include((_patterns, "web")))]
