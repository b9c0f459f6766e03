"""A real prefork Celery worker keeps its database connections across tasks (CELERY_DB_REUSE_MAX).

Celery's Django fix-up otherwise closes every connection, and with a psycopg pool the whole pool, before and
after each task: each outbox drain then opened fresh Postgres sessions (dozens a second on an idle platform).
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
QUEUE = "critical"
TASKS = 40


def sessions_opened() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_prefork_worker_reuses_its_connections_across_tasks():
    from outbox.tasks import outbox_drain

    db = settings.DATABASES["default"]
    # The worker as `make run` and production start it: settings with the psycopg pool (the test settings drop it).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brokerx.settings.dev", "DB_POOL_MAX": "4",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "brokerx", "worker", "-Q", QUEUE,
                               "--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
                               "--loglevel", "WARNING"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        # Warm up: the first task opens the child's connections.
        outbox_drain.apply_async(args=[QUEUE, "NOTHING"], queue=QUEUE)
        deadline = time.monotonic() + 60
        while broker.llen(QUEUE) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        before = sessions_opened()
        for _ in range(TASKS):
            outbox_drain.apply_async(args=[QUEUE, "NOTHING"], queue=QUEUE)  # each drain runs a transaction
        while broker.llen(QUEUE) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        assert broker.llen(QUEUE) == 0, "the worker did not take the tasks"
        opened = sessions_opened() - before
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    # Without reuse: at least one new session per task (the pool's, reopened each time).
    assert opened <= 3, f"{opened} Postgres sessions opened for {TASKS} tasks"
