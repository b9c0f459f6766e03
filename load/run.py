"""Run one load scenario headless for a bounded time against a running platform, then print its verdict.

    .venv/bin/python load/run.py steady|ramp|fanout [--users N] [--run-time 60s] [--credentials FILE] [-- LOCUST ARGS]

BROKERX_URL names the platform (default http://127.0.0.1:8000, `make run`); BROKERX_WS_URL its WebSockets when
they are served elsewhere. Unless --credentials names a file written by load/traders.py (e.g. inside the compose
stack), it first creates the traders in the platform's database (DATABASE_URL / REDIS_URL, as load/traders.py).
Exit code: Locust's, i.e. 1 when a threshold of the README's "Load tests" table failed.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SCENARIOS = {
    # locustfile, users, spawn rate, run time
    "steady": ("load/steady.py", 60, 10, "60s"),
    "ramp": ("load/ramp.py", None, None, "150s"),  # the shape sets users; the run time is only a cap
    "fanout": ("load/fanout.py", 200, 50, "60s"),
}
DEFAULT_CREDENTIALS = BASE_DIR / ".data" / "load" / "credentials.json"


def locust_command(scenario: str, *, url: str, users: int | None, run_time: str | None, extra: list[str]) -> list[str]:
    locustfile, default_users, spawn_rate, default_run_time = SCENARIOS[scenario]
    command = [sys.executable, "-m", "locust", "-f", str(BASE_DIR / locustfile), "--headless", "--host", url,
               "--run-time", run_time or default_run_time, "--stop-timeout", "10", "--only-summary",
               "--loglevel", "WARNING"]
    if default_users is not None:
        command += ["--users", str(users or default_users), "--spawn-rate", str(spawn_rate)]
    return command + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--users", type=int, help="simulated users (not for ramp: its shape adds them)")
    parser.add_argument("--run-time", help="e.g. 30s, 2m (Locust's --run-time)")
    parser.add_argument("--credentials", help="traders written by load/traders.py; default: create them now")
    parser.add_argument("locust_args", nargs="*", help="after --: passed to Locust as they are")
    args = parser.parse_args(argv)
    url = os.environ.get("BROKERX_URL", "http://127.0.0.1:8000")
    credentials = args.credentials
    if credentials is None:
        credentials = str(DEFAULT_CREDENTIALS)
        subprocess.run([sys.executable, str(BASE_DIR / "load" / "traders.py"), "--out", credentials],
                       cwd=BASE_DIR, check=True)
    env = {**os.environ, "BROKERX_LOAD_CREDENTIALS": str(Path(credentials).resolve())}
    command = locust_command(args.scenario, url=url, users=args.users, run_time=args.run_time,
                             extra=args.locust_args)
    print(f"{args.scenario} against {url}: {' '.join(command[1:])}", flush=True)
    return subprocess.call(command, cwd=BASE_DIR, env=env)


if __name__ == "__main__":
    sys.exit(main())
