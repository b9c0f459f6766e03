"""The trade_updates stream at /stream: the SDK's TradingStream, and the protocol seen from a plain WebSocket."""
import json
import time
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from websockets.sync.client import connect

from alpaca_compat import ids
from alpaca_compat.consumers import trade_update
from matching.services import book_forget
from orders.api.serializers import OrderSerializer
from orders.models import Order
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.trading_fixtures import assert_books_balanced

from .conftest import request

pytestmark = pytest.mark.slow


def _report(order: Order, *, seq: int, exec_type: str, order_status: str, last_qty=None, last_px=None,
            cum_qty="0", leaves_qty=None, avg_px=None) -> dict:
    """An execution report exactly as the matching and notifications contexts send it on the user's group."""
    native = dict(OrderSerializer(order).data)
    native.update(status=order_status, cum_qty=cum_qty, leaves_qty=leaves_qty or str(order.qty), avg_px=avg_px)
    return {"seq": seq, "order_id": order.pk, "client_order_id": order.client_order_id, "symbol": order.symbol,
            "side": order.side, "exec_type": exec_type, "order_status": order_status, "last_qty": last_qty,
            "last_px": last_px, "cum_qty": cum_qty, "leaves_qty": leaves_qty or str(order.qty), "avg_px": avg_px,
            "timestamp": timezone.now().isoformat(), "order": native}


def _push(user_id: int, report: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(f"orders.user.{user_id}",
                                                  {"type": "execution.report", "report": report})


def _next_update(sdk, user_id: int, report: dict, *, first: bool = False) -> dict:
    """Push the report and wait for the SDK to hand it to its handler. The first push is repeated until the stream
    has joined the group (the SDK gives no signal once its `listen` is processed)."""
    deadline = time.monotonic() + 20
    while True:
        _push(user_id, report)
        reply = sdk.send("stream_next", timeout=0.5 if first else 10)
        if reply["value"] is not None or not first or time.monotonic() > deadline:
            return reply
        assert reply["ok"], reply


def test_trading_stream_receives_trade_updates(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(shares={"ACME": "10"})
    placed = sdk.call("submit_order", request("LimitOrderRequest", symbol="ACME", qty=10, side="sell",
                                              time_in_force="gtc", limit_price=101),
                      client=sdk.use(key, secret))["value"]
    order = Order.objects.get(pk=ids.decode(ids.Kind.ORDER, placed["id"]))
    assert sdk.send("stream_start", key=key, secret=secret, url=sdk.url.replace("http", "ws") + "/stream")["ok"]
    try:
        deadline = time.monotonic() + 20
        while not sdk.send("stream_status")["running"]:
            assert time.monotonic() < deadline, "the SDK's stream did not authenticate"
            time.sleep(0.1)

        partial = _next_update(sdk, user.pk, _report(order, seq=2, exec_type="trade", order_status="partially_filled",
                                                     last_qty="4", last_px="101", cum_qty="4", leaves_qty="6",
                                                     avg_px="101"), first=True)
        assert partial["type"] == "TradeUpdate", partial
        update = partial["value"]
        assert (update["event"], update["price"], update["qty"], update["position_qty"]) == ("partial_fill", 101.0,
                                                                                            4.0, 10.0)
        assert update["execution_id"] and update["timestamp"]
        assert update["order"]["id"] == placed["id"]
        assert (update["order"]["status"], update["order"]["filled_qty"], update["order"]["filled_avg_price"]) == (
            "partially_filled", "4", "101")

        fill = _next_update(sdk, user.pk, _report(order, seq=3, exec_type="trade", order_status="filled",
                                                  last_qty="6", last_px="101.5", cum_qty="10", leaves_qty="0",
                                                  avg_px="101.3"))["value"]
        assert (fill["event"], fill["qty"], fill["order"]["status"], fill["order"]["filled_avg_price"]) == (
            "fill", 6.0, "filled", "101.3")
        assert fill["order"]["filled_at"] is not None

        canceled = _next_update(sdk, user.pk, _report(order, seq=4, exec_type="canceled", order_status="canceled",
                                                      leaves_qty="0"))["value"]
        assert (canceled["event"], canceled["order"]["status"], canceled["price"]) == ("canceled", "canceled", None)
    finally:
        assert sdk.send("stream_stop")["stopped"]


def _ws(live_url: str):
    return connect(live_url.replace("http", "ws") + "/stream", open_timeout=10)


def test_stream_refuses_a_bad_key(live_url, trader_with_key):
    _, key, _secret = trader_with_key()
    with _ws(live_url) as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": "wrong"}}))
        assert json.loads(ws.recv(timeout=10)) == {"stream": "authorization",
                                                   "data": {"action": "authenticate", "status": "unauthorized"}}
        with pytest.raises(Exception, match="1008"):
            ws.recv(timeout=10)


def test_stream_needs_authentication_before_listening(live_url):
    with _ws(live_url) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(timeout=10))["data"]["status"] == "unauthorized"


def test_stream_protocol_with_the_short_auth_form(live_url, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="1000")
    order = Order.objects.create(user=user, instrument=alpaca_instrument, symbol="ACME", client_order_id="x1",
                                 side="buy", type="limit", time_in_force="day", qty=Decimal("2"),
                                 leaves_qty=Decimal("2"), limit_price=Decimal("99"))
    with _ws(live_url) as ws:
        ws.send(json.dumps({"action": "auth", "key": key, "secret": secret}))
        assert json.loads(ws.recv(timeout=10))["data"]["status"] == "authorized"
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert json.loads(ws.recv(timeout=10)) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
        _push(user.pk, _report(order, seq=1, exec_type="triggered", order_status="new"))  # no Alpaca event: dropped
        _push(user.pk, _report(order, seq=2, exec_type="new", order_status="new"))
        message = json.loads(ws.recv(timeout=10))
        assert message["stream"] == "trade_updates"
        assert (message["data"]["event"], message["data"]["order"]["client_order_id"]) == ("new", "x1")


@pytest.mark.parametrize(("exec_type", "leaves", "event"), [
    ("trade", "3", "partial_fill"), ("trade", "0", "fill"), ("new", "5", "new"), ("replaced", "5", "replaced"),
    ("rejected", "0", "rejected"), ("expired", "0", "expired"), ("canceled", "0", "canceled"), ("triggered", "5", None),
])
def test_exec_types_map_to_alpaca_events(exec_type, leaves, event):
    now = timezone.now().isoformat()
    native = {"id": 7, "client_order_id": "c", "symbol": "ACME", "side": "buy", "type": "limit",
              "time_in_force": "day", "qty": "5.0000", "limit_price": "10.0000", "stop_price": None, "status": "new",
              "cum_qty": "0", "avg_px": None, "created_at": now, "updated_at": now}
    report = {"seq": 1, "order_id": 7, "exec_type": exec_type, "order_status": "new", "leaves_qty": leaves,
              "cum_qty": "0", "avg_px": None, "last_qty": "2", "last_px": "10", "timestamp": now, "order": native}

    data = trade_update(report, asset_id=3, position_qty=Decimal("2"))

    assert (data or {}).get("event") == event
    if data:
        assert data["order"]["id"] == str(ids.encode(ids.Kind.ORDER, 7))
        assert data["order"]["qty"] == "5" and data["order"]["limit_price"] == "10"


def test_an_idle_stream_stays_open(live_url, trader_with_key, alpaca_instrument):
    """Longer idle than the channel layer's 5 s blocking pop: the consumer must neither crash nor drop the client."""
    user, key, secret = trader_with_key()
    order = Order.objects.create(user=user, instrument=alpaca_instrument, symbol="ACME", client_order_id="idle",
                                 side="buy", type="limit", time_in_force="day", qty=Decimal("1"),
                                 leaves_qty=Decimal("1"), limit_price=Decimal("99"))
    with _ws(live_url) as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}}))
        ws.recv(timeout=10)
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        ws.recv(timeout=10)
        time.sleep(7)
        _push(user.pk, _report(order, seq=1, exec_type="new", order_status="new"))
        assert json.loads(ws.recv(timeout=10))["data"]["event"] == "new"


