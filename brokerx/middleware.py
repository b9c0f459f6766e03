"""A base for small middleware that works on both sides of Django's handler: no thread switch under ASGI."""
from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import health, metrics


class SyncAndAsyncMiddleware:
    """Subclasses implement `before(request)` (returning what `after` needs) and `after(request, response, state)`."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        state = self.before(request)
        try:
            response = self.get_response(request)
        finally:
            self.finish(state)
        return self.after(request, response)

    async def _acall(self, request):
        state = self.before(request)
        try:
            response = await self.get_response(request)
        finally:
            self.finish(state)
        return self.after(request, response)

    def before(self, request):
        return None

    def finish(self, state) -> None:
        """Runs whether or not the view raised (e.g. to reset a context variable)."""

    def after(self, request, response):
        return response


class InternalProbesMiddleware:
    """Answers /healthz, /readyz and /metrics before anything reads the Host header.

    Prometheus scrapes each web replica by its address and orchestrators probe by address too; those hosts are
    not in ALLOWED_HOSTS, so Django's host check (CommonMiddleware, SecurityMiddleware's redirect) would answer
    400. These views read nothing from the host. The public proxy does not route /metrics (deploy/nginx.conf).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.views = {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics.metrics_view}

    def __call__(self, request):
        view = self.views.get(request.path_info)
        return view(request) if view is not None else self.get_response(request)
