"""The official alpaca-py SDK, unchanged, against a live BrokerX: REST calls parse into the SDK's models."""
from decimal import Decimal

import pytest
import requests

from alpaca_compat import ids
from orders.models import Order
from portfolios.models import LedgerAccount
from tests.trading_fixtures import assert_books_balanced

from .conftest import request

pytestmark = pytest.mark.slow


def _ok(reply: dict) -> dict:
    assert reply["ok"], reply
    return reply


def _api_error(reply: dict) -> dict:
    assert not reply["ok"] and reply["error"] == "APIError", reply
    return reply


def _limit(symbol="ACME", qty=10, side="buy", limit_price=99.5, tif="day", **extra) -> dict:
    return request("LimitOrderRequest", symbol=symbol, qty=qty, side=side, time_in_force=tif,
                   limit_price=limit_price, **extra)


def _cash(user, kind="cash_available") -> Decimal:
    account = LedgerAccount.objects.filter(owner=user, kind=kind, asset="USD").first()
    return account.balance if account else Decimal("0")


def test_get_account_reports_ledger_balances(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)

    account = _ok(sdk.call("get_account"))
    assert account["type"] == "TradeAccount"
    value = account["value"]
    assert value["id"] == str(ids.encode(ids.Kind.ACCOUNT, user.pk))
    assert value["status"] == "ACTIVE"
    assert (value["cash"], value["buying_power"], value["equity"], value["currency"]) == ("10000", "10000", "10000",
                                                                                        "USD")
    assert value["trading_blocked"] is False

    # A resting buy holds its cash: buying power drops, cash (available + reserved) and equity do not.
    _ok(sdk.call("submit_order", _limit(qty=10, limit_price=99.5)))
    value = _ok(sdk.call("get_account"))["value"]
    held = _cash(user, "cash_reserved")
    assert held > Decimal("995")
    assert Decimal(value["buying_power"]) == Decimal("10000") - held
    assert value["cash"] == "10000" and value["equity"] == "10000"
    assert_books_balanced()


def test_submit_limit_order_is_parsed_by_the_sdk(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)

    reply = _ok(sdk.call("submit_order", _limit(qty=10, limit_price=99.5, client_order_id="my-order-1")))

    assert reply["type"] == "Order"
    order = reply["value"]
    db_order = Order.objects.get(user=user, client_order_id="my-order-1")
    assert order["id"] == str(ids.encode(ids.Kind.ORDER, db_order.pk))
    assert ids.decode(ids.Kind.ORDER, order["id"]) == db_order.pk
    assert order["asset_id"] == str(ids.encode(ids.Kind.ASSET, alpaca_instrument.pk))
    assert (order["symbol"], order["side"], order["type"], order["order_type"]) == ("ACME", "buy", "limit", "limit")
    assert (order["qty"], order["filled_qty"], order["limit_price"], order["stop_price"]) == ("10", "0", "99.5", None)
    assert (order["status"], order["time_in_force"], order["order_class"]) == ("new", "day", "simple")
    assert order["asset_class"] == "us_equity" and order["extended_hours"] is False
    assert order["created_at"] and order["submitted_at"] and order["filled_avg_price"] is None
    assert db_order.reserved_amount == _cash(user, "cash_reserved")
    assert_books_balanced()


