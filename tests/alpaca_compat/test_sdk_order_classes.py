"""alpaca-py, unchanged, against a live BrokerX places order classes (bracket, OCO, OTO) and trailing stops: the
answers parse into the SDK's models with their legs, a nested listing rolls the legs up under their first order,
a bracket's exits go live with its entry's fills and one exit cancels the other, a trail is replaced."""
from decimal import Decimal

import pytest
import requests

from matching.services import book_forget
from orders.models import Order
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.trading_fixtures import assert_books_balanced, balance

from .conftest import request

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fresh_books():
    book_forget()
    yield
    book_forget()


def _ok(reply: dict) -> dict:
    assert reply["ok"], reply
    return reply


def _drain() -> None:
    while outbox_drain(queue="critical", partition_key="ACME"):
        pass


def _place(user, side: str, qty: str, price: str, tif: str = "gtc") -> None:
    """A counterparty's limit order, placed natively, then matched."""
    order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force=tif,
                                                qty=Decimal(qty), limit_price=Decimal(price)))
    _drain()


def _bracket(**fields) -> dict:
    return request("LimitOrderRequest", symbol="ACME", side="buy", time_in_force="gtc", order_class="bracket",
                   take_profit=request("TakeProfitRequest", limit_price=105),
                   stop_loss=request("StopLossRequest", stop_price=95), **fields)


def _order(sdk, alpaca_id: str) -> dict:
    reply = _ok(sdk.call("get_order_by_id", alpaca_id))
    assert reply["type"] == "Order"
    return reply["value"]


def _orders(sdk, **fields) -> list[dict]:
    reply = _ok(sdk.call("get_orders", filter=request("GetOrdersRequest", **fields)))
    assert reply["type"] in ("list[Order]", "list[]")
    return reply["value"]


def _legs(order: dict) -> list[tuple]:
    return [(leg["type"], leg["side"], leg["status"], leg["qty"], leg["limit_price"], leg["stop_price"])
            for leg in order["legs"]]


def test_a_bracket_holds_its_exits_until_the_entry_fills_then_one_exit_cancels_the_other(
        sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="5000")
    seller, _, _ = trader_with_key(shares={"ACME": "10"})
    sdk.use(key, secret)

    reply = _ok(sdk.call("submit_order", _bracket(qty=10, limit_price=100)))
    _drain()

    assert reply["type"] == "Order"
    entry = reply["value"]
    assert (entry["order_class"], entry["type"], entry["side"], entry["qty"], entry["status"]) == (
        "bracket", "limit", "buy", "10", "new")
    # Held exits: BrokerX sizes them by what the entry bought, so far nothing.
    assert _legs(entry) == [("limit", "sell", "held", "0", "105", None), ("stop", "sell", "held", "0", None, "95")]
    assert all(leg["order_class"] == "bracket" and leg["legs"] is None for leg in entry["legs"])
    take_profit_id, stop_loss_id = (leg["id"] for leg in entry["legs"])
    assert [o["id"] for o in _orders(sdk, nested=True)] == [entry["id"]]
    assert {o["id"] for o in _orders(sdk)} == {entry["id"], take_profit_id, stop_loss_id}  # held legs are open

    _place(seller, "sell", "4", "100.00")
    partial = _order(sdk, entry["id"])
    assert (partial["status"], partial["filled_qty"]) == ("partially_filled", "4")
    assert _legs(partial) == [("limit", "sell", "new", "4", "105", None), ("stop", "sell", "new", "4", None, "95")]

    _place(seller, "sell", "6", "100.00")
    filled = _order(sdk, entry["id"])
    assert (filled["status"], filled["filled_qty"], filled["filled_avg_price"]) == ("filled", "10", "100")
    assert [leg["qty"] for leg in filled["legs"]] == ["10", "10"]
    # Nested, an open class is listed by its first order even once that has filled; flat, each order is its own.
    nested = _orders(sdk, nested=True)
    assert [o["id"] for o in nested] == [entry["id"]]
    assert [leg["id"] for leg in nested[0]["legs"]] == [take_profit_id, stop_loss_id]
    flat = _orders(sdk, status="all")
    assert [o["id"] for o in flat] == [stop_loss_id, take_profit_id, entry["id"]]
    assert all(o["legs"] is None for o in flat)
    # ... and its filled entry is a closed order too.
    assert [o["id"] for o in _orders(sdk, status="closed", nested=True)] == [entry["id"]]

    # Someone lifts the take-profit: it fills and the stop-loss goes with it.
    _place(trader_with_key(cash="5000")[0], "buy", "10", "105.00", tif="day")
    done = _order(sdk, entry["id"])
    assert [(leg["status"], leg["filled_qty"]) for leg in done["legs"]] == [("filled", "10"), ("canceled", "0")]
    assert _orders(sdk, nested=True) == [] and [o["id"] for o in _orders(sdk, status="closed", nested=True)] == [
        entry["id"]]
    assert balance(user, "securities_available", "ACME") == 0
    assert balance(user, "cash_reserved") == 0
    history = _ok(sdk.call("get_portfolio_history", request("GetPortfolioHistoryRequest", period="1D")))
    assert history["type"] == "PortfolioHistory" and history["value"]["equity"]
    assert_books_balanced()


