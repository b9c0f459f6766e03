"""Measures the in-memory order book's throughput on a random order stream over books of 1k, 100k and 1M orders.

Run from the repository root: `python benchmarks/engine_bench.py` (options: --help). For each book size
it restores that many resting orders, records a realistic stream by running it once against a scratch
copy of the book (so every cancel names an order that is live at that moment), then replays the stream
on a fresh identical book and times only the replay: commands/s counts submits and cancels alike.
It prints the best and median of --repeat replays, per second of process CPU time (what one core
delivers when other work shares the machine) and per second of wall time. Takes about 1.5 minutes.

Stream mix: ~57% limit orders near the touch (about a tenth of them crossing it), ~35% cancels of a
random live order, ~4% IOC limits at the touch, ~4% market orders; 1,000 accounts.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from matching.engine import BUY, DAY, GTC, IOC, LIMIT, MARKET, ORDER_UPDATE, RESTED, SELL, OrderBook  # noqa: E402

MID = 100_000  # ticks: 1,000.00 at a 0.01 tick
ACCOUNTS = 1_000
SEED = 20_240_601


def resting_orders(size: int) -> list[tuple]:
    """`size` restore() argument tuples, half a side, denser near the touch."""
    rng = random.Random(SEED)
    # Spread the book over more levels as it grows, so 1M orders are not all at ten prices.
    span = max(10, min(2_000, size // 200))
    orders = []
    for order_id in range(1, size + 1):
        offset = 1 + min(int(rng.expovariate(1 / (span / 4))), span)
        side, price = (BUY, MID - offset) if order_id % 2 else (SELL, MID + offset)
        orders.append((order_id, rng.randrange(ACCOUNTS), side, LIMIT, GTC, rng.randint(1, 20) * 10, price))
    return orders


def prefilled_book(orders: list[tuple]) -> OrderBook:
    book = OrderBook("BENCH")
    restore = book.restore
    for order in orders:
        restore(*order)
    return book


def record_stream(orders: list[tuple], count: int) -> tuple[list[tuple], Counter]:
    """Commands for the timed replay, chosen against a scratch book so cancels hit live orders.

    Returns the commands and a count of what they were and did.
    """
    rng = random.Random(SEED + 1)
    book = prefilled_book(orders)
    live = [order[0] for order in orders]
    where = {order_id: i for i, order_id in enumerate(live)}
    mix = Counter()

    def forget(order_id: int) -> None:
        i = where.pop(order_id, None)
        if i is not None:
            last = live.pop()
            if last != order_id:
                live[i] = last
                where[last] = i

    stream = []
    next_id = len(orders) + 1
    for _ in range(count):
        roll = rng.random()
        if roll < 0.35 and live:
            order_id = live[rng.randrange(len(live))]
            command = (order_id, None, None, None, None, None, None)
            events = book.cancel(order_id)
            mix["cancel"] += 1
        else:
            side = BUY if rng.random() < 0.5 else SELL
            bid = book.best_bid() or MID - 1
            ask = book.best_ask() or MID + 1
            qty = rng.randint(1, 20) * 10
            account = rng.randrange(ACCOUNTS)
            if roll < 0.92:
                if rng.random() < 0.1:
                    # Crossing: at or a tick or two through the far touch.
                    through = rng.randint(0, 2)
                    price = ask + through if side == BUY else bid - through
                    mix["crossing limit"] += 1
                else:
                    mix["passive limit"] += 1
                    # Passive: inside the spread when there is room, mostly at or a few ticks off the touch.
                    depth = int(rng.expovariate(0.25)) - 1
                    price = min(bid - depth, ask - 1) if side == BUY else max(ask + depth, bid + 1)
                args = (next_id, account, side, LIMIT, DAY if rng.random() < 0.5 else GTC, qty, max(price, 1))
            elif roll < 0.96:
                args = (next_id, account, side, LIMIT, IOC, qty, ask if side == BUY else bid)
                mix["ioc limit"] += 1
            else:
                args = (next_id, account, side, MARKET, DAY, qty, None)
                mix["market"] += 1
            next_id += 1
            command = args
            events = book.submit(*args)
        stream.append(command)
        for event in events:
            mix[event[0]] += 1
            if event[0] == RESTED:
                if event[1] not in where:
                    where[event[1]] = len(live)
                    live.append(event[1])
            elif event[0] == ORDER_UPDATE and not event[5]:
                forget(event[1])
    return stream, mix


def replay(orders: list[tuple], stream: list[tuple], freeze: bool) -> tuple[float, float, int]:
    """Times the stream on a fresh book prefilled exactly like the recording one: (wall s, CPU s, live after)."""
    book = prefilled_book(orders)
    gc.collect()
    if freeze:
        gc.freeze()  # what a long-lived worker may do after restoring its books
    wall, cpu = time.perf_counter(), time.process_time()
    _run(stream, book.submit, book.cancel)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if freeze:
        gc.unfreeze()
    return wall, cpu, len(book)


def _run(stream: list[tuple], submit, cancel) -> None:
    # Positional calls, as a worker makes them (a *args call costs more than most commands).
    for order_id, account_id, side, order_type, tif, qty, price in stream:
        if side is None:
            cancel(order_id)
        else:
            submit(order_id, account_id, side, order_type, tif, qty, price)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="resting orders before the stream")
    parser.add_argument("--commands", type=int, default=300_000, help="commands in the timed stream")
    parser.add_argument("--repeat", type=int, default=3, help="timed replays per size, on fresh books")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() the prefilled book before timing")
    options = parser.parse_args()

    print(
        f"python {sys.version.split()[0]}, {options.commands:,} commands per replay, best and median of "
        f"{options.repeat} replays, seed {SEED}, gc {'frozen after prefill' if options.gc_freeze else 'default'}"
    )
    for size in (int(s) for s in options.sizes.split(",")):
        orders = resting_orders(size)
        stream, mix = record_stream(orders, options.commands)
        runs = sorted(replay(orders, stream, options.gc_freeze) for _ in range(options.repeat))
        cpu = sorted(cpu for _, cpu, _ in runs)
        wall = sorted(wall for wall, _, _ in runs)
        n = len(stream)
        print(
            f"book {size:>9,} resting: {n / cpu[0]:>9,.0f} commands/s of CPU time "
            f"(median {n / cpu[len(cpu) // 2]:,.0f}); wall {n / wall[0]:,.0f} "
            f"(median {n / wall[len(wall) // 2]:,.0f}); {runs[0][2]:,} live after"
        )
        kinds = ("passive limit", "crossing limit", "ioc limit", "market", "cancel")
        print("    mix: " + ", ".join(f"{mix[k] / n:.1%} {k}" for k in kinds) + f"; {mix['trade']:,} trades")


if __name__ == "__main__":
    main()
