"""Gunicorn settings of the web image (`gunicorn -c deploy/gunicorn.conf.py ...`).

In prometheus_client's multiprocess mode the master tells the library when a worker has exited, so the worker's
live gauges (multiprocess_mode "live*") stop being exported; its counters and histograms stay in the sum.
"""
import os


def child_exit(server, worker):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