def test_submit_market_order(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(shares={"ACME": "10"})
    sdk.use(key, secret)

    reply = _ok(sdk.call("submit_order", request("MarketOrderRequest", symbol="ACME", qty=4, side="sell",
                                                  time_in_force="day")))

    order = reply["value"]
    assert reply["type"] == "Order"
    assert (order["type"], order["side"], order["qty"], order["limit_price"]) == ("market", "sell", "4", None)
    assert Order.objects.get(pk=ids.decode(ids.Kind.ORDER, order["id"])).reserved_amount == Decimal("4")
    assert_books_balanced()


def test_duplicate_client_order_id_is_refused_like_alpaca(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)
    _ok(sdk.call("submit_order", _limit(qty=1, client_order_id="dup")))

    error = _api_error(sdk.call("submit_order", _limit(qty=2, client_order_id="dup")))

    assert (error["status_code"], error["code"]) == (422, 40010001)
    assert "client_order_id" in error["message"]
    assert Order.objects.filter(user=user).count() == 1
    assert_books_balanced()


def test_get_orders_filters(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)
    first = _ok(sdk.call("submit_order", _limit(qty=1, limit_price=99)))["value"]
    second = _ok(sdk.call("submit_order", _limit(qty=2, limit_price=98)))["value"]
    third = _ok(sdk.call("submit_order", _limit(qty=3, limit_price=97)))["value"]
    _ok(sdk.call("cancel_order_by_id", first["id"]))

    def ids_of(**fields):
        reply = _ok(sdk.call("get_orders", filter=request("GetOrdersRequest", **fields)))
        assert reply["type"] in ("list[Order]", "list[]")
        return [o["id"] for o in reply["value"]]

    assert [o["id"] for o in _ok(sdk.call("get_orders"))["value"]] == [third["id"], second["id"]]  # open, newest first
    assert ids_of(status="closed") == [first["id"]]
    assert ids_of(status="all", direction="asc") == [first["id"], second["id"], third["id"]]
    assert ids_of(status="all", limit=1) == [third["id"]]
    assert ids_of(status="all", symbols=["ACME"], side="buy") == [third["id"], second["id"], first["id"]]
    assert ids_of(status="all", symbols=["OTHER"]) == []
    assert ids_of(status="all", side="sell") == []
    assert ids_of(status="all", after="2000-01-01T00:00:00Z", nested=True) == [third["id"], second["id"], first["id"]]
    assert ids_of(status="all", until="2000-01-01T00:00:00Z") == []


def test_get_order_by_id_and_by_client_order_id(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)
    placed = _ok(sdk.call("submit_order", _limit(qty=5, client_order_id="abc-5")))["value"]

    by_id = _ok(sdk.call("get_order_by_id", placed["id"]))
    by_client_id = _ok(sdk.call("get_order_by_client_id", "abc-5"))

    assert by_id["type"] == by_client_id["type"] == "Order"
    assert by_id["value"]["id"] == by_client_id["value"]["id"] == placed["id"]
    assert by_client_id["value"]["client_order_id"] == "abc-5"
    missing = _api_error(sdk.call("get_order_by_client_id", "nope"))
    assert (missing["status_code"], missing["code"]) == (404, 40410000)
    unknown = _api_error(sdk.call("get_order_by_id", str(ids.encode(ids.Kind.ORDER, 10**9))))
    assert (unknown["status_code"], unknown["code"]) == (404, 40410000)


def test_orders_of_another_account_are_not_found(sdk, trader_with_key, alpaca_instrument):
    _, key, secret = trader_with_key(cash="10000")
    _, other_key, other_secret = trader_with_key(cash="10000")
    placed = _ok(sdk.call("submit_order", _limit(qty=1), client=sdk.use(key, secret)))["value"]
    sdk.use(other_key, other_secret)

    assert _api_error(sdk.call("get_order_by_id", placed["id"]))["status_code"] == 404
    assert _api_error(sdk.call("replace_order_by_id", placed["id"],
                               request("ReplaceOrderRequest", qty=3)))["status_code"] == 404
    assert _api_error(sdk.call("cancel_order_by_id", placed["id"]))["status_code"] == 404
    assert _ok(sdk.call("get_orders", filter=request("GetOrdersRequest", status="all")))["value"] == []
    assert Order.objects.get(pk=ids.decode(ids.Kind.ORDER, placed["id"])).status == "new"


def test_replace_order_keeps_the_id_and_moves_the_reservation(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)
    placed = _ok(sdk.call("submit_order", _limit(qty=10, limit_price=99.5)))["value"]
    held_before = _cash(user, "cash_reserved")

    reply = _ok(sdk.call("replace_order_by_id", placed["id"],
                         request("ReplaceOrderRequest", qty=20, limit_price=98.25, time_in_force="gtc")))

    assert reply["type"] == "Order"
    order = reply["value"]
    assert order["id"] == placed["id"]
    assert (order["qty"], order["limit_price"], order["time_in_force"], order["status"]) == ("20", "98.25", "gtc",
                                                                                            "new")
    db_order = Order.objects.get(pk=ids.decode(ids.Kind.ORDER, order["id"]))
    assert db_order.version == 2
    assert _cash(user, "cash_reserved") == db_order.reserved_amount > held_before
    assert_books_balanced()


def test_replace_refusals(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="3000")
    sdk.use(key, secret)
    placed = _ok(sdk.call("submit_order", _limit(qty=10, limit_price=99.5)))["value"]

    too_big = _api_error(sdk.call("replace_order_by_id", placed["id"], request("ReplaceOrderRequest", qty=100)))
    assert (too_big["status_code"], too_big["code"]) == (403, 40310000)
    empty = _api_error(sdk.call("replace_order_by_id", placed["id"], request("ReplaceOrderRequest",
                                                                                 client_order_id="other")))
    assert (empty["status_code"], empty["code"]) == (422, 40010001)
    assert Order.objects.get(pk=ids.decode(ids.Kind.ORDER, placed["id"])).version == 1
    assert_books_balanced()


def test_cancel_order_by_id_releases_the_reservation(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)
    placed = _ok(sdk.call("submit_order", _limit(qty=10)))["value"]

    reply = _ok(sdk.call("cancel_order_by_id", placed["id"]))

    assert reply["value"] is None
    assert Order.objects.get(pk=ids.decode(ids.Kind.ORDER, placed["id"])).status == "canceled"
    assert _cash(user, "cash_reserved") == 0 and _cash(user) == Decimal("10000")
    assert _ok(sdk.call("get_order_by_id", placed["id"]))["value"]["status"] == "canceled"
    again = _api_error(sdk.call("cancel_order_by_id", placed["id"]))
    assert (again["status_code"], again["code"]) == (422, 42210000)
    assert "canceled" in again["message"]
    assert_books_balanced()


def test_cancel_orders_cancels_every_open_order(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000", shares={"ACME": "5"})
    sdk.use(key, secret)
    buy = _ok(sdk.call("submit_order", _limit(qty=10)))["value"]
    sell = _ok(sdk.call("submit_order", _limit(qty=5, side="sell", limit_price=101)))["value"]

    reply = _ok(sdk.call("cancel_orders"))

    assert reply["type"] == "list[CancelOrderResponse]"
    assert sorted((r["id"], r["status"]) for r in reply["value"]) == sorted([(buy["id"], 200), (sell["id"], 200)])
    assert set(Order.objects.filter(user=user).values_list("status", flat=True)) == {"canceled"}
    assert _ok(sdk.call("cancel_orders"))["value"] == []
    assert_books_balanced()


def test_positions(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="1000", shares={"ACME": "10"})
    sdk.use(key, secret)

    reply = _ok(sdk.call("get_all_positions"))

    assert reply["type"] == "list[Position]"
    [position] = reply["value"]
    assert position["asset_id"] == str(ids.encode(ids.Kind.ASSET, alpaca_instrument.pk))
    assert (position["symbol"], position["side"], position["qty"], position["qty_available"]) == ("ACME", "long",
                                                                                                 "10", "10")
    assert (position["avg_entry_price"], position["current_price"], position["cost_basis"]) == ("90", "100", "900")
    assert (position["market_value"], position["unrealized_pl"]) == ("1000", "100")
    one = _ok(sdk.call("get_open_position", "ACME"))
    assert one["type"] == "Position" and one["value"]["qty"] == "10"
    by_asset_id = _ok(sdk.call("get_open_position", position["asset_id"]))
    assert by_asset_id["value"]["symbol"] == "ACME"
    account = _ok(sdk.call("get_account"))["value"]
    assert (account["long_market_value"], account["equity"]) == ("1000", "2000")


def test_close_position_sells_with_a_market_order(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(shares={"ACME": "10"})
    sdk.use(key, secret)

    part = _ok(sdk.call("close_position", "ACME", request("ClosePositionRequest", qty="4")))
    rest = _ok(sdk.call("close_position", "ACME"))

    assert part["type"] == rest["type"] == "Order"
    assert [(o["value"]["side"], o["value"]["type"], o["value"]["qty"]) for o in (part, rest)] == [
        ("sell", "market", "4"), ("sell", "market", "6")]
    nothing_left = _api_error(sdk.call("close_position", "ACME"))
    assert (nothing_left["status_code"], nothing_left["code"]) == (403, 40310000)
    assert_books_balanced()


def test_missing_position_is_404(sdk, trader_with_key, alpaca_instrument):
    _, key, secret = trader_with_key(cash="100")
    sdk.use(key, secret)

    for reply in (sdk.call("get_open_position", "ACME"), sdk.call("close_position", "ACME"),
                  sdk.call("get_open_position", "NOSUCH")):
        error = _api_error(reply)
        assert (error["status_code"], error["code"], error["message"]) == (404, 40410000, "position does not exist")


def test_assets(sdk, trader_with_key, alpaca_instrument):
    _, key, secret = trader_with_key()
    sdk.use(key, secret)

    asset = _ok(sdk.call("get_asset", "ACME"))
    by_id = _ok(sdk.call("get_asset", asset["value"]["id"]))
    every = _ok(sdk.call("get_all_assets"))

    assert asset["type"] == "Asset" and asset["value"] == by_id["value"]
    value = asset["value"]
    assert value["id"] == str(ids.encode(ids.Kind.ASSET, alpaca_instrument.pk))
    assert (value["symbol"], value["name"], value["class"], value["status"]) == ("ACME", "Acme Corp", "us_equity",
                                                                               "active")
    assert value["tradable"] is True and value["fractionable"] is False and value["price_increment"] == 0.01
    assert every["type"] == "list[Asset]" and [a["symbol"] for a in every["value"]] == ["ACME"]
    missing = _api_error(sdk.call("get_asset", "NOSUCH"))
    assert (missing["status_code"], missing["code"]) == (404, 40410000)


def test_clock_and_calendar(sdk, trader_with_key):
    _, key, secret = trader_with_key()
    sdk.use(key, secret)

    clock = _ok(sdk.call("get_clock"))
    calendar = _ok(sdk.call("get_calendar", request("GetCalendarRequest", start="2030-01-01", end="2030-01-03")))

    assert clock["type"] == "Clock"
    assert clock["value"]["next_close"] > clock["value"]["timestamp"]
    assert isinstance(clock["value"]["is_open"], bool)
    assert calendar["type"] == "list[Calendar]"
    assert [day["date"] for day in calendar["value"]] == ["2030-01-01", "2030-01-02", "2030-01-03"]
    assert calendar["value"][0]["open"] == "2030-01-01T00:00:00"


def test_insufficient_buying_power_is_403(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="500")
    sdk.use(key, secret)

    error = _api_error(sdk.call("submit_order", _limit(qty=10, limit_price=99.5)))

    assert (error["status_code"], error["code"], error["message"]) == (403, 40310000, "insufficient buying power")
    assert not Order.objects.filter(user=user).exists()
    assert _cash(user) == Decimal("500")
    assert_books_balanced()


def test_selling_shares_not_held_is_403(sdk, trader_with_key, alpaca_instrument):
    _, key, secret = trader_with_key(cash="5000")
    sdk.use(key, secret)

    error = _api_error(sdk.call("submit_order", _limit(qty=1, side="sell")))

    assert (error["status_code"], error["code"]) == (403, 40310000)


@pytest.mark.parametrize(("order", "status", "code"), [
    (_limit(limit_price=150), 422, 42210000),  # outside the price band
    (_limit(symbol="NOSUCH"), 422, 40010001),
    (_limit(qty=1.5), 422, 42210000),  # not a whole lot
    # ACME trades in whole shares: no notional (test_sdk_notional.py places one on a fractionable instrument).
    (request("MarketOrderRequest", symbol="ACME", notional=100, side="buy", time_in_force="day"), 422, 42210000),
    # An order class BrokerX does not take: exits are sells, so a bracket's entry buys (no short selling).
    (request("LimitOrderRequest", symbol="ACME", qty=1, side="sell", time_in_force="gtc", limit_price=100,
             order_class="bracket", take_profit=request("TakeProfitRequest", limit_price=95),
             stop_loss=request("StopLossRequest", stop_price=105)), 422, 42210000),
    (_limit(tif="opg"), 422, 40010001),
])
def test_invalid_orders_are_422(sdk, trader_with_key, alpaca_instrument, order, status, code):
    user, key, secret = trader_with_key(cash="10000")
    sdk.use(key, secret)

    error = _api_error(sdk.call("submit_order", order))

    assert (error["status_code"], error["code"]) == (status, code), error
    assert not Order.objects.filter(user=user).exists()


def test_bad_key_is_401(sdk, trader_with_key, alpaca_instrument):
    _, key, secret = trader_with_key(cash="100")

    for key_id, key_secret in ((key, secret + "x"), ("BXUNKNOWNKEY00000000", secret)):
        sdk.use(key_id, key_secret)
        error = _api_error(sdk.call("get_account"))
        assert (error["status_code"], error["code"], error["message"]) == (401, 40110000, "request is not authorized")
    no_headers = requests.get(f"{sdk.url}/v2/account", timeout=10)
    assert no_headers.status_code == 401 and no_headers.json() == {"code": 40110000,
                                                                   "message": "request is not authorized"}


def test_read_only_key_cannot_trade(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(cash="10000", scope="read")
    sdk.use(key, secret)

    assert _ok(sdk.call("get_account"))["type"] == "TradeAccount"
    error = _api_error(sdk.call("submit_order", _limit(qty=1)))

    assert (error["status_code"], error["code"]) == (403, 40310000)
    assert not Order.objects.filter(user=user).exists()


def test_unverified_account_cannot_trade(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key(verified=False)
    sdk.use(key, secret)

    assert _ok(sdk.call("get_account"))["value"]["trading_blocked"] is True
    error = _api_error(sdk.call("submit_order", _limit(qty=1)))
    assert (error["status_code"], error["code"]) == (403, 40310000)
