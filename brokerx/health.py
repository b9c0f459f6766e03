"""Liveness (/healthz) and readiness (/readyz: database, Redis, broker) probes."""
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django_redis import get_redis_connection
from kombu import Connection


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    get_redis_connection("default").ping()


def _check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=1,
                    transport_options={"socket_timeout": 1, "socket_connect_timeout": 1}) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)


READINESS_CHECKS = {"database": _check_database, "redis": _check_redis, "broker": _check_broker}


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    checks: dict[str, dict] = {}
    for name, check in READINESS_CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means not ready; the reason is reported, not raised
            checks[name] = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            checks[name] = {"status": "ok"}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    failing = sorted(name for name, result in checks.items() if result["status"] != "ok")
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
