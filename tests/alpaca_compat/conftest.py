"""Fixtures for the Alpaca-compatible surface: a live ASGI server on the test database and the real alpaca-py SDK."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from orders.models import Instrument
from orders.selectors import instrument_cache_invalidate
from portfolios.models import LedgerAccount
from portfolios.services import adjustment_post
from tests.live_server import reset_channel_layers

PORTS = range(18100, 18200)
DRIVER = Path(__file__).with_name("sdk_driver.py")


def _free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18100-18199")


@pytest.fixture(scope="session")
def live_url(django_db_setup):
    """uvicorn serving brokerx.asgi in a thread of this process, so it uses the test database and Redis db."""
    import uvicorn

    db_settings = connections.settings["default"]
    saved_max_age = db_settings.get("CONN_MAX_AGE")
    # Server threads close their connection after each request, so the test database can be flushed and dropped.
    db_settings["CONN_MAX_AGE"] = 0
    port = _free_port()
    reset_channel_layers()
    server = uvicorn.Server(uvicorn.Config("brokerx.asgi:application", host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, name="uvicorn-alpaca", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    db_settings["CONN_MAX_AGE"] = saved_max_age


class Sdk:
    """The SDK process: `call("get_account")` runs `TradingClient(...).get_account()` there and returns the reply."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
        self.process = subprocess.Popen([sys.executable, "-P", str(DRIVER)], cwd="/", env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1)
        ready = self._read()
        assert ready.get("ready"), ready
        self.client = None

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the SDK process ended (exit code {self.process.poll()})")
        return json.loads(line)

    def send(self, op: str, **fields) -> dict:
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def call(self, method: str, *args, client: dict | None = None, **kwargs) -> dict:
        return self.send("call", client=client or self.client, method=method, args=list(args), kwargs=kwargs)

    def close(self) -> None:
        if self.process.poll() is None:
            self.send_quit()
        self.process.wait(timeout=10)

    def send_quit(self) -> None:
        self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.process.stdin.flush()


def request(class_name: str, **fields) -> dict:
    """An SDK request object (e.g. LimitOrderRequest), built in the SDK process."""
    return {"__request__": class_name, "fields": fields}


@pytest.fixture(scope="session")
def sdk_process():
    sdk = Sdk()
    yield sdk
    sdk.close()


@pytest.fixture
def alpaca_instrument(transactional_db):
    inst = Instrument.objects.create(symbol="ACME", name="Acme Corp", reference_price=Decimal("100.00"),
                                     last_price=Decimal("100.00"), tick_size=Decimal("0.01"), lot_size=Decimal("1"),
                                     price_band_pct=Decimal("0.10"), max_order_notional=Decimal("500000"))
    instrument_cache_invalidate("ACME")
    yield inst
    instrument_cache_invalidate("ACME")


@pytest.fixture
def desk(transactional_db):
    from accounts.models import User

    return User.objects.create_user(email="desk@brokerx.example", password="x-Staff-pass-1", is_staff=True,
                                    email_verified_at=timezone.now())


_counter = iter(range(10**6))


@pytest.fixture
def trader_with_key(transactional_db, desk):
    """make(cash=..., shares={symbol: qty}, scope="trade") -> (user, key_id, secret), funded through the ledger."""
    from accounts.models import User
    from accounts.services import api_key_create

    def make(*, cash: str = "0", shares: dict[str, str] | None = None, scope: str = "trade", verified: bool = True):
        user = User.objects.create_user(email=f"alpaca{next(_counter)}@brokerx.example", password="x-Trader-pass-1",
                                        email_verified_at=timezone.now() if verified else None)
        if Decimal(cash):
            adjustment_post(staff_user=desk, user=user, kind=LedgerAccount.Kind.CASH_AVAILABLE, asset="USD",
                            amount=Decimal(cash), reason="test funding")
        for symbol, qty in (shares or {}).items():
            adjustment_post(staff_user=desk, user=user, kind=LedgerAccount.Kind.SECURITIES_AVAILABLE, asset=symbol,
                            amount=Decimal(qty), reason="test funding", unit_cost=Decimal("90"))
        new_key = api_key_create(user=user, name="alpaca", scope=scope)
        return user, new_key.api_key.key_id, new_key.secret

    return make


@pytest.fixture
def sdk(sdk_process, live_url):
    """The SDK process; `sdk.use(key_id, secret)` points its TradingClient at the live server with that key."""

    def use(key_id: str, secret: str) -> dict:
        sdk_process.client = {"key": key_id, "secret": secret, "url": live_url}
        return sdk_process.client

    sdk_process.use = use
    sdk_process.url = live_url
    yield sdk_process
    sdk_process.client = None
