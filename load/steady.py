"""Steady order flow: traders place and cancel orders, crossing traders wait for their fills on their private
stream, watchers listen to market data. Thresholds: README, "Load tests", scenario `steady`.

    .venv/bin/python load/run.py steady            # or: make load SCENARIO=steady

Users (--users): LOAD_FILL_USERS crossing traders and LOAD_WATCHERS market watchers first (fixed counts), the rest
order traders, each placing and canceling LOAD_ORDER_RATE orders a second (crossing pairs: LOAD_FILL_RATE).
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import events  # noqa: E402

from load import users  # noqa: E402


class Trader(users.OrderTrader):
    weight = 1


class CrossingTrader(users.FillTrader):
    fixed_count = int(os.environ.get("LOAD_FILL_USERS", "10"))


class Watcher(users.MarketWatcher):
    fixed_count = int(os.environ.get("LOAD_WATCHERS", "20"))


_started: list[float] = []


@events.test_start.add_listener
def _start(environment, **kwargs):
    _started.append(time.monotonic())


def measures(seconds: float) -> dict[str, float]:
    return {
        "ack_p99_ms": users.p99("ORDER ack"),
        "fill_push_p99_ms": users.p99("PUSH fill"),
        "order_to_fill_p99_ms": users.p99("ORDER order->fill"),
        "market_push_p99_ms": users.p99("PUSH market"),
        "error_pct": users.common_measures()["error_pct"],
        "orders_per_s": len(users.SAMPLES["ORDER ack"]) / seconds if seconds > 0 else 0.0,
        "fills": float(len(users.SAMPLES["ORDER order->fill"])),
        "market_messages": float(len(users.SAMPLES["PUSH market"])),
    }


@events.quitting.add_listener
def _verdict(environment, **kwargs):
    seconds = time.monotonic() - _started[0] if _started else 0.0
    users.verdict(environment, "steady", measures(seconds))
