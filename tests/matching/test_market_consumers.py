"""/ws/market/ through the project's ASGI application: public, snapshots then numbered updates per stream."""
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from brokerx.asgi import application
from matching import market
from matching.engine import Grid, OrderBook
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.trading_fixtures import assert_books_balanced

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_books_async")]


def _place_and_match(orders) -> None:
    for user, side, qty, price in orders:
        order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                    qty=Decimal(qty), limit_price=Decimal(price)))
    outbox_drain(queue="critical", partition_key="ACME")  # commits: the publish runs after it, as in a worker


place_and_match = sync_to_async(_place_and_match, thread_sensitive=True)


async def connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/market/")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello" and hello["streams"] == ["quote", "book", "trades", "bars"]
    return communicator


async def subscribe(communicator, symbol="ACME", streams=None) -> dict:
    request = {"action": "subscribe", "symbols": [symbol]}
    if streams:
        request["streams"] = streams
    await communicator.send_json_to(request)
    subscribed = await communicator.receive_json_from(timeout=5)
    assert subscribed["type"] == "subscribed", subscribed
    snapshots = {}
    for _ in subscribed["seq"]:
        message = await communicator.receive_json_from(timeout=5)
        snapshots[message["type"]] = message
    return {"subscribed": subscribed, **snapshots}


async def receive_until(communicator, types: set[str]) -> dict:
    got = {}
    while not types <= got.keys():
        message = await communicator.receive_json_from(timeout=5)
        got[message["type"]] = message
    return got


@pytest.fixture
def traders(instrument, make_trader):
    return make_trader(shares={"ACME": "50"}), make_trader(cash="20000")


async def test_anonymous_subscriber_gets_snapshots_then_numbered_updates(traders):
    seller, buyer = traders
    await place_and_match([(seller, "sell", "5", "101.00"), (buyer, "buy", "4", "100.00")])
    communicator = await connect()

    first = await subscribe(communicator)
    assert first["subscribed"]["seq"] == {"quote": 1, "book": 1, "trades": 0, "bars": 0}
    assert (first["quote"]["bid"], first["quote"]["ask"], first["quote"]["seq"]) == ("100.00", "101.00", 1)
    assert first["book"]["snapshot"] is True and first["book"]["asks"] == [{"price": "101.00", "qty": "5", "count": 1}]
    assert first["trades"]["trades"] == [] and first["bars"]["bars"] == []

    await place_and_match([(buyer, "buy", "2", "101.00")])
    update = await receive_until(communicator, {"quote", "book", "trades", "bar"})
    assert (update["quote"]["seq"], update["quote"]["ask_size"], update["quote"]["last"]) == (2, "3", "101.00")
    assert update["book"]["seq"] == 2 and update["book"]["snapshot"] is False
    assert update["book"]["asks"] == [{"price": "101.00", "qty": "3", "count": 1}] and update["book"]["bids"] == []
    assert update["trades"]["seq"] == 1 and update["trades"]["trades"][0]["qty"] == "2"
    assert update["bar"]["seq"] == 1 and update["bar"]["close"] == "101.00" and update["bar"]["volume"] == "2"
    assert len({m["epoch"] for m in update.values()}) == 1

    await communicator.disconnect()
    await sync_to_async(assert_books_balanced, thread_sensitive=True)()


async def test_only_the_streams_asked_for_and_nothing_after_unsubscribe(traders):
    seller, buyer = traders
    communicator = await connect()
    first = await subscribe(communicator, streams=["trades"])
    assert set(first) == {"subscribed", "trades"}

    await place_and_match([(seller, "sell", "1", "100.00"), (buyer, "buy", "1", "100.00")])
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "trades" and message["seq"] == 1
    assert await communicator.receive_nothing(timeout=0.3)

    await communicator.send_json_to({"action": "unsubscribe", "symbols": ["acme"]})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "unsubscribed"
    await place_and_match([(seller, "sell", "1", "100.00"), (buyer, "buy", "1", "100.00")])
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_updates_the_snapshot_already_covers_are_not_sent_again(instrument):
    grid = Grid(Decimal("0.01"), Decimal("1"))
    book = OrderBook("ACME")
    book.submit(1, 1, "sell", "limit", "gtc", 5, 10100)
    published = await sync_to_async(market.market_publish)(symbol="ACME", book=book, grid=grid, trades=[])
    communicator = await connect()
    await subscribe(communicator, streams=["quote"])

    # A push that was in flight while the subscriber read its snapshot: same epoch, seq not newer.
    await sync_to_async(market.market_push)("ACME", [published[0]])
    assert await communicator.receive_nothing(timeout=0.3)
    book.submit(2, 1, "sell", "limit", "gtc", 1, 10050)
    await sync_to_async(market.market_publish)(symbol="ACME", book=book, grid=grid, trades=[])
    quote = await communicator.receive_json_from(timeout=5)
    assert (quote["type"], quote["seq"], quote["ask"]) == ("quote", 2, "100.50")
    await communicator.disconnect()


async def test_bad_requests_get_errors_and_the_connection_stays(instrument):
    communicator = await connect()
    await communicator.send_json_to({"action": "subscribe", "symbols": ["NOPE"]})
    error = await communicator.receive_json_from(timeout=5)
    assert (error["type"], error["code"], error["details"]) == ("error", "unknown_symbol", {"symbol": "NOPE"})
    await communicator.send_json_to({"action": "subscribe", "symbols": "ACME"})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_request"
    await communicator.send_json_to({"action": "subscribe", "symbols": ["ACME"], "streams": ["level3"]})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_request"
    await communicator.send_json_to({"action": "subscribe", "symbols": [f"S{i}" for i in range(51)]})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "too_many_symbols"
    await communicator.send_json_to({"action": "dance"})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_request"
    await communicator.send_json_to({"action": "ping"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "pong"
    await communicator.disconnect()
