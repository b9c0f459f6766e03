"""Prometheus metrics across processes: /metrics in prometheus_client's multiprocess mode adds up the counters
every process writes (e.g. the saga counters of the Celery matching worker) and keeps the scrape-time collectors;
a Celery worker container serves its pool's counters on its own port; `make run` and the image give every process
one fresh multiprocess directory."""
import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from celery.signals import worker_process_shutdown, worker_ready
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily

from brokerx import devstack, metrics

BASE_DIR = Path(__file__).resolve().parents[2]
MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"

# Run in a fresh interpreter with PROMETHEUS_MULTIPROC_DIR already set, as a worker's pool process is: the
# library picks its file-backed values when first imported.
_COUNT_SAGAS = """
import sys
from orders.metrics import saga_completed
saga_completed.labels(sys.argv[1]).inc(float(sys.argv[2]))
"""
_SET_LIVE_GAUGE = """
import os, sys
from prometheus_client import Counter, Gauge
Gauge("bx_test_busy", "busy", multiprocess_mode="livesum").set(float(sys.argv[1]))
Counter("bx_test_done", "done").inc()
print(os.getpid())
"""


def _in_another_process(directory: Path, code: str, *args: str) -> str:
    env = {**os.environ, MULTIPROC: str(directory)}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _count_sagas(directory: Path, status: str, amount: int) -> None:
    _in_another_process(directory, _COUNT_SAGAS, status, str(amount))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
        return response.read().decode()


@pytest.mark.django_db
def test_metrics_in_multiprocess_mode_adds_up_other_processes_and_keeps_scrape_time_collectors(
        client, tmp_path, monkeypatch):
    from outbox.models import OutboxEvent

    OutboxEvent.objects.create(topic="test.metrics", queue="mp-metrics", status="dead")
    monkeypatch.setenv(MULTIPROC, str(tmp_path))
    status = f"mp-{uuid.uuid4().hex[:8]}"
    _count_sagas(tmp_path, status, 2)
    _count_sagas(tmp_path, status, 3)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.content.decode()
    assert f'saga_completed_total{{status="{status}"}} 5.0' in text
    for queue in ("critical", "default", "low"):
        assert f'celery_queue_depth{{queue="{queue}"}}' in text
    assert 'outbox_events{queue="mp-metrics",status="dead"} 1.0' in text
    # Each scrape-time collector exported once.
    assert text.count("# TYPE celery_queue_depth gauge") == 1
    assert text.count("# TYPE outbox_events gauge") == 1


@pytest.mark.django_db
def test_metrics_without_the_multiprocess_dir_shows_this_process(client, tmp_path, monkeypatch):
    from orders.metrics import saga_completed

    monkeypatch.delenv(MULTIPROC, raising=False)
    here, elsewhere = f"sp-{uuid.uuid4().hex[:8]}", f"mp-{uuid.uuid4().hex[:8]}"
    saga_completed.labels(here).inc()
    _count_sagas(tmp_path, elsewhere, 1)

    text = client.get("/metrics").content.decode()

    assert f'saga_completed_total{{status="{here}"}} 1.0' in text
    assert elsewhere not in text
    assert 'celery_queue_depth{queue="critical"}' in text
    assert text.count("# TYPE outbox_events gauge") == 1


def test_scrape_time_collectors_register_once():
    class Probe:
        def __init__(self, name):
            self.name = name

        def describe(self):
            return [GaugeMetricFamily(self.name, "probe")]

        def collect(self):
            return []

    name = f"bx_probe_{uuid.uuid4().hex[:8]}"
    first = Probe(name)
    try:
        assert metrics.register_scrape_collector(first) is first
        assert metrics.register_scrape_collector(Probe(name)) is first  # no ValueError, no second entry
        assert [c for c in metrics.scrape_collectors() if getattr(c, "name", None) == name] == [first]
        assert metrics.REGISTRY._names_to_collectors[name] is first
    finally:
        metrics._scrape_collectors.pop((name,), None)
        metrics.REGISTRY.unregister(first)


