"""/ws/market/ over a real socket: uvicorn on the test database, the websockets client, a lost push, a REST re-sync."""
import asyncio
import json
import urllib.request
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import websockets
from django.db import connections

from matching import market
from matching.services import book_forget
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.live_server import DEPLOYED_APPLICATION, live_server

pytestmark = pytest.mark.django_db(transaction=True)

PORTS = range(18200, 18300)


@pytest.fixture
def market_server(transactional_db):
    """The deployed ASGI application on a live server; yields its port."""
    book_forget()
    with live_server(PORTS, application=DEPLOYED_APPLICATION) as url:
        yield urlsplit(url).port
    book_forget()


def _place_and_match(orders) -> None:
    try:
        for user, side, qty, price in orders:
            order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit",
                                                        time_in_force="gtc", qty=Decimal(qty),
                                                        limit_price=Decimal(price)))
        outbox_drain(queue="critical", partition_key="ACME")  # commits, then publishes as a worker does
    finally:
        connections.close_all()


class LocalBook:
    """What a client keeps: the snapshot, then each increment applied; a gap means re-sync over REST."""

    def __init__(self, port: int):
        self.port = port
        self.seq = None
        self.sides = {"bids": {}, "asks": {}}
        self.resyncs = 0

    def load(self, snapshot: dict) -> None:
        self.seq = snapshot["seq"]
        self.sides = {side: {lv["price"]: (lv["qty"], lv["count"]) for lv in snapshot[side]}
                      for side in ("bids", "asks")}

    async def on_message(self, message: dict) -> None:
        if message.get("snapshot"):
            self.load(message)
            return
        if message["seq"] != self.seq + 1:
            self.resyncs += 1
            self.load(await asyncio.to_thread(rest, self.port, "book"))
            if message["seq"] <= self.seq:
                return  # the REST snapshot is already at or past this increment
        for side in ("bids", "asks"):
            for level in message[side]:
                if level["qty"] == "0":
                    self.sides[side].pop(level["price"], None)
                else:
                    self.sides[side][level["price"]] = (level["qty"], level["count"])
        self.seq = message["seq"]

    def as_rest(self) -> dict:
        return {"bids": sorted(self.sides["bids"].items(), key=lambda kv: -Decimal(kv[0])),
                "asks": sorted(self.sides["asks"].items(), key=lambda kv: Decimal(kv[0]))}


def rest(port: int, what: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/market/ACME/{what}", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def _as_rest(snapshot: dict) -> dict:
    return {side: [(lv["price"], (lv["qty"], lv["count"])) for lv in snapshot[side]] for side in ("bids", "asks")}


async def _next(ws, kind: str) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
        if message["type"] == kind:
            return message


def test_a_real_client_follows_the_book_detects_a_gap_and_resyncs(market_server, instrument, make_trader, monkeypatch):
    port = market_server
    seller, buyer = make_trader(shares={"ACME": "100"}), make_trader(cash="50000")
    _place_and_match([(seller, "sell", "5", "101.00"), (buyer, "buy", "5", "99.00")])

    async def client() -> LocalBook:
        local = LocalBook(port)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", open_timeout=5) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps({"action": "subscribe", "symbols": ["ACME"], "streams": ["book", "trades"]}))
            subscribed = json.loads(await ws.recv())
            assert subscribed["type"] == "subscribed" and subscribed["seq"]["book"] == 1
            await local.on_message(await _next(ws, "book"))
            assert local.seq == 1

            # Ordered increments.
            seen = []
            for price in ("101.50", "102.00"):
                await asyncio.to_thread(_place_and_match, [(seller, "sell", "3", price)])
                message = await _next(ws, "book")
                seen.append(message["seq"])
                await local.on_message(message)
            assert seen == [2, 3] and local.resyncs == 0

            # A push lost on the way (the publish happened, the message did not arrive)...
            with monkeypatch.context() as patch:
                patch.setattr(market, "market_push", lambda symbol, messages: None)
                await asyncio.to_thread(_place_and_match, [(buyer, "buy", "2", "99.50")])
            # ...shows as a jump in the next message's seq: the client re-syncs from REST and carries on.
            await asyncio.to_thread(_place_and_match, [(buyer, "buy", "1", "101.00")])  # trades 1 @ 101
            message = await _next(ws, "book")
            assert message["seq"] == 5
            await local.on_message(message)
            assert local.resyncs == 1 and local.seq == 5
            trades = await _next(ws, "trades")  # same batch, next stream
            assert trades["seq"] == 1 and trades["trades"][0]["price"] == "101.00"

            await asyncio.to_thread(_place_and_match, [(seller, "sell", "1", "103.00")])
            await local.on_message(await _next(ws, "book"))
            assert local.seq == 6
        return local

    local = asyncio.run(client())
    book = rest(port, "book")
    assert book["seq"] == local.seq == 6
    assert local.as_rest() == _as_rest(book)
    assert dict(_as_rest(book)["bids"]) == {"99.50": ("2", 1), "99.00": ("5", 1)}
    assert dict(_as_rest(book)["asks"])["101.00"] == ("4", 1)
