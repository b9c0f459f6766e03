"""Prometheus: the platform's scrape-time collectors, the /metrics view and the Celery workers' metrics endpoint.

Counters, histograms and gauges live in each process. With `PROMETHEUS_MULTIPROC_DIR` set (prometheus_client's
multiprocess mode: `make run` and docker-compose set it), every process writes its values to files in that
directory and a scrape adds them up with `MultiProcessCollector`, so the web's /metrics shows every web worker and,
under `make run`, the Celery workers and beat too. Without it, /metrics shows the default registry of the process
that answers.

Scrape-time collectors (they compute their samples when scraped: `celery_queue_depth` from the broker here,
`outbox_events` from the database in `outbox/metrics.py`) cannot live in the files; they register through
`register_scrape_collector`, which puts them on the default registry (single-process mode) and on the list the
multiprocess registry of each scrape adds (they are not counted per process, so they are exported once).
"""
import logging
import os
import threading

import redis
from celery.signals import worker_process_shutdown, worker_ready
from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily

logger = logging.getLogger(__name__)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_METRICS_PORT_ENV = "BROKERX_WORKER_METRICS_PORT"
WORKER_METRICS_ADDR_ENV = "BROKERX_WORKER_METRICS_ADDR"

# Metric names (sorted tuple) -> collector; one entry per scrape-time collector, whatever re-imports its module.
_scrape_collectors: dict[tuple[str, ...], object] = {}
_lock = threading.Lock()
# (server, thread) of this worker's metrics endpoint, once started.
worker_metrics_server = None


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when this process runs in prometheus_client's multiprocess mode."""
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def register_scrape_collector(collector):
    """Exports a collector computed on scrape in both modes, once. Returns the collector registered under its
    metric names (the first one, when the same names are registered again, e.g. by a reloaded module)."""
    names = tuple(sorted(family.name for family in collector.describe()))
    with _lock:
        if names in _scrape_collectors:
            return _scrape_collectors[names]
        try:
            REGISTRY.register(collector)
        except ValueError:  # the default registry has these names already (this module was reloaded)
            pass
        _scrape_collectors[names] = collector
    return collector


def scrape_collectors() -> list:
    with _lock:
        return list(_scrape_collectors.values())


def multiprocess_registry(path: str | None = None, *, scrape_time: bool = True) -> CollectorRegistry:
    """A registry adding up every process's files in `path` (default: PROMETHEUS_MULTIPROC_DIR), plus the
    scrape-time collectors when `scrape_time`."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    if scrape_time:
        for collector in scrape_collectors():
            registry.register(collector)
    return registry


def metrics_registry():
    """What /metrics exports; the mode is read per scrape."""
    return multiprocess_registry() if multiprocess_dir() else REGISTRY


def metrics_view(request):
    """GET /metrics: every process's metrics in multiprocess mode, else this process's; plus queue depth and
    outbox events either way."""
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def start_worker_metrics_server(port: int, addr: str = "0.0.0.0", path: str | None = None):  # noqa: S104
    """Serves, on a thread of this process, the counters every process writes to the multiprocess directory
    `path` (a Celery worker's pool children included). Only the files: the scrape-time collectors are the web's.
    Returns prometheus_client's (server, thread)."""
    return start_http_server(port, addr=addr, registry=multiprocess_registry(path, scrape_time=False))


def serve_worker_metrics(**_kwargs) -> None:
    """`worker_ready` (in the worker's main process): with BROKERX_WORKER_METRICS_PORT set, starts the endpoint."""
    global worker_metrics_server
    port = os.environ.get(WORKER_METRICS_PORT_ENV)
    if not port or worker_metrics_server is not None:
        return
    if not multiprocess_dir():
        logger.warning("worker metrics endpoint not started: it needs PROMETHEUS_MULTIPROC_DIR (pool processes)",
                       extra={"port": port})
        return
    addr = os.environ.get(WORKER_METRICS_ADDR_ENV, "0.0.0.0")  # noqa: S104  (scraped from another container)
    try:
        worker_metrics_server = start_worker_metrics_server(int(port), addr)
    except (OSError, ValueError) as exc:
        logger.error("worker metrics endpoint not started", extra={"port": port, "error": str(exc)})
        return
    logger.info("worker metrics endpoint started", extra={"addr": addr, "port": port})


def mark_worker_process_dead(pid=None, **_kwargs) -> None:
    """`worker_process_shutdown` (in the exiting pool process): drops its live-gauge files, as prometheus_client
    asks. A pool process killed outright does not get here; its files stay until the directory is emptied."""
    path = multiprocess_dir()
    if pid is not None and path:
        multiprocess.mark_process_dead(pid, path)


def connect_celery_signals() -> None:
    worker_ready.connect(serve_worker_metrics, weak=False, dispatch_uid="brokerx.metrics.serve_worker_metrics")
    worker_process_shutdown.connect(mark_worker_process_dead, weak=False,
                                    dispatch_uid="brokerx.metrics.mark_worker_process_dead")


def celery_queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (a Redis list with the Redis broker), by queue name. Raises when the
    broker cannot be read (short timeouts)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return {queue: client.llen(queue) for queue in settings.CELERY_QUEUE_NAMES}
    finally:
        client.close()


class CeleryQueueDepthCollector:
    """On scrape, reads the length of each Celery queue (`celery_queue_depths`)."""

    def describe(self):
        # Named up front so registering does not connect to the broker at start-up.
        return [GaugeMetricFamily("celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])]

    def collect(self):
        gauge = GaugeMetricFamily("celery_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        try:
            for queue, depth in celery_queue_depths().items():
                gauge.add_metric([queue], depth)
        except Exception as exc:  # a scrape must not fail because the broker is down
            logger.warning("celery queue depth unavailable", extra={"error": str(exc)})
        yield gauge


register_scrape_collector(CeleryQueueDepthCollector())
