"""Soak: the whole platform for minutes under random faults, then the books and order states checked.

    make soak                          # 10 minutes (SOAK_SECONDS=600); CI runs SOAK_SECONDS=60
    .venv/bin/python tools/soak.py --seconds 600 --rate 30 --seed 7

It starts its own embedded PostgreSQL and Redis (never the machine's shared servers) under `.data/soak/`, and
`python -m brokerx.devstack run` against them on its own port (web, Celery workers per queue, beat, the demo
market simulator; the supervisor restarts what dies). Traders then trade on loopback, bounded in rate and time:
native-API traders (API keys) placing, replacing and canceling orders, Alpaca-shaped traders doing the same on
/v2, and a listener per native trader on /ws/orders/. Meanwhile faults are injected at random: kill -9 of a web
server, of a Celery pool process, of a Celery worker parent; every Postgres backend terminated; Redis paused,
stopped and restarted; delivered outbox events delivered again. At the end it waits for the outbox to drain,
runs `manage.py check_invariants`, and prints orders, fills, faults of each kind, answers by status, and the
invariant result. Exit status 1 when an invariant drifted or an answer was an undocumented server error (a 5xx
other than a JSON 503 with Retry-After), or when the platform did not recover.
"""
import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SOAK_DIR = BASE_DIR / ".data" / "soak"
PG_PORT, REDIS_PORT, WEB_PORT = 55532, 56479, 8100
SYMBOLS = ("AAPL", "MSFT")
FAULTS = ("web_server_killed", "celery_pool_process_killed", "celery_worker_killed", "postgres_backends_terminated",
          "redis_paused", "redis_restarted", "outbox_events_redelivered")

# The soak's own servers: devstack reads these when imported.
os.environ["BROKERX_DATA_DIR"] = str(SOAK_DIR)
os.environ["BROKERX_EMBEDDED_PG_PORT"] = str(PG_PORT)
os.environ["BROKERX_EMBEDDED_REDIS_PORT"] = str(REDIS_PORT)
sys.path.insert(0, str(BASE_DIR))

import psutil  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

from brokerx import devstack  # noqa: E402


