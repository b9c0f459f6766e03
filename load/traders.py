"""Funded load-test traders with trade-scoped API keys, written as JSON for the locustfiles.

    .venv/bin/python load/traders.py --out .data/load/credentials.json

Run where the platform's database is reachable (DATABASE_URL / REDIS_URL as the platform has them; the default is
`make run`'s embedded servers). It reuses the benchmarks' set-up: benchmarks/order_ack_bench.py's order traders
(cash, an order body far below the market that never fills) and benchmarks/fill_push_bench.py's buyers and
sellers (cash and shares of one symbol, a crossing price at its reference). Each call makes new keys; the
traders are created and funded once. Needs a staff user (the funding is posted in its name) and the demo
symbols (`manage.py seed_demo`).
"""
import argparse
import json
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from benchmarks import fill_push_bench, order_ack_bench  # noqa: E402  (sets the same environment defaults)

ORDER_TRADERS = order_ack_bench.TRADERS
FILL_PAIRS = 20


def credentials_create(*, order_traders: int = ORDER_TRADERS, fill_pairs: int = FILL_PAIRS) -> dict:
    order_keys, order_body = order_ack_bench.setup_traders(order_traders)
    buyers, sellers, fill_price = fill_push_bench.setup(fill_pairs)
    return {
        # "ApiKey <key_id>:<secret>" Authorization values; the order body is an IOC limit buy far below the market.
        "order_keys": order_keys, "order_body": order_body,
        # "<key_id>:<secret>" tokens (`?token=` on /ws/orders/ and after "ApiKey " in a header).
        "fill_symbol": fill_push_bench.SYMBOL, "fill_price": fill_price, "buyers": buyers, "sellers": sellers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="-", help="a file, or - for standard output")
    parser.add_argument("--order-traders", type=int, default=ORDER_TRADERS)
    parser.add_argument("--fill-pairs", type=int, default=FILL_PAIRS)
    args = parser.parse_args()
    text = json.dumps(credentials_create(order_traders=args.order_traders, fill_pairs=args.fill_pairs), indent=1)
    if args.out == "-":
        print(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        out.chmod(0o600)  # API key secrets
        print(f"load-test credentials written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
