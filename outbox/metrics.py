"""Outbox health for Prometheus: pending and dead-lettered events per queue, read on scrape."""
import logging

from django.db import connection
from prometheus_client.core import GaugeMetricFamily

from brokerx.metrics import register_scrape_collector

logger = logging.getLogger(__name__)


class OutboxCollector:
    def describe(self):
        # Named up front so registering does not query the database at start-up.
        return [GaugeMetricFamily("outbox_events", "Outbox events not yet delivered", labels=["queue", "status"])]

    def collect(self):
        gauge = GaugeMetricFamily("outbox_events", "Outbox events not yet delivered", labels=["queue", "status"])
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT queue, status, count(*) FROM outbox_outboxevent "
                               "WHERE status IN ('pending', 'dead') GROUP BY queue, status")
                for queue, status, count in cursor.fetchall():
                    gauge.add_metric([queue, status], count)
        except Exception as exc:  # a scrape must not fail because the database is down
            logger.warning("outbox metrics unavailable", extra={"error": str(exc)})
        yield gauge


# Exported by /metrics in single-process and multiprocess mode alike (brokerx/metrics.py).
register_scrape_collector(OutboxCollector())
