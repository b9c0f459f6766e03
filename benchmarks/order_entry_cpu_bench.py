"""Web CPU per order: POST /api/v1/orders in-process through the whole middleware stack, real Postgres and Redis.

    make run                                            # once, to migrate and seed (then stop it or leave it)
    make bench-orders                                   # once, to create the benchmark traders
    .venv/bin/python benchmarks/order_entry_cpu_bench.py --orders 1000

No HTTP server and no load generator: the Django test client drives the same stack a web worker runs (middleware,
order entry, the accept statement), one request at a time, and the process's own CPU time is divided by the number
of orders. Far steadier than the end-to-end figures on a shared 2-core box, so it is the one to compare two versions
of the order-entry code with (alternating runs). Each order is the order-ACK benchmark's IOC limit buy far below the
market: accepted, then canceled unfilled by matching when the workers run.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerx.settings.dev")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/brokerx")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:56379/0")
os.environ["DB_POOL_MAX"] = "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings

    from accounts.services.api_keys import api_key_create
    from orders.checks import price_band
    from orders.selectors import instrument_get

    trader = get_user_model().objects.filter(email="bench-trader-0@brokerx.example").first()
    if trader is None:
        sys.exit("no benchmark trader: run `make bench-orders` once against this database")
    key = api_key_create(user=trader, name="order entry CPU benchmark", scope="trade")
    instrument = instrument_get("AAPL")
    low, _high = price_band(instrument)
    tick = instrument["tick_size"]
    price = ((instrument["reference_price"] + low) / 2 / tick).to_integral_value() * tick
    body = json.dumps({"symbol": "AAPL", "side": "buy", "type": "limit", "time_in_force": "ioc", "qty": "1",
                       "limit_price": str(price)})
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")
    with override_settings(RATE_LIMITS={"orders": "1000000/s"}):
        for _ in range(50):  # warm caches and connections
            response = client.post("/api/v1/orders", body, content_type="application/json")
            assert response.status_code == 201, response.content
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.orders):
            client.post("/api/v1/orders", body, content_type="application/json")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{args.orders} orders: web CPU {cpu / args.orders * 1000:.3f} ms/order, "
          f"wall {wall / args.orders * 1000:.3f} ms/order")


if __name__ == "__main__":
    main()
