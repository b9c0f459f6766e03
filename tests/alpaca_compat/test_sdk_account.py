"""alpaca-py against a live BrokerX on the account's history: activities, portfolio history, positions on the day."""
from decimal import Decimal

import pytest
import requests

from alpaca_compat import ids
from matching.services import book_forget
from orders.models import Instrument
from outbox.services import outbox_drain
from portfolios.services import deposit_create, deposit_settle
from tests.trading_fixtures import assert_books_balanced

from .conftest import request

pytestmark = pytest.mark.slow


def _ok(reply: dict) -> dict:
    assert reply["ok"], reply
    return reply


@pytest.fixture
def traded(sdk, trader_with_key, alpaca_instrument):
    """A buyer and a seller who traded 5 ACME at 100 through the SDK; the buyer also deposited 500 (settled)."""
    book_forget()
    seller, seller_key, seller_secret = trader_with_key(shares={"ACME": "10"})
    buyer, buyer_key, buyer_secret = trader_with_key(cash="10000")
    sdk.use(seller_key, seller_secret)
    _ok(sdk.call("submit_order", request("LimitOrderRequest", symbol="ACME", qty=5, side="sell",
                                         time_in_force="gtc", limit_price=100)))
    sdk.use(buyer_key, buyer_secret)
    _ok(sdk.call("submit_order", request("LimitOrderRequest", symbol="ACME", qty=5, side="buy",
                                         time_in_force="gtc", limit_price=100)))
    while outbox_drain(queue="critical", partition_key="ACME"):
        pass
    deposit = deposit_create(user=buyer, amount=Decimal("500"))
    deposit_settle(deposit_id=deposit.pk)
    yield buyer, buyer_key, buyer_secret
    book_forget()


def test_activities_parse_into_the_sdks_models(sdk, traded):
    buyer, key, secret = traded
    sdk.use(key, secret)

    reply = _ok(sdk.send("activities", client=sdk.client))
    assert reply["type"] == "list[NonTradeActivity,TradeActivity]"
    activities = reply["value"]
    assert [a["activity_type"] for a in activities] == ["CSD", "FEE", "FILL", "JNLC"]  # newest first
    csd, fee, fill, funding = activities
    assert fill["symbol"] == "ACME" and (fill["qty"], fill["price"], fill["side"]) == (5.0, 100.0, "buy")
    assert (fill["type"], fill["order_status"], fill["leaves_qty"], fill["cum_qty"]) == ("fill", "filled", 0, 5)
    assert ids.decode(ids.Kind.ORDER, fill["order_id"]) is not None
    assert fill["account_id"] == str(ids.encode(ids.Kind.ACCOUNT, buyer.pk))
    assert fee["net_amount"] < 0 and fee["symbol"] == "ACME"
    assert csd["net_amount"] == 500.0 and funding["net_amount"] == 10000.0

    fills = _ok(sdk.send("activities", client=sdk.client, activity_type="FILL"))["value"]
    assert [a["id"] for a in fills] == [fill["id"]]
    both = _ok(sdk.send("activities", client=sdk.client, params={"activity_types": "CSD,JNLC", "direction": "asc"}))
    assert [a["activity_type"] for a in both["value"]] == ["JNLC", "CSD"]


def test_activities_page_by_token_without_gaps_or_repeats(sdk, traded):
    _, key, secret = traded
    sdk.use(key, secret)
    everything = [a["id"] for a in _ok(sdk.send("activities", client=sdk.client))["value"]]

    for direction, expected in (("desc", everything), ("asc", everything[::-1])):
        seen, token = [], None
        while True:
            params = {"page_size": 1, "direction": direction, **({"page_token": token} if token else {})}
            page = _ok(sdk.send("activities", client=sdk.client, params=params))["value"]
            if not page:
                break
            seen += [a["id"] for a in page]
            token = page[-1]["id"]
        assert seen == expected, direction


def test_activity_refusals(sdk, traded):
    _, key, secret = traded
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    base = f"{sdk.url}/v2/account/activities"
    for params in ({"page_size": 0}, {"page_token": "nonsense"}, {"direction": "up"}, {"activity_types": "NOPE"},
                   {"date": "2026-01-01", "after": "2026-01-01T00:00:00Z"}):
        response = requests.get(base, params=params, headers=headers, timeout=10)
        assert response.status_code == 422 and set(response.json()) == {"code", "message"}, (params, response.text)
    assert requests.get(f"{base}/DIV", headers=headers, timeout=10).json() == []


def test_portfolio_history_through_the_sdk(sdk, traded):
    buyer, key, secret = traded
    sdk.use(key, secret)

    reply = _ok(sdk.call("get_portfolio_history", request("GetPortfolioHistoryRequest", period="1D",
                                                           timeframe="1H")))
    assert reply["type"] == "PortfolioHistory"
    history = reply["value"]
    assert history["timeframe"] == "1H" and len(history["timestamp"]) in (24, 25)
    assert len(history["equity"]) == len(history["profit_loss"]) == len(history["timestamp"])
    assert history["timestamp"] == sorted(history["timestamp"])
    # Now: 10,500 of funding and deposit in, less the fill's cost and fee, plus 5 shares marked at 100.
    account = _ok(sdk.call("get_account"))["value"]
    assert history["equity"][-1] == pytest.approx(float(account["equity"]))
    fee = 10000 + 500 - 500 - float(account["cash"])  # what the cash lost beyond the shares' price
    assert fee == pytest.approx(0.25)  # the taker fee: 5 x 100 x 0.0005
    assert history["profit_loss"][-1] == pytest.approx(-fee)  # deposits are not profit; the fee is a loss
    assert history["base_value"] == 0  # the account was opened within the day

    daily = _ok(sdk.call("get_portfolio_history", request("GetPortfolioHistoryRequest", period="1W")))["value"]
    assert daily["timeframe"] == "15Min"
    bad = sdk.call("get_portfolio_history", request("GetPortfolioHistoryRequest", period="1X"))
    assert not bad["ok"] and bad["status_code"] == 422


def test_positions_show_the_change_since_the_previous_close(sdk, traded):
    _, key, secret = traded
    Instrument.objects.filter(symbol="ACME").update(previous_close=Decimal("80"))
    sdk.use(key, secret)

    [position] = _ok(sdk.call("get_all_positions"))["value"]
    assert (position["lastday_price"], position["current_price"]) == ("80", "100")
    assert Decimal(position["change_today"]) == Decimal("0.25")
    assert position["unrealized_intraday_pl"] == "100"  # 5 x (100 - 80)
    assert_books_balanced()
