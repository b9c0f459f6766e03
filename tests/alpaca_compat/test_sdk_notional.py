"""alpaca-py, unchanged, against a live BrokerX places a notional (dollar) order on a fractionable instrument: the
answer shows the notional and the quantity it became, the order fills and the books balance."""
from decimal import Decimal

import pytest

from alpaca_compat import ids
from matching.services import book_forget
from orders.models import Instrument, Order
from orders.selectors import instrument_cache_invalidate
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.trading_fixtures import assert_books_balanced, balance

from .conftest import request

pytestmark = pytest.mark.slow


def _ok(reply: dict) -> dict:
    assert reply["ok"], reply
    return reply


@pytest.fixture
def fractionable(transactional_db):
    """FRAC: lot 0.001, reference 100.00, band 10%: a market buy is protected, and a notional sized, at 110.00."""
    book_forget()
    inst = Instrument.objects.create(symbol="FRAC", name="Fractional Corp", reference_price=Decimal("100.00"),
                                     last_price=Decimal("100.00"), tick_size=Decimal("0.01"),
                                     lot_size=Decimal("0.001"), price_band_pct=Decimal("0.10"))
    instrument_cache_invalidate("FRAC")
    yield inst
    instrument_cache_invalidate("FRAC")
    book_forget()


def _drain() -> None:
    while outbox_drain(queue="critical", partition_key="FRAC"):
        pass


def test_the_sdk_submits_a_notional_order_that_fills(sdk, trader_with_key, fractionable):
    seller, _, _ = trader_with_key(shares={"FRAC": "5"})
    order_place(user=seller, request=OrderRequest(symbol="FRAC", side="sell", type="limit", time_in_force="gtc",
                                                  qty=Decimal("2"), limit_price=Decimal("100.00")))
    _drain()
    buyer, key, secret = trader_with_key(cash="1000")
    sdk.use(key, secret)

    asset = _ok(sdk.call("get_asset", "FRAC"))["value"]
    reply = _ok(sdk.call("submit_order", request("MarketOrderRequest", symbol="FRAC", notional=100, side="buy",
                                                  time_in_force="day")))
    _drain()

    assert asset["fractionable"] is True and asset["min_trade_increment"] == 0.001
    assert reply["type"] == "Order"
    placed = reply["value"]
    # 100 / 110.00 (the protection price) = 0.909 after rounding down to the lot.
    assert (placed["notional"], placed["qty"], placed["type"], placed["status"]) == ("100", "0.909", "market", "new")
    order_id = ids.decode(ids.Kind.ORDER, placed["id"])
    filled = _ok(sdk.call("get_order_by_id", placed["id"]))["value"]
    assert (filled["status"], filled["filled_qty"], filled["filled_avg_price"]) == ("filled", "0.909", "100")
    assert filled["notional"] == "100" and filled["qty"] == "0.909"
    position = _ok(sdk.call("get_open_position", "FRAC"))["value"]
    assert (position["qty"], position["avg_entry_price"][:6]) == ("0.909", "100.04")  # (90.90 + 0.04 fee) / 0.909
    order = Order.objects.get(pk=order_id)
    assert order.user == buyer and order.notional == Decimal("100") and order.reserved_amount == 0
    assert balance(buyer, "cash_available") == Decimal("1000") - Decimal("90.90") - order.fees_paid
    assert balance(buyer, "securities_available", "FRAC") == Decimal("0.909")
    assert_books_balanced()


def test_the_sdk_sees_a_notional_refused_for_a_whole_share_instrument(sdk, trader_with_key, fractionable,
                                                                      alpaca_instrument):
    user, key, secret = trader_with_key(cash="1000")
    sdk.use(key, secret)

    too_small = sdk.call("submit_order", request("MarketOrderRequest", symbol="FRAC", notional=0.1, side="buy",
                                                 time_in_force="day"))
    whole = sdk.call("submit_order", request("MarketOrderRequest", symbol="ACME", notional=100, side="buy",
                                             time_in_force="day"))

    assert (too_small["status_code"], too_small["code"]) == (422, 42210000) and "smallest" in too_small["message"]
    assert (whole["status_code"], whole["code"]) == (422, 42210000) and "notional" in whole["message"]
    assert not Order.objects.filter(user=user).exists()