def test_a_market_bracket_fills_at_once_and_cancelling_a_leg_takes_its_class(sdk, trader_with_key,
                                                                              alpaca_instrument):
    user, key, secret = trader_with_key(cash="5000")
    seller, _, _ = trader_with_key(shares={"ACME": "3"})
    _place(seller, "sell", "3", "100.00")
    sdk.use(key, secret)

    entry = _ok(sdk.call("submit_order", request(
        "MarketOrderRequest", symbol="ACME", qty=3, side="buy", time_in_force="day", order_class="bracket",
        take_profit=request("TakeProfitRequest", limit_price=108),
        stop_loss=request("StopLossRequest", stop_price=92, limit_price=91))))["value"]
    _drain()

    assert (entry["order_class"], entry["type"]) == ("bracket", "market")
    live = _order(sdk, entry["id"])
    assert live["status"] == "filled"
    assert _legs(live) == [("limit", "sell", "new", "3", "108", None),
                           ("stop_limit", "sell", "new", "3", "91", "92")]
    assert balance(user, "securities_reserved", "ACME") == 3

    _ok(sdk.call("cancel_order_by_id", live["legs"][1]["id"]))
    _drain()

    assert [leg["status"] for leg in _order(sdk, entry["id"])["legs"]] == ["canceled", "canceled"]
    assert balance(user, "securities_reserved", "ACME") == 0
    assert balance(user, "securities_available", "ACME") == 3
    assert_books_balanced()


def test_an_oco_pair_and_an_oto_parse_and_cancel_all_reports_each_order_once(sdk, trader_with_key,
                                                                             alpaca_instrument):
    user, key, secret = trader_with_key(cash="5000", shares={"ACME": "10"})
    sdk.use(key, secret)

    oco = _ok(sdk.call("submit_order", request(
        "LimitOrderRequest", symbol="ACME", qty=10, side="sell", time_in_force="gtc", order_class="oco",
        take_profit=request("TakeProfitRequest", limit_price=105),
        stop_loss=request("StopLossRequest", stop_price=95, limit_price=94))))["value"]
    oto = _ok(sdk.call("submit_order", request(
        "LimitOrderRequest", symbol="ACME", qty=5, side="buy", time_in_force="day", limit_price=99,
        order_class="oto", stop_loss=request("StopLossRequest", stop_price=90))))["value"]
    _drain()

    assert (oco["order_class"], oco["type"], oco["side"], oco["limit_price"], oco["qty"]) == (
        "oco", "limit", "sell", "105", "10")
    assert _legs(oco) == [("stop_limit", "sell", "new", "10", "94", "95")]
    assert balance(user, "securities_reserved", "ACME") == 10  # once for the pair
    assert (oto["order_class"], oto["side"]) == ("oto", "buy")
    assert _legs(oto) == [("stop", "sell", "held", "0", None, "90")]
    nested = _orders(sdk, nested=True)
    assert [(o["id"], len(o["legs"])) for o in nested] == [(oto["id"], 1), (oco["id"], 1)]

    reply = _ok(sdk.call("cancel_orders"))

    every_id = [oco["id"], oco["legs"][0]["id"], oto["id"], oto["legs"][0]["id"]]
    assert sorted((r["id"], r["status"]) for r in reply["value"]) == sorted((i, 200) for i in every_id)
    _drain()
    assert set(Order.objects.filter(user=user).values_list("status", flat=True)) == {"canceled"}
    assert balance(user, "securities_reserved", "ACME") == 0 and balance(user, "cash_reserved") == 0
    assert_books_balanced()


