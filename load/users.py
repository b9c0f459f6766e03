"""What the locustfiles share: credentials, WebSocket connections, the simulated users, samples and the verdict.

Locust records the HTTP requests itself. The figures it cannot see are fired as custom request events and kept
as raw samples for exact percentiles:
    ORDER ack          POST /api/v1/orders sent -> its acceptance (201 with the order id) parsed
    ORDER order->fill  a crossing buy sent -> its `trade` execution report received on the owner's /ws/orders/
                       (failure: no report of the order at all within FILL_WAIT_SECONDS)
    PUSH fill          a `trade` report received - its `timestamp` (set in the matching commit's transaction)
    PUSH market        a /ws/market/ quote or book message received - its `timestamp` (set when it was published)
    WS connect ...     WebSocket handshakes (and the stream's first message)
Push lags compare the server's clock with this process's: run the load generator on the same host (loopback, or
the compose host, whose containers share its clock).

One load-generator process (no --processes / distributed runs): the samples live in this process.
"""
import json
import os
import time
from collections import defaultdict
from datetime import datetime
from itertools import count
from urllib.parse import urlsplit, urlunsplit

import gevent
import websocket
from gevent.event import AsyncResult
from locust import HttpUser, User, constant, constant_throughput, events, task

from load.thresholds import error_pct, percentile, thresholds_load, verdicts

CREDENTIALS_ENV = "BROKERX_LOAD_CREDENTIALS"
FILL_WAIT_SECONDS = 5.0
MARKET_SYMBOLS = [s for s in os.environ.get("LOAD_MARKET_SYMBOLS", "AAPL,MSFT").split(",") if s]
MARKET_STREAMS = ["quote", "book", "trades"]
COUNTED = {"GET", "POST", "PATCH", "DELETE", "WS", "ORDER"}  # what error_pct counts: requests, not pushes

SAMPLES: dict[str, list[float]] = defaultdict(list)
TOTALS = {"requests": 0, "failures": 0, "seq_gaps": 0, "unfilled": 0, "subscribed": 0}
_credentials: dict | None = None
_next_index = count()


def credentials() -> dict:
    """The traders written by load/traders.py (load/run.py writes them before starting Locust)."""
    global _credentials
    if _credentials is None:
        path = os.environ.get(CREDENTIALS_ENV)
        if not path:
            raise RuntimeError(f"{CREDENTIALS_ENV} names no file: run load/run.py, or load/traders.py --out FILE")
        with open(path, encoding="utf-8") as f:
            _credentials = json.load(f)
    return _credentials


def ws_url(host: str, path: str) -> str:
    """ws(s):// of the same host and port (or of BROKERX_WS_URL when the WebSockets are served elsewhere)."""
    parts = urlsplit(os.environ.get("BROKERX_WS_URL") or host)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def fire(environment, request_type: str, name: str, ms: float, exception: Exception | None = None) -> None:
    if exception is None:
        SAMPLES[f"{request_type} {name}"].append(ms)
    environment.events.request.fire(request_type=request_type, name=name, response_time=ms, response_length=0,
                                     exception=exception, context={})


@events.request.add_listener
def _count(request_type, name, response_time, response_length, exception=None, **kwargs):
    if request_type in COUNTED and name != "ack":  # an ack is a POST already counted under its own name
        TOTALS["requests"] += 1
        TOTALS["failures"] += exception is not None


def lag_ms(timestamp: str, received: float) -> float:
    return (received - datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()) * 1000


def ws_open(user: User, path: str, *, name: str, token: str | None = None):
    """A connected websocket-client socket with its first message (hello) read, or None (a failure recorded)."""
    url = ws_url(user.host, path) + (f"?token={token}" if token else "")
    started = time.perf_counter()
    try:
        ws = websocket.create_connection(url, timeout=10, suppress_origin=True, enable_multithread=False)
        hello = json.loads(ws.recv())
        if hello.get("type") != "hello":
            raise ConnectionError(f"first message was {hello!r}, not hello")
    except Exception as exc:
        fire(user.environment, "WS", f"connect {name}", (time.perf_counter() - started) * 1000, exc)
        return None
    fire(user.environment, "WS", f"connect {name}", (time.perf_counter() - started) * 1000)
    ws.settimeout(None)
    return ws


