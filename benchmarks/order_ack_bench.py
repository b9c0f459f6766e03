"""Order ACK benchmark: authenticated, risk-checked, durable order placement over HTTP against a running platform.

    make run                                   # in one terminal (embedded Postgres/Redis, workers, simulator)
    make bench-orders                          # in another: .venv/bin/python benchmarks/order_ack_bench.py

It creates (once) a funded benchmark trader with a trade-scoped API key in the platform's database, then
drives POST /api/v1/orders on loopback with two real load generators:
  1. wrk, 100 connections, as fast as the server answers: orders/s and latency percentiles;
  2. hey, a fixed 300 orders/s: ACK latency p50/p95/p99 at that offered rate.
Each order is an IOC limit buy far below the market: it is accepted, reserved and queued for matching, which
cancels it unfilled and releases its cash, so every request runs the full accept path (authentication,
pre-trade checks, reservation, order, event and outbox written in one transaction) and runs leave no resting
orders behind to slow the next run. Afterwards it checks that the books still balance.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
# The platform started by `make run` without DATABASE_URL/REDIS_URL uses the embedded servers.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/brokerx")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:56379/0")
os.environ.setdefault("DB_POOL_MAX", "0")  # a short script: plain connections

BENCH_EMAIL = "bench-trader-{n}@brokerx.example"
SYMBOL = "AAPL"
TRADERS = 50  # clients are spread over accounts, as a broker's flow is: one account's orders serialise on its cash


def setup_traders(count: int) -> tuple[list[str], dict]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.services.api_keys import api_key_create
    from orders.checks import price_band
    from orders.selectors import instrument_get
    from portfolios.services import adjustment_post

    user_model = get_user_model()
    staff = user_model.objects.filter(is_staff=True).order_by("pk").first()
    keys = []
    for n in range(count):
        trader, created = user_model.objects.get_or_create(
            email=BENCH_EMAIL.format(n=n), defaults={"email_verified_at": timezone.now(), "first_name": "Bench"})
        if created:
            adjustment_post(staff_user=staff, user=trader, kind="cash_available", asset="USD",
                            amount=Decimal("500000000"), reason="benchmark funding")
        key = api_key_create(user=trader, name="order ACK benchmark", scope="trade")
        keys.append(f"ApiKey {key.api_key.key_id}:{key.secret}")
    instrument = instrument_get(SYMBOL)
    if instrument is None:
        sys.exit(f"symbol {SYMBOL} not found: start the platform with `make run` first")
    # Halfway down the band: far below the market (it never fills), and inside the band however the simulator
    # moves the reference price during the run.
    low, _high = price_band(instrument)
    tick = instrument["tick_size"]
    price = ((instrument["reference_price"] + low) / 2 / tick).to_integral_value() * tick
    body = {"symbol": SYMBOL, "side": "buy", "type": "limit", "time_in_force": "ioc", "qty": "1",
            "limit_price": str(price)}
    return keys, body


def books_balance() -> dict:
    from portfolios.selectors import books_balance as totals

    return {asset: str(total) for asset, total in totals().items()}


def run_wrk(url: str, keys: list[str], body: dict, *, connections: int, duration: int) -> dict:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    script.write(
        f"local keys = {{{', '.join(json.dumps(k) for k in keys)}}}\n"
        f"local body = {json.dumps(json.dumps(body))}\n"
        "local i = math.random(#keys)\n"
        "request = function()\n"
        "  i = i % #keys + 1\n"
        '  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = keys[i]}, body)\n'
        "end\n"
    )
    script.close()
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name,
                          f"{url}/api/v1/orders"], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", out, re.M))
    return {"orders_per_s": rate, "non_2xx": int(errors.group(1)) if errors else 0, "latency": percentiles,
            "raw": out}


def run_hey(url: str, keys: list[str], body: dict, *, rate: int, duration: int) -> dict:
    """A fixed offered rate split over 10 hey processes (10 accounts); exact percentiles from every response."""
    streams = 10
    per_stream = rate / streams
    procs = [subprocess.Popen(["hey", "-z", f"{duration}s", "-c", "2", "-q", str(per_stream / 2), "-m", "POST",
                               "-T", "application/json", "-H", f"Authorization: {keys[n]}", "-d", json.dumps(body),
                               "-o", "csv", f"{url}/api/v1/orders"], stdout=subprocess.PIPE, text=True)
             for n in range(streams)]
    latencies, statuses = [], {}
    for proc in procs:
        out, _ = proc.communicate()
        for line in out.splitlines()[1:]:
            cols = line.split(",")
            latencies.append(float(cols[0]) * 1000)
            statuses[cols[6]] = statuses.get(cols[6], 0) + 1
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else 0.0

    return {"offered_per_s": rate, "achieved_per_s": len(latencies) / duration,
            "latency_ms": {"50": pct(50), "95": pct(95), "99": pct(99), "max": latencies[-1] if latencies else 0},
            "statuses": statuses, "raw": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BROKERX_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: `make bench-orders` installs it (Debian package {tool})")

    keys, body = setup_traders(TRADERS)
    print(f"order: {json.dumps(body)}")
    throughput = run_wrk(args.url, keys, body, connections=args.connections, duration=args.duration)
    print(f"\n[wrk] {args.connections} connections, {args.duration}s: {throughput['orders_per_s']:.0f} orders/s, "
          f"non-2xx {throughput['non_2xx']}, latency {throughput['latency']}")
    fixed = run_hey(args.url, keys, body, rate=args.rate, duration=args.duration)
    lat = fixed["latency_ms"]
    print(f"[hey] offered {args.rate}/s for {args.duration}s: achieved {fixed['achieved_per_s']:.0f}/s, "
          f"p50 {lat.get('50', 0):.1f} ms, p95 {lat.get('95', 0):.1f} ms, p99 {lat.get('99', 0):.1f} ms, "
          f"statuses {fixed['statuses']}")
    if args.verbose:
        print(throughput["raw"], fixed["raw"])
    print(f"books per asset (must be all zero): {books_balance()}")


if __name__ == "__main__":
    main()