def test_trailing_stops_by_price_and_by_percent_and_their_trail_replaced(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(shares={"ACME": "10"})
    sdk.use(key, secret)

    by_price = _ok(sdk.call("submit_order", request("TrailingStopOrderRequest", symbol="ACME", qty=5, side="sell",
                                                    time_in_force="gtc", trail_price=2)))["value"]
    by_percent = _ok(sdk.call("submit_order", request("TrailingStopOrderRequest", symbol="ACME", qty=5, side="sell",
                                                      time_in_force="gtc", trail_percent=1.5)))["value"]
    _drain()

    assert (by_price["type"], by_price["order_class"], by_price["trail_price"], by_price["trail_percent"]) == (
        "trailing_stop", "simple", "2", None)
    assert (by_percent["trail_price"], by_percent["trail_percent"]) == (None, "1.5")
    # The mark starts at the last trade (100) when the stop enters the book.
    assert {(o["id"], o["hwm"], o["stop_price"]) for o in _orders(sdk, nested=True)} == {
        (by_price["id"], "100", "98"), (by_percent["id"], "100", "98.5")}

    replaced = _ok(sdk.call("replace_order_by_id", by_price["id"], request("ReplaceOrderRequest", trail=5)))
    assert replaced["type"] == "Order" and replaced["value"]["id"] == by_price["id"]
    assert (replaced["value"]["trail_price"], replaced["value"]["trail_percent"]) == ("5", None)
    _ok(sdk.call("replace_order_by_id", by_percent["id"], request("ReplaceOrderRequest", trail=3)))
    _drain()

    moved = _order(sdk, by_price["id"])
    assert (moved["trail_price"], moved["hwm"], moved["stop_price"], moved["status"]) == ("5", "100", "95", "new")
    moved = _order(sdk, by_percent["id"])
    assert (moved["trail_percent"], moved["hwm"], moved["stop_price"]) == ("3", "100", "97")
    assert balance(user, "securities_reserved", "ACME") == 10
    assert_books_balanced()


def test_order_class_refusals_in_alpacas_shape(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="5000", shares={"ACME": "10"})
    sdk.use(key, secret)
    limit = _ok(sdk.call("submit_order", request("LimitOrderRequest", symbol="ACME", qty=1, side="buy",
                                                 time_in_force="day", limit_price=99)))["value"]

    refusals = {
        # No short selling: a bracket's entry buys.
        "bracket sell": sdk.call("submit_order", request(
            "LimitOrderRequest", symbol="ACME", qty=1, side="sell", time_in_force="gtc", limit_price=100,
            order_class="bracket", take_profit=request("TakeProfitRequest", limit_price=95),
            stop_loss=request("StopLossRequest", stop_price=105))),
        "take profit below the entry": sdk.call("submit_order", request(
            "LimitOrderRequest", symbol="ACME", qty=1, side="buy", time_in_force="gtc", limit_price=100,
            order_class="bracket", take_profit=request("TakeProfitRequest", limit_price=99),
            stop_loss=request("StopLossRequest", stop_price=95))),
        "trail on a limit order": sdk.call("replace_order_by_id", limit["id"], request("ReplaceOrderRequest",
                                                                                        trail=1)),
    }

    for name, reply in refusals.items():
        assert not reply["ok"] and (reply["status_code"], reply["code"]) == (422, 42210000), (name, reply)
    multi_leg = requests.post(f"{sdk.url}/v2/orders", headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret},
                              json={"order_class": "mleg", "qty": "1", "type": "market", "time_in_force": "day",
                                    "legs": [{"symbol": "ACME", "side": "buy", "ratio_qty": "1"}]}, timeout=10)
    assert multi_leg.status_code == 422 and multi_leg.json()["code"] == 40010001 and "mleg" in multi_leg.json()[
        "message"]
    assert Order.objects.filter(user=user).count() == 1
    assert_books_balanced()