class Trader(HttpUser):
    """Places orders with a trade-scoped API key and times each ACK (no task of its own: Locust's users inherit
    their base classes' tasks)."""
    abstract = True

    def on_start(self):
        creds = credentials()
        self.auth = creds["order_keys"][next(_next_index) % len(creds["order_keys"])]

    def place(self, body: dict, auth: str) -> dict | None:
        started = time.perf_counter()
        with self.client.post("/api/v1/orders", json=body, headers={"Authorization": auth},
                              name="/api/v1/orders", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code} {response.text[:120]}")
                return None
            order = response.json()
            fire(self.environment, "ORDER", "ack", (time.perf_counter() - started) * 1000)
            return order


class OrderTrader(Trader):
    """Places a resting limit buy far below the market, then cancels it with the version the ACK returned."""
    abstract = True
    wait_time = constant_throughput(float(os.environ.get("LOAD_ORDER_RATE", "1")))  # place+cancel per user per s

    def on_start(self):
        super().on_start()
        self.body = {**credentials()["order_body"], "time_in_force": "day"}

    @task
    def place_and_cancel(self):
        order = self.place(self.body, self.auth)
        if order is None:
            return
        with self.client.post(f"/api/v1/orders/{order['id']}/cancel", json={"version": order["version"]},
                              headers={"Authorization": self.auth}, name="/api/v1/orders/{id}/cancel",
                              catch_response=True) as response:
            # 409 with the order terminal: matching got to it first (it cannot here, but a cancel race is no error).
            if response.status_code != 200 and not (response.status_code == 409
                                                    and "canceled" in response.text):
                response.failure(f"{response.status_code} {response.text[:120]}")


class FillTrader(Trader):
    """A seller rests a sell, its buyer crosses it with an IOC buy and waits for that buy's execution report on
    its own /ws/orders/ stream: ORDER order->fill from sending the buy, PUSH fill from the report's timestamp."""
    abstract = True
    wait_time = constant_throughput(float(os.environ.get("LOAD_FILL_RATE", "1")))  # crossing pairs per user per s

    def on_start(self):
        creds = credentials()
        pair = next(_next_index) % len(creds["buyers"])
        self.buyer, self.seller = f"ApiKey {creds['buyers'][pair]}", f"ApiKey {creds['sellers'][pair]}"
        common = {"symbol": creds["fill_symbol"], "type": "limit", "qty": "1", "limit_price": creds["fill_price"]}
        self.sell = {**common, "side": "sell", "time_in_force": "day"}
        self.buy = {**common, "side": "buy", "time_in_force": "ioc"}
        self.waiting: dict[int, AsyncResult] = {}
        self.early: dict[int, tuple[float, dict]] = {}
        self.ws = ws_open(self, "/ws/orders/", name="/ws/orders/", token=creds["buyers"][pair])
        self.reader = gevent.spawn(self.read) if self.ws is not None else None

    def on_stop(self):
        if self.reader is not None:
            self.reader.kill(block=False)
        if self.ws is not None:
            self.ws.close()

    def read(self):
        while True:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketException as exc:
                fire(self.environment, "WS", "closed /ws/orders/", 0, exc)
                return
            if not raw:  # a close frame: this user is stopping (on_stop closed it) or the server closed it
                return
            received, received_at = time.perf_counter(), time.time()
            report = json.loads(raw)
            if report.get("type") != "execution_report":
                continue
            if report.get("exec_type") == "trade":
                fire(self.environment, "PUSH", "fill", lag_ms(report["timestamp"], received_at))
            if report.get("exec_type") not in ("trade", "canceled", "expired", "rejected"):
                continue
            waiter = self.waiting.pop(report["order_id"], None)
            if waiter is not None:
                waiter.set((received, report))
            else:  # the report came before the ACK was read
                self.early[report["order_id"]] = (received, report)
                while len(self.early) > 1000:
                    self.early.pop(next(iter(self.early)))

    @task
    def cross(self):
        if self.ws is None:
            raise gevent.GreenletExit  # no stream, no measure: this user stops (the connect failure is recorded)
        if self.place(self.sell, self.seller) is None:
            return
        sent = time.perf_counter()
        order = self.place(self.buy, self.buyer)
        if order is None:
            return
        outcome = self.early.pop(order["id"], None)
        if outcome is None:
            waiter = self.waiting[order["id"]] = AsyncResult()
            try:
                outcome = waiter.get(timeout=FILL_WAIT_SECONDS)
            except gevent.Timeout:
                self.waiting.pop(order["id"], None)
                fire(self.environment, "ORDER", "order->fill", FILL_WAIT_SECONDS * 1000,
                     TimeoutError(f"no execution report within {FILL_WAIT_SECONDS:g} s"))
                return
        received, report = outcome
        if report["exec_type"] == "trade":
            fire(self.environment, "ORDER", "order->fill", (received - sent) * 1000)
        else:
            TOTALS["unfilled"] += 1  # the IOC buy found no sell at its price (another buy took it): not an error