def test_a_socket_that_never_authenticates_is_closed(live_url, monkeypatch):
    monkeypatch.setattr("alpaca_compat.consumers.AUTH_TIMEOUT_SECONDS", 0.5)
    with _ws(live_url) as ws:
        assert json.loads(ws.recv(timeout=10))["data"]["status"] == "unauthorized"
        with pytest.raises(Exception, match="1008"):
            ws.recv(timeout=10)


def test_a_brackets_legs_report_going_live_and_the_sibling_canceled(sdk, trader_with_key, alpaca_instrument):
    """Real execution reports from matching: the SDK sees the entry fill, each exit grow (`replaced`) and go live
    (`new`), then the take-profit fill and the stop-loss canceled with it."""
    book_forget()
    user, key, secret = trader_with_key(cash="5000")
    seller, _, _ = trader_with_key(shares={"ACME": "10"})
    entry = sdk.call("submit_order", request(
        "LimitOrderRequest", symbol="ACME", qty=10, side="buy", time_in_force="gtc", limit_price=100,
        order_class="bracket", take_profit=request("TakeProfitRequest", limit_price=105),
        stop_loss=request("StopLossRequest", stop_price=95)), client=sdk.use(key, secret))["value"]
    take_profit, stop_loss = (leg["id"] for leg in entry["legs"])
    _drain()
    assert sdk.send("stream_start", key=key, secret=secret, url=sdk.url.replace("http", "ws") + "/stream")["ok"]
    try:
        deadline = time.monotonic() + 20
        while not sdk.send("stream_status")["running"]:
            assert time.monotonic() < deadline, "the SDK's stream did not authenticate"
            time.sleep(0.1)
        order = Order.objects.get(pk=ids.decode(ids.Kind.ORDER, entry["id"]))
        assert _next_update(sdk, user.pk, _report(order, seq=0, exec_type="new", order_status="new"),
                            first=True)["value"] is not None  # listening from here on

        _place(seller, "sell", "10", "100.00")
        _place(trader_with_key(cash="5000")[0], "buy", "10", "105.00")
        updates = []
        while (reply := sdk.send("stream_next", timeout=3))["value"] is not None:
            assert reply["type"] == "TradeUpdate", reply
            updates.append(reply["value"])
    finally:
        assert sdk.send("stream_stop")["stopped"]
        book_forget()

    names = {entry["id"]: "entry", take_profit: "take_profit", stop_loss: "stop_loss"}
    seen = [(names[u["order"]["id"]], u["event"], u["order"]["status"], u["order"]["qty"]) for u in updates]
    assert seen == [("entry", "fill", "filled", "10"),
                    ("take_profit", "replaced", "held", "10"), ("stop_loss", "replaced", "held", "10"),
                    ("take_profit", "new", "new", "10"), ("stop_loss", "new", "new", "10"),
                    ("take_profit", "fill", "filled", "10"), ("stop_loss", "canceled", "canceled", "10")]
    assert {u["order"]["order_class"] for u in updates} == {"bracket"}
    assert_books_balanced()


def _drain() -> None:
    while outbox_drain(queue="critical", partition_key="ACME"):
        pass


def _place(user, side: str, qty: str, price: str) -> None:
    order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                qty=Decimal(qty), limit_price=Decimal(price)))
    _drain()
