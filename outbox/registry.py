"""Topic -> handler registry. A handler receives a batch of events of its topic inside the claiming transaction."""
from collections.abc import Callable

Handler = Callable[[list], None]
_handlers: dict[str, Handler] = {}
_queues: dict[str, str] = {}


def handler(topic: str, *, queue: str = "default") -> Callable[[Handler], Handler]:
    """Register the consumer of `topic`; its events are written to (and drained from) `queue`."""

    def register(func: Handler) -> Handler:
        if topic in _handlers and _handlers[topic] is not func:
            raise RuntimeError(f"topic {topic!r} already has a handler")
        _handlers[topic] = func
        _queues[topic] = queue
        return func

    return register


def handler_for(topic: str) -> Handler | None:
    return _handlers.get(topic)


def queue_for(topic: str) -> str:
    return _queues.get(topic, "default")
