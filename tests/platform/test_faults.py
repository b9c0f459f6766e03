"""Faults of Postgres and Redis under a stream of orders: every answer a 2xx or a JSON 503 with Retry-After, recovery
without anyone, nothing lost, the books balanced (ADR 009).

The platform runs as deployed (uvicorn with brokerx.asgi, a prefork Celery worker on every queue, beat) in
subprocesses, against a Postgres cluster and a Redis server of this test's own, started in a temporary directory on
free ports: the faults (every backend terminated, Redis frozen, Redis stopped and started empty) never touch the
machine's shared servers.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import requests

from brokerx.devstack import WORKER_FLAGS

BASE_DIR = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("BROKERX_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server")

pytestmark = [
    pytest.mark.skipif(not (PG_BIN / "initdb").exists() or REDIS_SERVER is None,
                       reason="needs PostgreSQL binaries (BROKERX_PG_BIN) and redis-server"),
    pytest.mark.timeout(240),
]

SEED = """
from decimal import Decimal
from django.utils import timezone
from accounts.models import User
from accounts.services import api_key_create
from orders.models import Instrument
from portfolios.models import LedgerAccount
from portfolios.services import adjustment_post

Instrument.objects.create(symbol="ACME", name="Acme Corp", reference_price=Decimal("100.00"),
                          tick_size=Decimal("0.01"), lot_size=Decimal("1"), price_band_pct=Decimal("0.10"),
                          max_order_notional=Decimal("500000"))
staff = User.objects.create_user(email="desk@brokerx.example", password="x-Staff-pass-1", is_staff=True,
                                 email_verified_at=timezone.now())
for name in ("buyer", "seller"):
    user = User.objects.create_user(email=f"{name}@brokerx.example", password="x-Trader-pass-1",
                                    email_verified_at=timezone.now())
    adjustment_post(staff_user=staff, user=user, kind=LedgerAccount.Kind.CASH_AVAILABLE, asset="USD",
                    amount=Decimal("10000000"), reason="fault test funding")
    adjustment_post(staff_user=staff, user=user, kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, asset="ACME",
                    amount=Decimal("100000"), reason="fault test funding", unit_cost=Decimal("90"))
    new = api_key_create(user=user, name="fault test", scope="trade")
    print(f"KEY {name} {new.api_key.key_id}:{new.secret}")
"""

CHECK_BOOKS = """
from tests.trading_fixtures import assert_books_balanced
assert_books_balanced()
print("BOOKS BALANCED")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class OwnRedis:
    def __init__(self, workdir: Path):
        self.port, self.workdir, self.process = _free_port(), workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)


