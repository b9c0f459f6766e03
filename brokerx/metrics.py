"""Prometheus collectors of the platform itself: Celery queue depth per queue, read from the broker."""
import logging

from django.conf import settings
from prometheus_client.core import REGISTRY, GaugeMetricFamily

logger = logging.getLogger(__name__)


class CeleryQueueDepthCollector:
    """On scrape, reads the length of each Celery queue (a Redis list with the Redis broker)."""

    def describe(self):
        # Named up front so registering does not connect to the broker at start-up.
        return [GaugeMetricFamily("celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])]

    def collect(self):
        gauge = GaugeMetricFamily("celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        try:
            import redis

            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=0.5,
                                          socket_connect_timeout=0.5)
            try:
                for queue in settings.CELERY_QUEUE_NAMES:
                    gauge.add_metric([queue], client.llen(queue))
            finally:
                client.close()
        except Exception as exc:  # a scrape must not fail because the broker is down
            logger.warning("celery queue depth unavailable", extra={"error": str(exc)})
        yield gauge


_collector = CeleryQueueDepthCollector()
try:
    REGISTRY.register(_collector)
except ValueError:  # already registered (module reloaded)
    pass
