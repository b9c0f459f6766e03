"""WebSocket fan-out benchmark: N concurrent /ws/market/ subscribers to one symbol receive quote updates.

    .venv/bin/python benchmarks/ws_fanout_bench.py --clients 1000 --updates 60 --rate 10

Loopback only. It starts uvicorn (brokerx.asgi, one worker) as a subprocess on a free port in 18200-18299,
opens `--clients` WebSocket connections from `--procs` client processes, each subscribing to the quote stream
of a benchmark symbol, then publishes `--updates` quote changes at `--rate` per second through the real
publishing path (matching.market.market_publish: Redis lock, diff, versioned snapshot, pub/sub group send).
Delivery latency = receive time in the client - the message's `timestamp` (taken in market_publish before
any Redis work), on one clock. It prints p50/p99/max and how many messages were delivered, in order.

No database is touched: the symbol's instrument entry and its first snapshot are written to Redis before the
clients subscribe. Redis: REDIS_URL (default redis://127.0.0.1:6379/15), under key and channel prefixes of
its own. Target (product brief): p99 <= 250 ms with 1,000 subscribers. Bounded: --timeout seconds overall.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ["CACHE_KEY_PREFIX"] = "bxbench"
os.environ["CHANNELS_PREFIX"] = "bxbench"
os.environ.setdefault("LOG_LEVEL", "WARNING")
SYMBOL = "BENCHX"


def _free_port() -> int:
    for port in range(18200, 18300):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18200-18299")


def _setup_django():
    import django

    django.setup()


def _seed_symbol(book, grid) -> None:
    """The instrument entry the consumer checks a symbol against, and a first published quote (no database)."""
    from django.core.cache import cache

    from matching.market import market_publish
    from orders.selectors import INSTRUMENT_CACHE_KEY

    cache.delete_pattern(f"md:{SYMBOL}:*")
    cache.set(INSTRUMENT_CACHE_KEY.format(symbol=SYMBOL), {
        "id": 0, "symbol": SYMBOL, "currency": "USD", "tick_size": grid.tick_size, "lot_size": grid.lot_size,
        "reference_price": Decimal("100.00"), "last_price": None, "price_band_pct": Decimal("0.10"),
        "max_order_notional": Decimal("1000000"), "max_order_qty": Decimal("100000"), "trading_status": "open",
        "is_tradable": True}, timeout=3600)
    market_publish(symbol=SYMBOL, book=book, grid=grid, trades=[])


async def _clients(port: int, count: int, updates: int, idle_timeout: float, ready, go, results) -> None:
    import websockets

    latencies: list[float] = []
    out_of_order = 0
    received = 0

    async def one(index: int) -> None:
        nonlocal out_of_order, received
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", open_timeout=60, max_queue=None,
                                      ping_interval=None) as ws:
            await ws.recv()  # hello
            await ws.send(json.dumps({"action": "subscribe", "symbols": [SYMBOL], "streams": ["quote"]}))
            await ws.recv()  # subscribed
            last = json.loads(await ws.recv())["seq"]  # the snapshot
            subscribed.append(index)
            mine = 0
            while mine < updates:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=idle_timeout)
                except TimeoutError:
                    return  # the rest was lost: counted as not delivered
                now = time.time()
                message = json.loads(raw)
                if message["type"] != "quote":
                    continue
                received += 1
                mine += 1
                latencies.append(now - datetime.fromisoformat(message["timestamp"]).timestamp())
                if message["seq"] != last + 1:
                    out_of_order += 1
                last = message["seq"]

    subscribed: list[int] = []
    tasks = []
    for index in range(count):
        tasks.append(asyncio.create_task(one(index)))
        if index % 50 == 49:
            await asyncio.sleep(0.05)  # a ramp, not a SYN flood
    while len(subscribed) < count:
        if any(t.done() and t.exception() for t in tasks):
            raise next(t.exception() for t in tasks if t.done() and t.exception())
        await asyncio.sleep(0.05)
    ready.set()
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    _, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    results.put({"latencies": latencies, "received": received, "out_of_order": out_of_order,
                 "unfinished": len(pending)})


def _client_process(port, count, updates, idle_timeout, ready, go, results) -> None:
    asyncio.run(_clients(port, count, updates, idle_timeout, ready, go, results))


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0, help="quote updates per second")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--deflate", action="store_true",
                        help="let the server compress each message per connection (permessage-deflate)")
    parser.add_argument("--profile", help="write a cProfile of the server (one worker) to this file")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up after this many seconds")
    args = parser.parse_args()

    _setup_django()
    from matching.engine import Grid, OrderBook
    from matching.market import market_publish

    started = time.monotonic()
    grid = Grid(Decimal("0.01"), Decimal("1"))
    book = OrderBook(SYMBOL)
    book.submit(1, 1, "sell", "limit", "gtc", 100, 10100)
    book.submit(2, 1, "buy", "limit", "gtc", 100, 9900)
    _seed_symbol(book, grid)

    port = _free_port()
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    server = subprocess.Popen(
        [sys.executable, *profile, "-m", "uvicorn", "brokerx.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--ws", "websockets-sansio", "--lifespan", "off", "--log-level", "warning",
         "--no-access-log", "--ws-ping-interval", "0", "--workers", str(args.workers),
         "--ws-per-message-deflate", "true" if args.deflate else "false"],
        cwd=BASE_DIR, env=os.environ.copy(), start_new_session=True)
    procs = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

        ctx = mp.get_context("spawn")
        go, results = ctx.Event(), ctx.Queue()
        readies = []
        per_proc = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
        for count in per_proc:
            ready = ctx.Event()
            idle = 5.0 + 2.0 / args.rate
            proc = ctx.Process(target=_client_process, args=(port, count, args.updates, idle, ready, go, results),
                               daemon=True)
            proc.start()
            procs.append(proc)
            readies.append(ready)
        for ready in readies:
            if not ready.wait(timeout=max(1.0, args.timeout - (time.monotonic() - started))):
                raise RuntimeError("clients did not all subscribe in time")
        print(f"{args.clients} subscribers on {args.workers} web process(es) connected in "
              f"{time.monotonic() - started:.1f} s; publishing "
              f"{args.updates} quote updates at {args.rate:g}/s", flush=True)

        interval = 1.0 / args.rate
        publish_ms = []
        next_at = time.monotonic()
        for update in range(args.updates):
            # Alternately improve the bid and the ask by one tick: every update changes the quote.
            order_id = 100 + update
            if update % 2:
                book.submit(order_id, 2, "sell", "limit", "gtc", 1, book.best_ask() - 1)
            else:
                book.submit(order_id, 2, "buy", "limit", "gtc", 1, book.best_bid() + 1)
            t0 = time.perf_counter()
            market_publish(symbol=SYMBOL, book=book, grid=grid, trades=[])
            publish_ms.append((time.perf_counter() - t0) * 1000)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        go.set()
        collected = [results.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        os.killpg(server.pid, signal.SIGINT if args.profile else signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

    latencies = [x for c in collected for x in c["latencies"]]
    expected = args.clients * args.updates
    received = sum(c["received"] for c in collected)
    gaps = sum(c["out_of_order"] for c in collected)
    if not latencies:
        print("no quote was delivered")
        return 1
    p50, p99 = _percentile(latencies, 50) * 1000, _percentile(latencies, 99) * 1000
    print(f"delivered {received}/{expected} quote messages ({gaps} sequence gaps) to {args.clients} subscribers")
    print(f"delivery latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms, "
          f"mean {statistics.fmean(latencies) * 1000:.1f} ms")
    print(f"publish call (lock, diff, snapshot, group send): p50 {_percentile(publish_ms, 50):.2f} ms, "
          f"p99 {_percentile(publish_ms, 99):.2f} ms")
    print(f"target p99 <= 250 ms: {'met' if p99 <= 250 and received == expected else 'NOT met'}")
    return 0 if p99 <= 250 and received == expected else 1


if __name__ == "__main__":
    sys.exit(main())
