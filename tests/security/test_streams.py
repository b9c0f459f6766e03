"""No IDOR on the two private WebSockets: while A's order is accepted and rests, A's /ws/orders/ and Alpaca /stream
(trade_updates) get its report and B's, connected all along with B's own credentials, get nothing."""
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import api_key_create, jwt_issue
from brokerx.asgi import application
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.trading_fixtures import assert_books_balanced

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_books_async")]


@pytest.fixture
def traders(instrument, make_trader):
    """(user, access JWT, key_id, secret) for A and B; made here, as async tests cannot."""
    made = []
    for cash in ("20000", "20000"):
        user = make_trader(cash=cash)
        key = api_key_create(user=user, name="stream", scope="read")
        made.append((user, jwt_issue(user=user)["access"], key.api_key.key_id, key.secret))
    return made


async def _order_stream(access: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/orders/?token={access}")
    assert (await communicator.connect(timeout=5))[0]
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator


async def _trade_updates(key_id: str, secret: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/stream")
    assert (await communicator.connect(timeout=5))[0]
    await communicator.send_to(text_data=json.dumps({"action": "authenticate",
                                                     "data": {"key_id": key_id, "secret_key": secret}}))
    assert json.loads(await communicator.receive_from(timeout=5))["data"]["status"] == "authorized"
    await communicator.send_to(text_data=json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    assert json.loads(await communicator.receive_from(timeout=5))["data"]["streams"] == ["trade_updates"]
    return communicator


@sync_to_async(thread_sensitive=True)
def _a_places_and_the_book_takes_it(user) -> int:
    order, _ = order_place(user=user, request=OrderRequest(
        symbol="ACME", side="buy", type="limit", time_in_force="gtc", qty=Decimal("2"), limit_price=Decimal("99.00"),
        client_order_id="alice-stream-1"))
    outbox_drain(queue="critical", partition_key="ACME")  # commits, then publishes the `new` report
    return order.pk


async def test_b_never_receives_as_execution_reports_on_either_stream(traders):
    (alice, a_access, a_key, a_secret), (_bob, b_access, b_key, b_secret) = traders
    a_orders, a_updates = await _order_stream(a_access), await _trade_updates(a_key, a_secret)
    b_orders, b_updates = await _order_stream(b_access), await _trade_updates(b_key, b_secret)

    order_id = await _a_places_and_the_book_takes_it(alice)

    report = await a_orders.receive_json_from(timeout=5)
    assert (report["type"], report["order_id"], report["exec_type"]) == ("execution_report", order_id, "new")
    update = json.loads(await a_updates.receive_from(timeout=5))
    assert (update["stream"], update["data"]["event"]) == ("trade_updates", "new")
    assert update["data"]["order"]["client_order_id"] == "alice-stream-1"
    assert await b_orders.receive_nothing(timeout=0.5)
    assert await b_updates.receive_nothing(timeout=0.2)
    for communicator in (a_orders, a_updates, b_orders, b_updates):
        await communicator.disconnect()
    await sync_to_async(assert_books_balanced, thread_sensitive=True)()
