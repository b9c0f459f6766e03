"""Measures the in-memory order book's throughput on a random order stream over books of 1k, 100k and 1M orders.

Run from the repository root: `python benchmarks/engine_bench.py` (options: --help). For each book size
it restores that many resting orders, records a realistic stream by running it once against a scratch
copy of the book (so every cancel names an order that is live at that moment), then replays the stream
on a fresh identical book and times only the replay: commands/s counts submits and cancels alike.

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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from matching.engine import BUY, DAY, GTC, IOC, LIMIT, MARKET, ORDER_UPDATE, RESTED, SELL, OrderBook  # noqa: E402

MID = 100_000  # ticks: 1,000.00 at a 0.01 tick
ACCOUNTS = 1_000
SEED = 20_240_601


def prefill(book: OrderBook, size: int, rng: random.Random) -> list[int]:
    """Rest `size` orders, half a side, denser near the touch; returns their ids."""
    # Spread the book over more levels as it grows, so 1M orders are not all at ten prices.
    span = max(10, min(2_000, size // 200))
    ids = []
    for order_id in range(1, size + 1):
        offset = 1 + min(int(rng.expovariate(1 / (span / 4))), span)
        if order_id % 2:
            side, price = BUY, MID - offset
        else:
            side, price = SELL, MID + offset
        book.restore(order_id, rng.randrange(ACCOUNTS), side, LIMIT, GTC, rng.randint(1, 20) * 10, price)
        ids.append(order_id)
    return ids


def record_stream(size: int, count: int) -> list[tuple]:
    """Commands for the timed replay, chosen against a scratch book so cancels hit live orders."""
    rng = random.Random(SEED)
    book = OrderBook("SCRATCH")
    live = prefill(book, size, rng)
    where = {order_id: i for i, order_id in enumerate(live)}

    def forget(order_id: int) -> None:
        i = where.pop(order_id, None)
        if i is not None:
            last = live.pop()
            if last != order_id:
                live[i] = last
                where[last] = i

    stream = []
    next_id = size + 1
    for _ in range(count):
        roll = rng.random()
        if roll < 0.35 and live:
            order_id = live[rng.randrange(len(live))]
            command = (order_id, None, None, None, None, None, None)
            events = book.cancel(order_id)
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
                else:
                    # Passive: inside the spread when there is room, mostly at or a few ticks off the touch.
                    depth = int(rng.expovariate(0.25)) - 1
                    price = min(bid - depth, ask - 1) if side == BUY else max(ask + depth, bid + 1)
                args = (next_id, account, side, LIMIT, DAY if rng.random() < 0.5 else GTC, qty, max(price, 1))
            elif roll < 0.96:
                args = (next_id, account, side, LIMIT, IOC, qty, ask if side == BUY else bid)
            else:
                args = (next_id, account, side, MARKET, DAY, qty, None)
            next_id += 1
            command = args
            events = book.submit(*args)
        stream.append(command)
        for event in events:
            if event[0] == RESTED:
                if event[1] not in where:
                    where[event[1]] = len(live)
                    live.append(event[1])
            elif event[0] == ORDER_UPDATE and not event[5]:
                forget(event[1])
    return stream


def replay(size: int, stream: list[tuple], freeze: bool) -> tuple[float, float, int]:
    """Times the stream on a fresh book prefilled exactly like the recording one."""
    rng = random.Random(SEED)
    book = OrderBook("BENCH")
    prefill(book, size, rng)
    gc.collect()
    if freeze:
        gc.freeze()  # what a long-lived worker does after restoring its books
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
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() the prefilled book before timing")
    options = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {options.commands:,} commands per run, seed {SEED}")
    for size in (int(s) for s in options.sizes.split(",")):
        stream = record_stream(size, options.commands)
        submits = sum(1 for command in stream if command[2] is not None)
        wall, cpu, live = replay(size, stream, options.gc_freeze)
        print(
            f"book {size:>9,} resting: {len(stream) / cpu:>9,.0f} commands/s of CPU time, "
            f"{len(stream) / wall:>9,.0f} commands/s wall ({submits:,} submits, "
            f"{len(stream) - submits:,} cancels; {live:,} live after)"
        )


if __name__ == "__main__":
    main()
