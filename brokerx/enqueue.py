"""Enqueueing a Celery task by its name, so a service need not import the tasks module that imports the service."""
from .celery import app


def task_enqueue(name: str, *, args: tuple = (), **options) -> None:
    """Through the registered task when this process has it (apps import their tasks when Django is ready, so eager
    mode runs it inline), else by name to the broker with the same routes."""
    app.signature(name).apply_async(args=args, **options)
