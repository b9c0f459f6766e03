"""WebSocket fan-out: every user is a /ws/market/ subscriber to the quotes of one symbol (LOAD_FANOUT_SYMBOL,
default AAPL), timing each update from its publication to its arrival. The updates come from the market
simulator (`make run` starts it). Thresholds: README, "Load tests", scenario `fanout`.

    .venv/bin/python load/run.py fanout --users 200     # the brief's target is for 1,000 subscribers
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import events  # noqa: E402

from load import users  # noqa: E402
from load.thresholds import percentile  # noqa: E402


class Subscriber(users.MarketWatcher):
    symbols = [os.environ.get("LOAD_FANOUT_SYMBOL", "AAPL")]
    streams = ["quote"]


@events.quitting.add_listener
def _verdict(environment, **kwargs):
    wanted = environment.parsed_options.num_users if environment.parsed_options else 0
    lags = users.SAMPLES["PUSH market"]
    users.verdict(environment, "fanout", {
        "market_push_p99_ms": percentile(lags, 99),
        "market_push_p50_ms": percentile(lags, 50),
        "subscribed_pct": 100.0 * users.TOTALS["subscribed"] / wanted if wanted else None,
        "seq_gaps": float(users.TOTALS["seq_gaps"]),
        "error_pct": users.common_measures()["error_pct"],
        "quote_messages": float(len(lags)),
    })
