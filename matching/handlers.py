"""Outbox consumer of the matching context: order events of a symbol, drained on the `critical` queue."""
from outbox.registry import handler

from .services import matching_process


def on_order_events(events) -> None:
    matching_process(symbol=events[0].partition_key, outbox_events=events)


for _topic in ("order.created", "order.replaced", "order.canceled"):
    handler(_topic, queue="critical")(on_order_events)