def _postgres_owner() -> dict:
    """Postgres refuses to run as root: as root, its programs run as the `postgres` system user."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam(os.environ.get("BROKERX_PG_USER", "postgres"))
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@pytest.fixture(scope="session")
def own_services():
    """A throwaway Postgres cluster and Redis server on free loopback ports; removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="brokerx-faults-"))
    pgdata, pg_port, owner = workdir / "pgdata", _free_port(), _postgres_owner()
    if owner:
        os.chown(workdir, owner["user"], owner["group"])
    subprocess.run([PG_BIN / "initdb", "-D", pgdata, "-U", "postgres", "-A", "trust", "--no-sync"],  # noqa: S603
                   check=True, capture_output=True, **owner)
    options = (f"-p {pg_port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
               f"-c full_page_writes=off -c max_connections=60")
    subprocess.run([PG_BIN / "pg_ctl", "-D", pgdata, "-o", options, "-l", workdir / "pg.log", "-w", "start"],  # noqa: S603
                   check=True, capture_output=True, **owner)
    redis_server = OwnRedis(workdir)
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE brokerx")
        redis_server.start()
        yield {"database_url": f"postgres://postgres@127.0.0.1:{pg_port}/brokerx", "redis": redis_server,
               "workdir": workdir}
    finally:
        redis_server.stop()
        subprocess.run([PG_BIN / "pg_ctl", "-D", pgdata, "-m", "immediate", "stop"], capture_output=True,  # noqa: S603
                       **owner)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def platform(own_services):
    """Migrated and seeded; web (uvicorn), a Celery worker on every queue and beat running against own_services."""
    workdir = own_services["workdir"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "TEST_DB", "PYTEST"))}
    env.update(DJANGO_SETTINGS_MODULE="brokerx.settings.dev", DATABASE_URL=own_services["database_url"],
               REDIS_URL=own_services["redis"].url, LOG_LEVEL="ERROR",
               BROKERX_SIMULATOR="0", EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
               CELERY_BEAT_SCHEDULE_FILENAME=str(workdir / "beat-schedule"), BROKERX_BACKGROUND_NICE="0")
    env.pop("CELERY_BROKER_URL", None)  # the broker is this test's Redis too

    def manage(*args: str, code: str | None = None) -> str:
        command = [sys.executable, "manage.py", *args] + (["-c", code] if code else [])
        result = subprocess.run(command, env=env, cwd=BASE_DIR, capture_output=True, text=True,  # noqa: S603
                                timeout=120)
        assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    manage("migrate", "--noinput", "-v", "0")
    keys = dict(line.split()[1:] for line in manage("shell", code=SEED).splitlines() if line.startswith("KEY "))
    web_port = _free_port()
    logs = open(workdir / "processes.log", "ab")  # noqa: SIM115
    commands = [
        [sys.executable, "-m", "uvicorn", "brokerx.asgi:application", "--host", "127.0.0.1", "--port", str(web_port),
         "--no-access-log", "--log-level", "warning"],
        [sys.executable, "-m", "celery", "-A", "brokerx", "worker", "-Q", "critical,default,low", "-c", "2",
         "--loglevel", "WARNING", "-n", f"faults-{web_port}@%h", *WORKER_FLAGS],
        [sys.executable, "-m", "celery", "-A", "brokerx", "beat", "--loglevel", "WARNING"],
    ]
    children = [subprocess.Popen(command, env=env, cwd=BASE_DIR, stdout=logs, stderr=logs)  # noqa: S603
                for command in commands]
    restarts: list[str] = []

    def supervise() -> None:
        """Restart a process that died, as the platform's supervisors do (brokerx.devstack, compose's restart
        policy): kombu's Redis transport can take the worker down when the broker vanishes under it."""
        for index, child in enumerate(children):
            if child.poll() is not None:
                restarts.append(" ".join(commands[index][2:4]))
                children[index] = subprocess.Popen(commands[index], env=env, cwd=BASE_DIR,  # noqa: S603
                                                   stdout=logs, stderr=logs)

    try:
        _wait_port(web_port, timeout=60)
        yield {"base": f"http://127.0.0.1:{web_port}", "keys": keys, "manage": manage,
               # The workers' and web server's last lines (beat's retries while Redis is away would fill it).
               "log_tail": lambda: "\n".join(line for line in (workdir / "processes.log").read_text(
                   errors="replace").splitlines() if "celery.beat" not in line)[-6000:],
               "database_url": own_services["database_url"], "redis": own_services["redis"],
               "supervise": supervise, "restarts": restarts}
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        logs.close()


class OrderStream:
    """Orders at a steady rate from a thread (buyer and seller alternate at one price, so they trade), each answer
    recorded with the phase it was sent in."""

    def __init__(self, base: str, keys: dict[str, str], rate: float = 8.0):
        self.base, self.rate = base, rate
        self.sessions = {side: requests.Session() for side in ("buy", "sell")}
        self.auth = {"buy": f"ApiKey {keys['buyer']}", "sell": f"ApiKey {keys['seller']}"}
        self.answers: list[dict] = []
        self.phase = "warm-up"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._count = 0

    def send(self) -> dict:
        side = "buy" if self._count % 2 == 0 else "sell"
        self._count += 1
        started = time.monotonic()
        try:
            response = self.sessions[side].post(
                f"{self.base}/api/v1/orders", timeout=10,
                json={"symbol": "ACME", "side": side, "type": "limit", "qty": "1", "limit_price": "100.00",
                      "time_in_force": "gtc"},
                headers={"Authorization": self.auth[side]})
        except requests.RequestException as exc:
            answer = {"phase": self.phase, "status": None, "error": repr(exc)}
        else:
            answer = {"phase": self.phase, "status": response.status_code,
                      "content_type": response.headers.get("Content-Type", ""),
                      "retry_after": response.headers.get("Retry-After"),
                      "request_id": response.headers.get("X-Request-ID"),
                      "body": response.json() if "json" in response.headers.get("Content-Type", "") else
                      response.text[:200]}
        answer["seconds"] = time.monotonic() - started
        self.answers.append(answer)
        return answer

    def _run(self) -> None:
        while not self._stop.is_set() and self._count < 600:  # bounded, whatever happens
            self.send()
            self._stop.wait(1 / self.rate)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(15)


