"""Fixtures for the Alpaca-compatible surface: a live ASGI server on the test database and the real alpaca-py SDK."""
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from orders.selectors import instrument_cache_invalidate
from tests.live_server import DEPLOYED_APPLICATION, live_server

PORTS = range(18100, 18200)
DRIVER = Path(__file__).with_name("sdk_driver.py")


@pytest.fixture(scope="session")
def live_url(django_db_setup):
    """The deployed ASGI application on a live server in this process, on the test database and Redis db."""
    with live_server(PORTS, application=DEPLOYED_APPLICATION) as url:
        yield url


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
def alpaca_instrument(transactional_db, instrument):
    """The shared ACME instrument, with a last trade price as the SDK tests' market orders and positions expect."""
    instrument.last_price = Decimal("100.00")
    instrument.save(update_fields=["last_price"])
    instrument_cache_invalidate("ACME")
    return instrument


@pytest.fixture
def trader_with_key(transactional_db, make_trader):
    """make(cash=..., shares={symbol: qty}, scope="trade", verified=True) -> (user, key_id, secret), funded through
    the ledger."""
    from accounts.services import api_key_create

    def make(*, cash: str = "0", shares: dict[str, str] | None = None, scope: str = "trade", verified: bool = True):
        user = make_trader(cash=cash, shares=shares, verified=verified)
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
