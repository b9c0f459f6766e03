"""Top-level URL map: UI, admin, native API v1, Alpaca-compatible v2, docs, probes and metrics."""
from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health, metrics, views


def _optional(module_name: str) -> list:
    """URL patterns of a context that serves some; a context whose issue has not come yet has none."""
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        return []
    return list(getattr(module, "urlpatterns", []))


api_v1 = []
for _context in ("accounts", "portfolios", "orders", "matching", "notifications", "watchlists"):
    api_v1 += _optional(f"{_context}.api.urls")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
for _context in ("accounts", "portfolios", "orders", "matching", "notifications", "alpaca_compat", "web"):
    urlpatterns += _optional(f"{_context}.urls")