@pytest.fixture
def worker_endpoint(monkeypatch):
    """Stops the endpoint a test made the worker_ready signal start."""
    monkeypatch.setattr(metrics, "worker_metrics_server", None)
    yield
    if metrics.worker_metrics_server is not None:
        server, thread = metrics.worker_metrics_server
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_worker_ready_serves_the_pool_processes_counters_on_the_configured_port(tmp_path, monkeypatch,
                                                                               worker_endpoint):
    port = _free_port()
    monkeypatch.setenv(MULTIPROC, str(tmp_path))
    monkeypatch.setenv("BROKERX_WORKER_METRICS_PORT", str(port))
    monkeypatch.setenv("BROKERX_WORKER_METRICS_ADDR", "127.0.0.1")
    status = f"mp-{uuid.uuid4().hex[:8]}"
    _count_sagas(tmp_path, status, 4)

    worker_ready.send(sender=None)

    assert metrics.worker_metrics_server is not None
    body = _scrape(port)
    assert f'saga_completed_total{{status="{status}"}} 4.0' in body
    assert "celery_queue_depth" not in body  # the web exports the scrape-time collectors, once
    _count_sagas(tmp_path, status, 1)  # a pool process started later: read on the next scrape
    assert f'saga_completed_total{{status="{status}"}} 5.0' in _scrape(port)