class MarketWatcher(User):
    """Subscribes to `symbols` on /ws/market/ and times every quote and book message it receives."""
    abstract = True
    wait_time = constant(0)
    symbols = MARKET_SYMBOLS
    streams = MARKET_STREAMS

    def on_start(self):
        self.ws = ws_open(self, "/ws/market/", name="/ws/market/")
        self.last_seq: dict[tuple[str, str], int] = {}
        if self.ws is not None:
            self.ws.send(json.dumps({"action": "subscribe", "symbols": self.symbols, "streams": self.streams}))
            TOTALS["subscribed"] += 1

    def on_stop(self):
        if self.ws is not None:
            self.ws.close()

    @task
    def listen(self):
        if self.ws is None:
            raise gevent.GreenletExit
        try:
            raw = self.ws.recv()
        except websocket.WebSocketException as exc:
            fire(self.environment, "WS", "closed /ws/market/", 0, exc)
            self.ws = None
            return
        if not raw:  # a close frame
            self.ws = None
            return
        received_at = time.time()
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "subscribed":
            for stream, seq in message["seq"].items():
                self.last_seq[(message["symbol"], stream)] = seq
            return
        stream = "bars" if kind == "bar" else kind
        key = (message.get("symbol"), stream)
        if "seq" not in message or key not in self.last_seq or message["seq"] <= self.last_seq[key]:
            return  # the snapshot sent on subscribing (its seq is the one "subscribed" named)
        if message["seq"] > self.last_seq[key] + 1:
            TOTALS["seq_gaps"] += 1
        self.last_seq[key] = message["seq"]
        if kind in ("quote", "book"):
            fire(self.environment, "PUSH", "market", lag_ms(message["timestamp"], received_at))

def p99(name: str) -> float:
    return percentile(SAMPLES.get(name, []), 99)


def common_measures() -> dict[str, float]:
    return {"error_pct": error_pct(TOTALS["failures"], TOTALS["requests"]), "seq_gaps": float(TOTALS["seq_gaps"])}


def verdict(environment, scenario: str, measured: dict[str, float | None]) -> None:
    """One PASS/FAIL line per README threshold of the scenario; exit code 1 if any fails."""
    results = verdicts(thresholds_load(scenario), measured)
    print(f"\n{scenario}: {', '.join(f'{k} {v:.1f}' for k, v in measured.items() if v is not None)}")
    for line in (r.line() for r in results):
        print(line)
    failed = sum(not r.passed for r in results)
    print(f"{scenario}: {'PASS' if not failed else f'FAIL ({failed} of {len(results)})'}", flush=True)
    environment.process_exit_code = 1 if failed else 0
