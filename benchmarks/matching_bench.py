"""Durable matching benchmark: orders/s matched and settled through the matching worker's code path, on Postgres.

    .venv/bin/python benchmarks/matching_bench.py --orders 3000 --symbols 1
    .venv/bin/python benchmarks/matching_bench.py --orders 3000 --symbols 4

It uses a database of its own (`brokerx_bench`, or $BENCH_DATABASE, on $BENCH_DATABASE_SERVER, default the
local 127.0.0.1:5432; created and migrated on first use) so no running worker competes for its orders. For each
symbol it places `--orders` limit orders through the normal accept path (not timed): buys and sells from
20 traders each, around one price, so about half of them trade. Then it times the matching workers: one
process per symbol (at most two run at once on two cores... they simply share the cores) running the
same drain the Celery `critical` workers run (`outbox_drain(queue="critical", partition_key=symbol)`),
each batch one transaction with trades, order states, events, ledger settlement, execution reports and
outbox events. It prints orders/s and trades/s, then checks the books balance.

    .venv/bin/python benchmarks/matching_bench.py --orders 3000 --symbols 1 --via celery

runs the same drains through a real Celery worker (prefork, one pool process per symbol) fed by the broker on
$REDIS_URL (default Redis database 15 on 127.0.0.1:6379): the clock runs from the kicks until no order event of
the run is left pending, so task hand-off, the worker's own overhead and re-kicks are included.
"""
import argparse
import os
import random
import subprocess
import sys
import time
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
_server = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
_database = os.environ.get("BENCH_DATABASE", "brokerx_bench")
os.environ["DATABASE_URL"] = f"{_server}/{_database}"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("DB_POOL_MAX", "0")


def _ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{_server.replace('postgres://', 'postgresql://')}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [_database]).fetchone():
            conn.execute(f'CREATE DATABASE "{_database}"')


def _setup():
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def prepare(symbols: list[str], orders_per_symbol: int, seed: int) -> int:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    import orders.services as order_services
    from orders.models import Instrument
    from orders.selectors import instrument_cache_invalidate
    from portfolios.services import adjustment_post

    users = get_user_model()
    staff, _ = users.objects.get_or_create(email="bench-staff@brokerx.example", defaults={"is_staff": True})
    stamp = int(time.time())
    buyers, sellers = [], []
    for n in range(20):
        buyer = users.objects.create(email=f"b{stamp}-{n}@bench.example", email_verified_at=timezone.now())
        seller = users.objects.create(email=f"s{stamp}-{n}@bench.example", email_verified_at=timezone.now())
        adjustment_post(staff_user=staff, user=buyer, kind="cash_available", asset="USD",
                        amount=Decimal("100000000"), reason="benchmark funding")
        for symbol in symbols:
            adjustment_post(staff_user=staff, user=seller, kind="securities_available", asset=symbol,
                            amount=Decimal("1000000"), reason="benchmark funding", unit_cost=Decimal("100"))
        buyers.append(buyer)
        sellers.append(seller)
    for symbol in symbols:
        Instrument.objects.update_or_create(symbol=symbol, defaults={
            "name": f"Benchmark {symbol}", "reference_price": Decimal("100.00"), "last_price": None,
            "price_band_pct": Decimal("0.20"), "trading_status": "open"})
        instrument_cache_invalidate(symbol)

    order_services.kick_matching = lambda symbol: None  # nothing may match before the clock starts
    rng = random.Random(seed)
    placed = 0
    for i in range(orders_per_symbol):
        for symbol in symbols:
            side = "buy" if i % 2 else "sell"
            offset = Decimal(rng.randint(-5, 5)) / 100
            price = Decimal("100.00") + (offset if side == "buy" else -offset)
            user = rng.choice(buyers if side == "buy" else sellers)
            order_services.order_place(user=user, request=order_services.OrderRequest(
                symbol=symbol, side=side, type="limit", time_in_force="day",
                qty=Decimal(rng.randint(1, 10)), limit_price=price))
            placed += 1
    return placed


def drain(symbol: str) -> tuple[str, float, float]:
    """One matching worker: drains the symbol's pending order events, batch after batch."""
    _setup()
    from brokerx.gc_tuning import gc_tune
    from outbox.services import outbox_drain

    gc_tune()  # as the Celery pool processes do at start (brokerx/celery.py)
    started = time.perf_counter()
    while outbox_drain(queue="critical", partition_key=symbol):
        pass
    return symbol, started, time.perf_counter()


def _pending(symbols: list[str]) -> int:
    from outbox.models import OutboxEvent, OutboxStatus

    return OutboxEvent.objects.filter(queue="critical", partition_key__in=symbols, status=OutboxStatus.PENDING).count()


def through_celery(symbols: list[str]) -> tuple[float, float]:
    """Real Celery workers (prefork, one pool process per symbol) take the drain tasks from the broker; the clock
    runs from the kicks until no order event of the run is pending (polled every 20 ms)."""
    import redis
    from django.conf import settings
    from django.db import connection

    from outbox.tasks import outbox_drain

    env = {**os.environ, "DB_POOL_MAX": "4"}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "brokerx", "worker", "-Q", "critical",
                               "--pool", "prefork", "--concurrency", str(len(symbols)), "--without-gossip",
                               "--without-mingle", "--loglevel", "WARNING"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        # Ready when it has taken a task (an empty drain), so start-up is not timed.
        outbox_drain.apply_async(args=["critical", "BENCH-WARMUP"], queue="critical")
        deadline = time.monotonic() + 120
        while broker.llen("critical") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        started = time.perf_counter()
        for symbol in symbols:
            outbox_drain.apply_async(args=["critical", symbol], queue="critical")
        while _pending(symbols) and time.monotonic() < deadline + 600:
            time.sleep(0.02)
        finished = time.perf_counter()
        connection.close()
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    if _pending(symbols):
        sys.exit("the workers did not drain the run's events in time")
    return started, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000, help="orders per symbol")
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--via", choices=["drain", "celery"], default="drain",
                        help="drain: the drain in one process per symbol; celery: real Celery workers and broker")
    args = parser.parse_args()
    _ensure_database()
    _setup()
    # Fresh symbols each run: every run starts from an empty book (the resting orders of earlier runs would make
    # each run rebuild a bigger book and runs incomparable). The core benchmark covers deep books.
    symbols = [f"BX{int(time.time())}{n}" for n in range(args.symbols)]
    placed = prepare(symbols, args.orders, args.seed)
    from django.db import connection

    from matching.models import Trade

    trades_before = Trade.objects.filter(symbol__in=symbols).count()
    connection.close()
    if args.via == "celery":
        started, finished = through_celery(symbols)
    else:
        with get_context("spawn").Pool(len(symbols)) as pool:
            results = pool.map(drain, symbols)
        started = min(r[1] for r in results)
        finished = max(r[2] for r in results)
    elapsed = finished - started
    trades = Trade.objects.filter(symbol__in=symbols).count() - trades_before
    print(f"[{args.via}] symbols {args.symbols}: {placed} orders matched and settled in {elapsed:.2f}s = "
          f"{placed / elapsed:.0f} orders/s ({trades} trades, {trades / elapsed:.0f} trades/s)")

    from portfolios.selectors import books_balance

    print(f"books per asset (must be all zero): { {k: str(v) for k, v in books_balance().items()} }")


if __name__ == "__main__":
    main()
