"""What accepting one order costs Postgres alone, against the simplest order-like transaction on the same server.

    make run                                          # in one terminal
    .venv/bin/python benchmarks/accept_floor_bench.py # in another (needs pgbench: `make bench-tools` installs it)

Runs pgbench on loopback against the platform's database with two scripts, one after the other:
  1. the accept statement (`orders_place(...)` and the order's `accepted` event) exactly as the accept path
     sends it (ADR 007), for the order-benchmark traders and the order of benchmarks/order_ack_bench.py;
  2. the brief's yardstick: UPDATE a balance, INSERT an order, INSERT an outbox row, on scratch tables.
Both run in a transaction that then runs every deferred check (`SET CONSTRAINTS ALL IMMEDIATE` after the writes:
the ledger's commit-time entry check runs there) and rolls back: nothing is written, nothing reaches the workers, and
the commit's WAL flush is left out of both alike. Printed per script: transactions/s, mean latency, and the
Postgres CPU per transaction (all of the server's processes, less what it used at rest just before).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from order_ack_bench import SYMBOL, TRADERS, setup_traders  # noqa: E402

SCRATCH = """
CREATE SCHEMA IF NOT EXISTS bench_floor;
CREATE TABLE IF NOT EXISTS bench_floor.balance (id int PRIMARY KEY, amount numeric NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor.orders (id bigserial PRIMARY KEY, account int NOT NULL, qty numeric NOT NULL,
                                               price numeric NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor.outbox (id bigserial PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor.traders (i int PRIMARY KEY, user_id bigint NOT NULL);
TRUNCATE bench_floor.traders;
INSERT INTO bench_floor.balance SELECT g, 1e9 FROM generate_series(1, 50) g ON CONFLICT DO NOTHING;
"""


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every process whose command line names postgres."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"postgres" not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def pgbench(dsn: dict, script: str, *, clients: int, duration: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    idle_start = postgres_cpu_seconds()
    time.sleep(3)
    idle_rate = (postgres_cpu_seconds() - idle_start) / 3
    proc = subprocess.Popen(["pgbench", "-n", "-h", dsn["host"], "-p", str(dsn["port"]), "-U", dsn["user"],
                             "-c", str(clients), "-j", "1", "-T", str(duration), "-f", f.name, dsn["dbname"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Sampled while pgbench runs: its server processes (and their CPU counters) end with it.
    time.sleep(1)
    started, cpu_start = time.monotonic(), postgres_cpu_seconds()
    time.sleep(duration - 2)
    elapsed, cpu = time.monotonic() - started, postgres_cpu_seconds() - cpu_start
    out, err = proc.communicate()
    if proc.returncode:
        sys.exit(f"pgbench failed:\n{err}")
    os.unlink(f.name)
    tps = float(next(line for line in out.splitlines() if line.startswith("tps")).split()[2])
    latency = float(next(line for line in out.splitlines() if line.startswith("latency average")).split()[3])
    busy = max(cpu - idle_rate * elapsed, 0.0)
    return {"tps": tps, "latency_ms": latency, "pg_ms_per_tx": 1000 * busy / (tps * elapsed),
            "pg_cores": busy / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per script")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("pgbench") is None:
        sys.exit("pgbench is missing: `make bench-tools` installs it (Debian package postgresql-client)")

    keys, body = setup_traders(TRADERS)
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.db import connection

    from orders.selectors import instrument_get
    from orders.services import ACCEPT_SQL, OrderRequest, Placement, order_check_against

    users = list(get_user_model().objects.filter(email__startswith="bench-trader-").values_list("pk", flat=True))
    request = OrderRequest(symbol=SYMBOL, side=body["side"], type=body["type"], time_in_force=body["time_in_force"],
                           qty=Decimal(body["qty"]), limit_price=Decimal(body["limit_price"]))
    instrument, price, request = order_check_against(instrument_get(SYMBOL), request=request)
    with connection.cursor() as cursor:
        cursor.execute(SCRATCH)
        cursor.execute("INSERT INTO bench_floor.traders SELECT i - 1, u "
                       "FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(u, i)", [users])
        # The statement the accept path sends, with this trader's id looked up by pgbench's random index.
        params = Placement.of(user_id=0, request=request, instrument=instrument, price=price).params()
        statement = " ".join(ACCEPT_SQL.replace("orders_place(%s,", "orders_place(0,", 1).split())
        call = cursor.mogrify(statement, params[1:]).replace(
            "orders_place(0,", "orders_place((SELECT user_id FROM bench_floor.traders WHERE i = :i),", 1)
    params_dsn = connection.get_connection_params()
    dsn = {"host": params_dsn.get("host", "127.0.0.1"), "port": params_dsn.get("port", 5432),
           "user": params_dsn.get("user", "postgres"), "dbname": params_dsn["dbname"]}

    scripts = {
        "orders_place (the accept path's one statement)": f"\\set i random(0, {len(users) - 1})\n"
        f"BEGIN;\n{call};\nSET CONSTRAINTS ALL IMMEDIATE;\nROLLBACK;\n",
        "UPDATE balance + INSERT order + INSERT outbox": "\\set i random(1, 50)\n"
        "BEGIN;\n"
        "UPDATE bench_floor.balance SET amount = amount - 180 WHERE id = :i;\n"
        "INSERT INTO bench_floor.orders (account, qty, price, created_at) VALUES (:i, 1, 180, now());\n"
        "INSERT INTO bench_floor.outbox (topic, payload) VALUES ('order.created', '{\"account\": 1}');\n"
        "SET CONSTRAINTS ALL IMMEDIATE;\nROLLBACK;\n",
    }
    print(f"{args.clients} clients, {args.duration}s each, rolled back (nothing written)")
    for name, script in scripts.items():
        r = pgbench(dsn, script, clients=args.clients, duration=args.duration)
        print(f"[{name}] {r['tps']:.0f} tx/s, mean {r['latency_ms']:.2f} ms, Postgres {r['pg_ms_per_tx']:.2f} ms "
              f"CPU per tx ({r['pg_cores']:.2f} cores)")
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA bench_floor CASCADE")


if __name__ == "__main__":
    main()
