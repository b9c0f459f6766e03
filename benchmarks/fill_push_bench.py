"""Fill -> owner's WebSocket latency: crossing orders over HTTP at a fixed rate, fills timed on /ws/orders/.

    make run                                         # in one terminal
    .venv/bin/python benchmarks/fill_push_bench.py --rate 300 --duration 20

It funds 20 buyers (cash) and 20 sellers (shares) in the platform's database, opens each trader's private
stream (`/ws/orders/?token=<key_id>:<secret>`), then posts pairs of crossing limit orders (a sell, then a buy
at the same price) at `--rate` orders/s. For every `trade` execution report received, latency = receive
time - the report's `timestamp`, which the matching worker sets inside the transaction that records the
fill; so the figure is commit + push + delivery, on one clock (loopback). Prints p50/p95/p99 and the rate
actually achieved. Loopback only; bounded by --duration.
"""
import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import queue
import statistics
import sys
import threading
import time
import urllib.parse
from datetime import datetime
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/brokerx")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:56379/0")
os.environ.setdefault("DB_POOL_MAX", "0")  # a short script: plain connections
SYMBOL = "MSFT"


def setup(pairs: int) -> tuple[list[str], list[str], str]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.services.api_keys import api_key_create
    from orders.selectors import instrument_get
    from portfolios.services import adjustment_post

    users = get_user_model()
    staff = users.objects.filter(is_staff=True).order_by("pk").first()
    buyers, sellers = [], []
    for n in range(pairs):
        for role, keys in (("buyer", buyers), ("seller", sellers)):
            user, created = users.objects.get_or_create(
                email=f"push-{role}-{n}@bench.example", defaults={"email_verified_at": timezone.now()})
            if created:
                kind, asset, amount = (("cash_available", "USD", Decimal("100000000")) if role == "buyer"
                                       else ("securities_available", SYMBOL, Decimal("1000000")))
                extra = {"unit_cost": Decimal("100")} if role == "seller" else {}
                adjustment_post(staff_user=staff, user=user, kind=kind, asset=asset, amount=amount,
                                reason="benchmark funding", **extra)
            key = api_key_create(user=user, name="fill push benchmark", scope="trade")
            keys.append(f"{key.api_key.key_id}:{key.secret}")
    return buyers, sellers, str(instrument_get(SYMBOL)["reference_price"].quantize(Decimal("0.01")))


async def listen(url: str, token: str, latencies: list, stop: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(f"{url}/ws/orders/?token={token}", max_size=None) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            received = time.time()
            message = json.loads(raw)
            if message.get("type") == "execution_report" and message.get("exec_type") == "trade":
                sent = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")).timestamp()
                latencies.append((received - sent) * 1000)


POSTERS = 32  # posting threads, each with one kept-alive connection (as an integrator's HTTP client keeps them)


def place(url: str, buyers: list, sellers: list, price: str, rate: int, duration: float, result: dict) -> None:
    """Post crossing pairs at `rate` orders/s for `duration` seconds; `result` receives the counts at the end.

    The pacing loop hands each pair to a pool of POSTERS threads, so a slow answer does not hold back the next
    pair; each thread keeps its connection open across orders and posts the buy once the sell is accepted."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit("--url must be an http(s) URL")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    counts, statuses, lock = {"ok": 0, "error": 0}, {}, threading.Lock()
    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def poster() -> None:
        connection = None
        while (job := jobs.get()) is not None:
            for key, side in job:  # the sell, then the buy that crosses it once the sell is accepted
                body = json.dumps({"symbol": SYMBOL, "side": side, "type": "limit",
                                   "time_in_force": "ioc" if side == "buy" else "day", "qty": "1",
                                   "limit_price": price}).encode()
                outcome = None
                try:
                    connection = connection or connection_class(parts.hostname, parts.port, timeout=10)
                    connection.request("POST", f"{parts.path.rstrip('/')}/api/v1/orders", body=body, headers={
                        "Authorization": f"ApiKey {key}", "Content-Type": "application/json"})
                    response = connection.getresponse()
                    answer = response.read()
                    if response.status >= 400:
                        outcome = (response.status, answer[:120])
                except Exception as exc:
                    outcome = (type(exc).__name__, str(exc)[:120])
                    if connection is not None:
                        connection.close()
                    connection = None
                with lock:
                    counts["ok" if outcome is None else "error"] += 1
                    if outcome is not None:
                        statuses.setdefault(*outcome)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=poster, daemon=True) for _ in range(POSTERS)]
    for thread in threads:
        thread.start()
    interval, started, n = 2.0 / rate, time.monotonic(), 0  # a pair every `interval`
    while time.monotonic() - started < duration:
        pair = n % len(buyers)
        jobs.put(((sellers[pair], "sell"), (buyers[pair], "buy")))
        n += 1
        time.sleep(max(0.0, started + n * interval - time.monotonic()))
    n *= 2
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join(timeout=10)
    result.update(counts, offered=n, statuses=statuses)


async def main_async(args) -> None:
    buyers, sellers, price = await asyncio.to_thread(setup, args.pairs)
    ws_url = (args.ws_url or args.url).replace("http://", "ws://")
    latencies: list[float] = []
    stop = asyncio.Event()
    listeners = [asyncio.create_task(listen(ws_url, key, latencies, stop)) for key in buyers + sellers]
    await asyncio.sleep(2)
    # The orders are posted from another process: posting threads here would hold this process's GIL while the
    # listeners wait for it, and the delay would be counted as push latency.
    counts = multiprocessing.Manager().dict()
    started = time.monotonic()
    poster = multiprocessing.Process(target=place, args=(args.url, buyers, sellers, price, args.rate, args.duration,
                                                         counts))
    poster.start()
    await asyncio.to_thread(poster.join)
    elapsed = time.monotonic() - started
    await asyncio.sleep(5)
    stop.set()
    await asyncio.gather(*listeners, return_exceptions=True)
    latencies.sort()
    print(f"offered {counts['offered'] / args.duration:.0f} orders/s, accepted {counts['ok'] / elapsed:.0f}/s "
          f"({counts['error']} errors {counts.get('statuses', {})}); {len(latencies)} fill reports received")
    if latencies:
        pct = {p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] for p in (50, 95, 99)}
        print(f"fill -> owner's socket: p50 {pct[50]:.1f} ms, p95 {pct[95]:.1f} ms, p99 {pct[99]:.1f} ms, "
              f"max {latencies[-1]:.1f} ms, mean {statistics.fmean(latencies):.1f} ms (target p99 <= 100 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("BROKERX_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--ws-url", default=os.environ.get("BROKERX_WS_URL"),
                        help="where the WebSockets are served, when not at --url")
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--pairs", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