def say(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Tally:
    """Answers by door and status, thread-safe; what counts as an undocumented server error."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers: Counter = Counter()
        self.undocumented: list[str] = []

    def record(self, door: str, status: int | str, body: bytes = b"", headers=None) -> None:
        with self.lock:
            self.answers[(door, status)] += 1
            if isinstance(status, int) and status >= 500:
                documented = False
                if status == 503 and headers is not None and headers.get("Retry-After"):
                    with contextlib.suppress(ValueError):
                        documented = isinstance(json.loads(body), dict)
                if not documented:
                    self.undocumented.append(f"{door} {status} {body[:200]!r}")


class Platform:
    """Embedded Postgres and Redis owned by this process, and the platform (devstack run) as a child."""

    def __init__(self):
        self.stack = devstack.Stack()
        self.database_url = ""
        self.redis_url = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        shutil.rmtree(SOAK_DIR, ignore_errors=True)
        SOAK_DIR.mkdir(parents=True)
        # The embedded Postgres runs as its own user (when started as root): let it traverse to its data.
        SOAK_DIR.parent.chmod(SOAK_DIR.parent.stat().st_mode | 0o011)
        self.database_url = devstack.start_embedded_postgres(self.stack)
        self.redis_url = devstack.start_embedded_redis(self.stack)
        env = {**os.environ, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
               "BROKERX_PORT": str(WEB_PORT), "BROKERX_SIMULATOR": "1",
               "DJANGO_SETTINGS_MODULE": "brokerx.settings.dev", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        log = open(SOAK_DIR / "platform.log", "ab")  # noqa: SIM115  (the child's for its lifetime)
        self.process = subprocess.Popen([sys.executable, "-m", "brokerx.devstack", "run"], env=env, cwd=BASE_DIR,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the platform did not start; see {SOAK_DIR / 'platform.log'}")
            time.sleep(1)

    @staticmethod
    def ready() -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=3)
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def redis(self) -> redis.Redis:
        return redis.Redis(port=REDIS_PORT, socket_timeout=2)

    def redis_restart(self) -> None:
        """Redis killed and started again on its data (append-only file). The new one is not a Stack child: those
        die with the thread that started them (PR_SET_PDEATHSIG), and this runs on the fault thread."""
        for name, process in list(self.stack.children):
            if name == "redis":
                argv = process.args
                process.kill()
                process.wait()
                self.stack.children.remove((name, process))
                time.sleep(2)
                self.stack.children.append((name, subprocess.Popen(argv, start_new_session=True, cwd=BASE_DIR)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if self.redis().ping():
                    return
            time.sleep(0.2)
        raise RuntimeError("Redis did not come back")

    def platform_processes(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.process.pid).children(recursive=True)
        return []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
        self.stack.stop()


def setup_traders(platform: Platform, native: int, alpaca: int) -> tuple[list[dict], list[dict]]:
    os.environ.update({"DATABASE_URL": platform.database_url, "REDIS_URL": platform.redis_url, "DB_POOL_MAX": "0",
                       "DJANGO_SETTINGS_MODULE": "brokerx.settings.dev"})
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.services.api_keys import api_key_create
    from portfolios.services import adjustment_post

    user_model = get_user_model()
    staff = user_model.objects.filter(is_staff=True).order_by("pk").first()
    made = []
    for n in range(native + alpaca):
        user = user_model.objects.create_user(email=f"soak-{n}@brokerx.example", password=None,
                                              email_verified_at=timezone.now())
        adjustment_post(staff_user=staff, user=user, kind="cash_available", asset="USD", amount=Decimal("5000000"),
                        reason="soak funding")
        for symbol in SYMBOLS:
            adjustment_post(staff_user=staff, user=user, kind="securities_available", asset=symbol,
                            amount=Decimal("20000"), reason="soak funding", unit_cost=Decimal("100"))
        key = api_key_create(user=user, name="soak", scope="trade")
        made.append({"key_id": key.api_key.key_id, "secret": key.secret, "user_id": user.pk})
    return made[:native], made[native:]


def reference_prices() -> dict[str, Decimal]:
    from orders.models import Instrument

    return {i.symbol: i.reference_price for i in Instrument.objects.filter(symbol__in=SYMBOLS)}


class Trader(threading.Thread):
    """Places, replaces and cancels orders at a steady pace through one door; keeps what it placed."""

    def __init__(self, door: str, credentials: dict, tally: Tally, stop: threading.Event, pause: float,
                 prices: dict[str, Decimal], rng: random.Random):
        super().__init__(daemon=True, name=f"trader-{door}-{credentials['user_id']}")
        self.door, self.credentials, self.tally, self.stop_event, self.pause = door, credentials, tally, stop, pause
        self.prices, self.rng = prices, rng
        self.open: dict[str, int] = {}  # order id -> version (native) or 0 (Alpaca)
        self.connection: http.client.HTTPConnection | None = None

    def headers(self) -> dict:
        if self.door == "alpaca":
            return {"APCA-API-KEY-ID": self.credentials["key_id"], "APCA-API-SECRET-KEY": self.credentials["secret"],
                    "Content-Type": "application/json"}
        return {"Authorization": f"ApiKey {self.credentials['key_id']}:{self.credentials['secret']}",
                "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int | None, dict | list | None]:
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=15)
            self.connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                    headers=self.headers())
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            # No answer: a web server killed with this request in flight, or not yet back.
            self.tally.record(self.door, f"no answer ({type(exc).__name__})")
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
            return None, None
        self.tally.record(self.door, response.status, raw, response.headers)
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None

    def order_body(self) -> dict:
        symbol = self.rng.choice(SYMBOLS)
        reference = self.prices[symbol]
        side = self.rng.choice(("buy", "sell"))
        qty = str(self.rng.randint(1, 20))
        if self.rng.random() < 0.1:
            return {"symbol": symbol, "side": side, "type": "market", "time_in_force": "ioc", "qty": qty}
        offset = Decimal(self.rng.randint(-100, 100)) / Decimal(10000)  # within 1% of the reference price
        price = (reference * (1 + offset)).quantize(Decimal("0.01"))
        body = {"symbol": symbol, "side": side, "type": "limit", "time_in_force": self.rng.choice(("day", "gtc")),
                "qty": qty, "limit_price": str(price)}
        roll = self.rng.random()
        if roll < 0.15:
            # Order classes and trailing stops (both doors take them): exits sell what the entry buys, or shares held.
            def near(percent: int) -> str:
                return str((price * (100 + percent) / 100).quantize(Decimal("0.01")))
            if side == "buy":
                legs = {"take_profit": {"limit_price": near(2)}, "stop_loss": {"stop_price": near(-2)}}
                if roll < 0.05:
                    legs.pop(self.rng.choice(("take_profit", "stop_loss")))
                return {**body, "order_class": "oto" if len(legs) == 1 else "bracket", **legs}
            if roll < 0.08:
                return {**body, "order_class": "oco", "limit_price": near(2), "take_profit": {"limit_price": near(2)},
                        "stop_loss": {"stop_price": near(-2)}}
            return {"symbol": symbol, "side": "sell", "type": "trailing_stop", "time_in_force": "gtc", "qty": qty,
                    "trail_percent": "1.5"}
        return body

    def act(self) -> None:
        roll = self.rng.random()
        if roll < 0.6 or not self.open:
            path = "/v2/orders" if self.door == "alpaca" else "/api/v1/orders"
            status, body = self.call("POST", path, self.order_body())
            if status in (200, 201) and isinstance(body, dict) and body.get("status") in ("new", "partially_filled",
                                                                                         "accepted"):
                self.open[str(body["id"])] = body.get("version", 0)
            return
        order_id, version = self.rng.choice(list(self.open.items()))
        if roll < 0.8:
            if self.door == "alpaca":
                status, _ = self.call("DELETE", f"/v2/orders/{order_id}")
            else:
                status, _ = self.call("POST", f"/api/v1/orders/{order_id}/cancel", {"version": version})
            if status is not None and status < 500:
                self.open.pop(order_id, None)
            return
        new_qty = str(self.rng.randint(21, 30))
        if self.door == "alpaca":
            status, body = self.call("PATCH", f"/v2/orders/{order_id}", {"qty": new_qty})
        else:
            status, body = self.call("PATCH", f"/api/v1/orders/{order_id}", {"version": version, "qty": new_qty})
        if status == 200 and isinstance(body, dict) and "version" in body:
            self.open[order_id] = body["version"]
        elif status is not None and status < 500:
            self.open.pop(order_id, None)  # filled, canceled or changed meanwhile: forget it

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.act()
            self.stop_event.wait(self.pause * self.rng.uniform(0.5, 1.5))


class Listener(threading.Thread):
    """A trader's /ws/orders/: counts the execution reports and reconnects when the socket drops."""

    def __init__(self, credentials: dict, stop: threading.Event, counts: Counter):
        super().__init__(daemon=True, name=f"listener-{credentials['user_id']}")
        self.credentials, self.stop_event, self.counts = credentials, stop, counts

    def run(self) -> None:
        from websockets.sync.client import connect

        token = f"{self.credentials['key_id']}:{self.credentials['secret']}"
        while not self.stop_event.is_set():
            try:
                with connect(f"ws://127.0.0.1:{WEB_PORT}/ws/orders/?token={token}", open_timeout=5) as socket:
                    self.counts["connections"] += 1
                    while not self.stop_event.is_set():
                        try:
                            message = json.loads(socket.recv(timeout=1))
                        except TimeoutError:
                            continue
                        if message.get("type") == "execution_report":
                            self.counts["reports"] += 1
            except Exception:  # noqa: BLE001  (any drop: count it and connect again)
                self.counts["drops"] += 1
                self.stop_event.wait(1)


class Faults(threading.Thread):
    """Injects one random fault every `interval` seconds (jittered), each kind in turn at first."""

    def __init__(self, platform: Platform, stop: threading.Event, interval: float, rng: random.Random):
        super().__init__(daemon=True, name="faults")
        self.platform, self.stop_event, self.interval, self.rng = platform, stop, interval, rng
        self.done: Counter = Counter()

    def processes(self, *, web: bool = False, celery_parent: bool = False, celery_pool: bool = False):
        found = []
        for process in self.platform.platform_processes():
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(process.cmdline())
                parent = " ".join(process.parent().cmdline()) if process.parent() else ""
                is_celery = "celery" in cmdline and " worker" in cmdline
                under_celery = "celery" in parent and " worker" in parent
                wanted = ((web and "uvicorn" in cmdline and "uvicorn" not in parent)
                          or (celery_parent and is_celery and not under_celery)
                          or (celery_pool and is_celery and under_celery))
                if wanted:
                    found.append(process)
        return found

    def kill(self, processes: list) -> bool:
        if not processes:
            return False
        victim = self.rng.choice(processes)
        with contextlib.suppress(psutil.Error):
            victim.kill()
            return True
        return False

    def inject(self, kind: str) -> bool:
        if kind == "web_server_killed":
            return self.kill(self.processes(web=True))
        if kind == "celery_pool_process_killed":
            return self.kill(self.processes(celery_pool=True))
        if kind == "celery_worker_killed":
            return self.kill(self.processes(celery_parent=True))
        if kind == "postgres_backends_terminated":
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres", autocommit=True) as conn:
                rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = 'brokerx' AND pid <> pg_backend_pid()").fetchall()
            return bool(rows)
        if kind == "redis_paused":
            self.platform.redis().execute_command("CLIENT", "PAUSE", "4000", "ALL")
            return True
        if kind == "redis_restarted":
            self.platform.redis_restart()
            return True
        if kind == "outbox_events_redelivered":
            with psycopg.connect(self.platform.database_url.replace("postgres://", "postgresql://"),
                                 autocommit=True) as conn:
                rows = conn.execute(
                    "UPDATE outbox_outboxevent SET status = 'pending', processed_at = NULL, available_at = now() "
                    "WHERE id IN (SELECT id FROM outbox_outboxevent WHERE status = 'done' "
                    "ORDER BY id DESC LIMIT 5) RETURNING id").fetchall()
            return bool(rows)
        raise ValueError(kind)

    def run(self) -> None:
        order = list(FAULTS)
        self.rng.shuffle(order)
        while not self.stop_event.wait(self.interval * self.rng.uniform(0.6, 1.4)):
            kind = order.pop(0) if order else self.rng.choice(FAULTS)
            try:
                if self.inject(kind):
                    self.done[kind] += 1
                    say(f"fault: {kind}")
            except Exception as exc:  # noqa: BLE001  (a fault that could not be injected is reported, not fatal)
                say(f"fault {kind} not injected: {exc}")


def settle(platform: Platform, timeout: float) -> int:
    """Wait until every outbox event is handled (the matching, the reports, the e-mails); returns those left."""
    url = platform.database_url.replace("postgres://", "postgresql://")
    deadline = time.monotonic() + timeout
    pending = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
            pending = conn.execute("SELECT count(*) FROM outbox_outboxevent WHERE status = 'pending' "
                                   "AND available_at <= now()").fetchone()[0]
            if pending == 0:
                return 0
        time.sleep(2)
    return pending


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="how long the traders trade under faults")
    parser.add_argument("--rate", type=float, default=30, help="actions per second over all traders")
    parser.add_argument("--native", type=int, default=6, help="native-API traders (each with a /ws/orders/ listener)")
    parser.add_argument("--alpaca", type=int, default=2, help="traders on /v2")
    parser.add_argument("--fault-every", type=float, default=12, help="seconds between faults (jittered)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    rng = random.Random(seed)
    say(f"seed {seed}; {args.seconds:.0f}s, {args.rate:.0f} actions/s, {args.native} native + {args.alpaca} /v2 "
        f"traders, a fault every ~{args.fault_every:.0f}s; logs in {SOAK_DIR}")

    platform = Platform()
    tally, listeners_counts = Tally(), Counter()
    stop = threading.Event()
    faults, orders, trades, recovered, first_status, left = None, {}, 0, False, None, -1
    checked = subprocess.CompletedProcess([], 1, "", "the soak did not get as far as the check")
    try:
        platform.start()
        native, alpaca = setup_traders(platform, args.native, args.alpaca)
        prices = reference_prices()
        say(f"platform up on 127.0.0.1:{WEB_PORT}; reference prices { {k: str(v) for k, v in prices.items()} }")
        pause = (args.native + args.alpaca) / args.rate
        threads = [Trader("native", c, tally, stop, pause, prices, random.Random(rng.random())) for c in native]
        threads += [Trader("alpaca", c, tally, stop, pause, prices, random.Random(rng.random())) for c in alpaca]
        threads += [Listener(c, stop, listeners_counts) for c in native]
        faults = Faults(platform, stop, args.fault_every, random.Random(rng.random()))
        for thread in [*threads, faults]:
            thread.start()
        stop.wait(args.seconds)
        stop.set()
        joined_by = time.monotonic() + 30
        for thread in [*threads, faults]:
            thread.join(timeout=max(0.1, joined_by - time.monotonic()))

        # Recovery: the platform answers again by itself.
        recovered_at = time.monotonic() + 120
        while not platform.ready() and time.monotonic() < recovered_at:
            time.sleep(1)
        recovered = platform.ready()
        probe = Trader("native", native[0], tally, threading.Event(), 0, prices, random.Random(seed))
        first_status, _ = probe.call("POST", "/api/v1/orders", probe.order_body())
        left = settle(platform, timeout=180)
        checked = subprocess.run(
            [sys.executable, "manage.py", "check_invariants", "--json"], cwd=BASE_DIR, capture_output=True, text=True,
            env={**os.environ, "DATABASE_URL": platform.database_url, "REDIS_URL": platform.redis_url})
        with psycopg.connect(platform.database_url.replace("postgres://", "postgresql://")) as conn:
            orders = dict(conn.execute("SELECT status, count(*) FROM orders_order o JOIN accounts_user u "
                                       "ON u.id = o.user_id WHERE u.email LIKE 'soak-%%' GROUP BY status").fetchall())
            trades = conn.execute("SELECT count(*) FROM matching_trade").fetchone()[0]
    finally:
        stop.set()
        platform.stop()

    say("faults injected: " + (", ".join(f"{k} {faults.done[k]}" for k in FAULTS) if faults else "none"))
    say(f"orders of the soak traders by status: {orders}; trades (all traders, the simulator's too): {trades}")
    answers = sorted(tally.answers.items(), key=lambda item: (item[0][0], str(item[0][1])))
    say("answers: " + "; ".join(f"{door} {status}: {count}" for (door, status), count in answers))
    say(f"/ws/orders/ listeners: {dict(listeners_counts)}")
    say(f"after the soak: platform ready again: {recovered}; first order: {first_status}; outbox events left: {left}")
    violations = []
    with contextlib.suppress(ValueError):
        violations = json.loads(checked.stdout or "[]")
    say(f"invariants: {'clean' if checked.returncode == 0 else 'DRIFT'} "
        f"({len(violations)} violation(s)){': ' + checked.stdout[:2000] if checked.returncode else ''}"
        f"{checked.stderr[-1000:] if checked.returncode and not violations else ''}")
    if tally.undocumented:
        say(f"undocumented server errors: {len(tally.undocumented)}: {tally.undocumented[:5]}")
    ok = (checked.returncode == 0 and not tally.undocumented and recovered and first_status in (200, 201)
          and left == 0)
    say("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
