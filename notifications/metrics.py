"""Prometheus measures of the private order stream."""
from datetime import datetime

from prometheus_client import Histogram

# From the report's timestamp (set in the matching transaction) to "sent": the consumer wrote it to the socket.
# Recorded by the web processes (summed over them in /metrics).
push_delay = Histogram("execution_report_push_delay_seconds", "Execution report age when pushed", ["stage"],
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def observe_push_delay(stage: str, timestamp: str, now: float) -> None:
    try:
        push_delay.labels(stage).observe(max(0.0, now - datetime.fromisoformat(timestamp).timestamp()))
    except (TypeError, ValueError):
        pass