def test_worker_metrics_helper_serves_a_given_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(MULTIPROC, raising=False)
    status = f"mp-{uuid.uuid4().hex[:8]}"
    _count_sagas(tmp_path, status, 6)
    port = _free_port()
    server, thread = metrics.start_worker_metrics_server(port, "127.0.0.1", path=str(tmp_path))
    try:
        body = _scrape(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert f'saga_completed_total{{status="{status}"}} 6.0' in body


def test_worker_without_a_multiprocess_dir_starts_no_endpoint(monkeypatch, worker_endpoint):
    port = _free_port()
    monkeypatch.delenv(MULTIPROC, raising=False)
    monkeypatch.setenv("BROKERX_WORKER_METRICS_PORT", str(port))
    monkeypatch.setenv("BROKERX_WORKER_METRICS_ADDR", "127.0.0.1")

    worker_ready.send(sender=None)

    assert metrics.worker_metrics_server is None
    with pytest.raises(OSError):
        _scrape(port)


def _exported(directory: Path) -> str:
    return generate_latest(metrics.multiprocess_registry(str(directory), scrape_time=False)).decode()


def test_an_exiting_celery_pool_process_is_marked_dead(tmp_path, monkeypatch):
    monkeypatch.setenv(MULTIPROC, str(tmp_path))
    pid = int(_in_another_process(tmp_path, _SET_LIVE_GAUGE, "7"))
    assert "bx_test_busy 7.0" in _exported(tmp_path)

    worker_process_shutdown.send(sender=None, pid=pid, exitcode=0)

    text = _exported(tmp_path)
    assert "bx_test_busy 7.0" not in text
    assert "bx_test_done_total 1.0" in text  # counters of exited processes stay in the sum


def test_gunicorn_marks_an_exited_web_worker_dead(tmp_path, monkeypatch):
    import runpy

    monkeypatch.setenv(MULTIPROC, str(tmp_path))
    pid = int(_in_another_process(tmp_path, _SET_LIVE_GAUGE, "3"))
    child_exit = runpy.run_path(str(BASE_DIR / "deploy" / "gunicorn.conf.py"))["child_exit"]
    assert "bx_test_busy 3.0" in _exported(tmp_path)

    child_exit(None, SimpleNamespace(pid=pid))

    assert "bx_test_busy 3.0" not in _exported(tmp_path)


# --- `make run` (brokerx/devstack.py) -------------------------------------------------------------------------

class _ExitedProcess:
    pid = 0

    def poll(self):
        return 1  # every child "exits" at once, so run() returns after spawning them all


@pytest.fixture
def fake_platform(tmp_path, monkeypatch):
    """run() with its services, management commands and children replaced: records each child's environment."""
    spawned: list[tuple[str, dict, int]] = []
    managed: list[dict] = []

    def spawn(self, name, argv, *, env=None, user=None, stdout=None, nice=0, restart=False):
        # `restart` is not honoured (nothing registered in self.restarts): the first child that "exits" ends run().
        process = _ExitedProcess()
        self.children.append((name, process))
        spawned.append((name, dict(env or {}), nice))
        return process

    monkeypatch.setattr(devstack, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(devstack, "resolve_services",
                        lambda stack, prefer_local: {"DATABASE_URL": "postgres://x/y", "REDIS_URL": "redis://x/0"})
    monkeypatch.setattr(devstack, "_manage", lambda args, env: managed.append(dict(env)))
    monkeypatch.setattr(devstack, "_install_signal_handlers", lambda: None)
    monkeypatch.setattr(devstack, "port_open", lambda *args, **kwargs: True)
    monkeypatch.setattr(devstack.Stack, "spawn", spawn)
    previous_sigint = signal.getsignal(signal.SIGINT)
    yield spawned, managed
    signal.signal(signal.SIGINT, previous_sigint)  # run() ignores SIGINT while it stops its children


def test_make_run_gives_every_child_one_emptied_multiprocess_dir(tmp_path, monkeypatch, fake_platform):
    spawned, managed = fake_platform
    monkeypatch.delenv(MULTIPROC, raising=False)
    stale = tmp_path / "data" / "prometheus"
    stale.mkdir(parents=True)
    (stale / "counter_12345.db").write_bytes(b"from the last run")

    assert devstack.run() == 1

    names = [name for name, _, _ in spawned]
    assert {"web", "worker-critical", "worker-default", "worker-low", "beat"} <= set(names)
    assert {env.get(MULTIPROC) for _, env, _ in spawned} == {str(stale.resolve())}
    assert {env.get(MULTIPROC) for env in managed} == {str(stale.resolve())}
    assert stale.is_dir() and not any(stale.iterdir())


def test_make_run_keeps_the_callers_multiprocess_dir(tmp_path, monkeypatch, fake_platform):
    spawned, _ = fake_platform
    mine = tmp_path / "mine"
    monkeypatch.setenv(MULTIPROC, str(mine))

    assert devstack.run() == 1

    assert mine.is_dir()
    assert {env.get(MULTIPROC) for _, env, _ in spawned} == {str(mine)}
    assert not (tmp_path / "data" / "prometheus").exists()


# --- the image and docker-compose --------------------------------------------------------------------------------

def test_the_image_entrypoint_empties_the_multiprocess_dir_then_runs_the_command(tmp_path):
    directory = tmp_path / "prometheus"
    (directory / "sub").mkdir(parents=True)
    (directory / "counter_1.db").write_bytes(b"stale")
    (directory / "sub" / "gauge_all_2.db").write_bytes(b"stale")
    env = {**os.environ, MULTIPROC: str(directory)}

    result = subprocess.run(["sh", str(BASE_DIR / "deploy" / "docker-entrypoint.sh"), "sh", "-c", "echo ran $0", "x"],
                            env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran x"
    assert directory.is_dir() and not any(directory.iterdir())

    missing = tmp_path / "not-yet"
    result = subprocess.run(["sh", str(BASE_DIR / "deploy" / "docker-entrypoint.sh"), "true"],
                            env={**os.environ, MULTIPROC: str(missing)}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert missing.is_dir()


def test_compose_gives_every_app_container_a_dir_and_prometheus_scrapes_every_worker():
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    prometheus = yaml.safe_load((BASE_DIR / "deploy" / "prometheus.yml").read_text())
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    app_services = {name: svc for name, svc in compose["services"].items() if svc.get("image") == "brokerx:latest"}
    workers = {name: svc for name, svc in app_services.items() if svc["command"][:4] == ["celery", "-A", "brokerx",
                                                                                          "worker"]}
    assert {"web", "beat", "migrate"} <= set(app_services) and len(workers) == 3

    directories = {svc["environment"].get(MULTIPROC) for svc in app_services.values()}
    assert directories == {"/tmp/prometheus"}
    assert f"ENV {MULTIPROC}=/tmp/prometheus" in dockerfile and "install -d -o brokerx" in dockerfile
    assert "docker-entrypoint.sh" in dockerfile

    ports = {svc["environment"].get("BROKERX_WORKER_METRICS_PORT") for svc in workers.values()}
    assert len(ports) == 1 and None not in ports
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "brokerx-worker")
    (sd,) = job["dns_sd_configs"]
    assert set(sd["names"]) == set(workers) and str(sd["port"]) == ports.pop()
    assert "deploy/gunicorn.conf.py" in app_services["web"]["command"]


def test_make_run_serves_the_background_queues_last(monkeypatch, fake_platform):
    spawned, _ = fake_platform
    monkeypatch.delenv("BROKERX_BACKGROUND_NICE", raising=False)
    assert devstack.run() == 1
    assert {name: nice for name, _, nice in spawned} == {
        "web": 0, "worker-critical": 0, "worker-default": 10, "worker-low": 10, "beat": 10}

    spawned.clear()
    monkeypatch.setenv("BROKERX_BACKGROUND_NICE", "0")
    assert devstack.run() == 1
    assert {nice for _, _, nice in spawned} == {0}
