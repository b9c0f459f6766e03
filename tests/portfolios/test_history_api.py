"""GET /api/v1/portfolio/history: the equity history Alpaca's /v2/account/portfolio/history serves, natively."""
from decimal import Decimal

import pytest

from orders.services import OrderRequest, order_place
from portfolios import history
from tests.trading_fixtures import assert_books_balanced, match

pytestmark = pytest.mark.usefixtures("fresh_books")


def limit(user, side, qty, price):
    order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                qty=Decimal(qty), limit_price=Decimal(price)))


@pytest.fixture
def traded(instrument, make_trader):
    buyer, seller = make_trader(cash="1000"), make_trader(shares={"ACME": "10"})
    limit(seller, "sell", "2", "100.00")
    limit(buyer, "buy", "2", "100.00")
    match()
    return buyer


@pytest.mark.django_db
def test_history_ends_at_the_portfolio_equity(traded, api_client):
    api_client.force_authenticate(traded)
    equity = Decimal(api_client.get("/api/v1/portfolio").json()["equity"])
    answer = api_client.get("/api/v1/portfolio/history", {"period": "1D"})
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["timeframe"] == "1Min" and len(body["timestamp"]) == len(body["equity"]) in (1440, 1441)
    assert body["timestamp"] == sorted(body["timestamp"])
    assert body["equity"][-1] == pytest.approx(float(equity))
    assert body["base_value"] == 0  # funded within the day: the funding is money moved in, not profit
    assert body["profit_loss"][-1] == pytest.approx(float(equity - Decimal("1000")))
    # One computation for both doors.
    window = history.window_from(period="1D", timeframe=None)
    assert history.portfolio_history(traded, window)["equity"][-1] == body["equity"][-1]
    assert_books_balanced()


@pytest.mark.django_db
def test_periods_timeframes_and_all(traded, api_client):
    api_client.force_authenticate(traded)
    week = api_client.get("/api/v1/portfolio/history?period=1W").json()
    assert week["timeframe"] == "15Min" and len(week["equity"]) in (672, 673)
    month = api_client.get("/api/v1/portfolio/history?period=1M&timeframe=1D").json()
    assert month["timeframe"] == "1D" and len(month["equity"]) in (30, 31)
    everything = api_client.get("/api/v1/portfolio/history?period=all").json()
    assert everything["timestamp"][0] <= traded.date_joined.timestamp() < everything["timestamp"][0] + 60
    assert everything["equity"][-1] == month["equity"][-1]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["period=1X", "period=0D", "timeframe=2Min", "period=9999A",
                                   "start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "period=1A&timeframe=1Min"])
def test_a_window_that_names_nothing_is_a_400(traded, api_client, query):
    api_client.force_authenticate(traded)
    answer = api_client.get(f"/api/v1/portfolio/history?{query}")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_history_window" and answer.json()["message"]


@pytest.mark.django_db
def test_history_needs_credentials(api_client):
    assert api_client.get("/api/v1/portfolio/history").status_code in (401, 403)
