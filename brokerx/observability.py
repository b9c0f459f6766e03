"""Request ids: taken from or added to each HTTP request, put on every log line and carried into Celery tasks."""
import logging
import re
import uuid
from contextvars import ContextVar

from celery.signals import before_task_publish, task_postrun, task_prerun

from .middleware import SyncAndAsyncMiddleware

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_from(incoming: str) -> str:
    """A well-formed incoming request id (from the proxy), else a new one."""
    return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestIdMiddleware(SyncAndAsyncMiddleware):
    """Accepts a well-formed incoming X-Request-ID (from the proxy) or makes one, and echoes it back."""

    def before(self, request):
        # From META directly: request.headers would build a dict of every header for this one lookup.
        request.request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID", ""))
        return request_id_var.set(request.request_id)

    def finish(self, state) -> None:
        request_id_var.reset(state)

    def after(self, request, response):
        response[REQUEST_ID_HEADER] = request.request_id
        return response


def connect_celery_signals() -> None:
    """Publish the current request id as a task header; restore it while the task runs."""
    @before_task_publish.connect(weak=False)
    def _add_request_id(headers=None, **_kwargs):
        request_id = request_id_var.get()
        if headers is not None and request_id and "request_id" not in headers:
            headers["request_id"] = request_id

    @task_prerun.connect(weak=False)
    def _set_request_id(task=None, **_kwargs):
        request_id = getattr(task.request, "request_id", None) if task is not None else None
        if request_id is None and task is not None:
            request_id = (getattr(task.request, "headers", None) or {}).get("request_id")
        task.request._bx_request_id_token = request_id_var.set(request_id)

    @task_postrun.connect(weak=False)
    def _reset_request_id(task=None, **_kwargs):
        token = getattr(task.request, "_bx_request_id_token", None) if task is not None else None
        if token is not None:
            request_id_var.reset(token)