def _terminate_backends(database_url: str) -> int:
    with psycopg.connect(database_url.replace("postgres://", "postgresql://"), autocommit=True) as admin:
        return admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]


def _settled(database_url: str) -> tuple[int, int, int]:
    """(outbox events not delivered, orders that never reached the book, accepted orders)."""
    with psycopg.connect(database_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        undelivered = conn.execute("SELECT count(*) FROM outbox_outboxevent WHERE status <> 'done'").fetchone()[0]
        unbooked = conn.execute("SELECT count(*) FROM orders_order WHERE saga_state = 'created'").fetchone()[0]
        accepted = conn.execute("SELECT count(*) FROM orders_order").fetchone()[0]
    return undelivered, unbooked, accepted


def test_orders_survive_postgres_and_redis_faults(platform):
    base, keys, redis_server = platform["base"], platform["keys"], platform["redis"]
    with OrderStream(base, keys) as stream:
        time.sleep(2)
        stream.phase = "postgres backends terminated"
        terminated = _terminate_backends(platform["database_url"])
        time.sleep(3)
        stream.phase = "redis frozen"
        redis_server.process.send_signal(signal.SIGSTOP)
        time.sleep(4)
        redis_server.process.send_signal(signal.SIGCONT)
        stream.phase = "redis back from freeze"
        time.sleep(2)
        stream.phase = "redis stopped"
        redis_server.stop()
        time.sleep(3)
        redis_server.start()  # the same port, empty: rate-limit counters, caches, broker queues all gone
        stream.phase = "redis restarted"
        time.sleep(4)
    after = stream.send()  # a request after recovery, alone
    answers = stream.answers

    by_phase: dict[str, Counter] = {}
    for answer in answers:
        by_phase.setdefault(answer["phase"], Counter())[answer["status"]] += 1
    print("\nterminated backends:", terminated)
    for phase, counts in by_phase.items():
        slowest = max(a["seconds"] for a in answers if a["phase"] == phase)
        print(f"{phase:32} {dict(counts)}  slowest {slowest * 1000:.0f} ms")

    assert terminated > 0
    assert after["status"] == 201, after
    for answer in answers:
        assert answer["status"] in (200, 201, 503), answer
        if answer["status"] == 503:
            assert answer["content_type"].startswith("application/json"), answer
            assert answer["body"]["code"] == "service_unavailable", answer
            assert answer["retry_after"] and int(answer["retry_after"]) > 0, answer
            assert answer["body"]["details"]["request_id"] == answer["request_id"], answer
    # Order entry keeps accepting while Redis is out: Postgres is the record.
    for phase in ("redis frozen", "redis stopped", "redis restarted"):
        assert by_phase[phase][201] > 0, (phase, by_phase[phase])
    assert sum(a["status"] == 503 for a in answers) <= 10, by_phase
    # A frozen Redis costs a request at most a socket timeout or two, not a pile of them.
    assert max(a["seconds"] for a in answers if a["phase"] == "redis frozen") < 2.5

    # Nothing lost: every outbox event delivered (no dead letter), every accepted order on the book or terminal.
    accepted_answers = sum(a["status"] in (200, 201) for a in answers)  # `after` is among them
    # The worker finds the broker again by itself; on a busy machine that has taken over 45 s (its reconnect back-off).
    settle_started = time.monotonic()
    deadline = settle_started + 90
    while (state := _settled(platform["database_url"]))[:2] != (0, 0) and time.monotonic() < deadline:
        platform["supervise"]()
        time.sleep(0.5)
    undelivered, unbooked, accepted = state
    print(f"accepted answers {accepted_answers}, orders in the database {accepted}, undelivered events "
          f"{undelivered}, orders not on the book {unbooked}, settled in {time.monotonic() - settle_started:.1f} s, "
          f"processes restarted: {platform['restarts'] or 'none'}")
    assert (undelivered, unbooked) == (0, 0), platform["log_tail"]()
    assert accepted >= accepted_answers  # an order whose answer was lost in flight may still have been accepted
    assert "BOOKS BALANCED" in platform["manage"]("shell", code=CHECK_BOOKS)
