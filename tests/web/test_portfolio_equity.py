"""The portfolio page's equity chart in headless Chromium: drawn from the native portfolio history, per period."""
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from portfolios import history
from portfolios.selectors import portfolio_for_user
from tests.trading_fixtures import assert_books_balanced
from tests.web.conftest import match, place, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def money(value) -> str:
    return f"${Decimal(value):,.2f}"


def test_the_equity_chart_draws_the_history_of_each_period(page, sign_in_as, instrument, make_trader, books_fresh):
    trader = sign_in_as(make_trader(cash="1000"))
    seller = make_trader(shares={"ACME": "50"})
    place(seller, "sell", "4", "100.00")
    place(trader, "buy", "4", "100.00")
    match()
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/portfolio/history" in r.url else None)
    page.goto("/portfolio/")

    chart = page.locator("#equity-chart")
    month = history.portfolio_history(trader, history.window_from(period="1M", timeframe=None))
    expect(page.get_by_role("button", name="1M", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(chart).to_have_attribute("data-points", str(len(month["equity"])))
    expect(page.locator("#equity-empty")).to_be_hidden()
    equity = portfolio_for_user(trader)["equity"]
    assert Decimal(str(month["equity"][-1])) == equity  # the last point is the account as it is now
    summary = page.locator("#equity-summary")
    expect(summary).to_contain_text(money(equity))
    assert month["profit_loss"][-1] < 0  # the buy's fee; the funding is not profit
    expect(summary).to_have_class(re.compile(r"\bneg\b"))
    screenshot(page, "portfolio-equity")

    page.get_by_role("button", name="1D", exact=True).click()
    expect(page.get_by_role("button", name="1D", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="1M", exact=True)).to_have_attribute("aria-pressed", "false")
    day = history.portfolio_history(trader, history.window_from(period="1D", timeframe=None))
    expect(chart).to_have_attribute("data-points", str(len(day["equity"])))
    assert len(day["equity"]) >= 1440  # one point a minute

    page.get_by_role("button", name="All", exact=True).click()
    expect(chart).to_have_attribute("data-points", "1")  # the account is a few seconds old: one 1-minute point
    expect(summary).to_contain_text(money(equity))
    assert [u.split("period=")[1] for u in requests] == ["1M", "1D", "all"]

    page.get_by_role("button", name="1W", exact=True).click()
    expect(chart).to_have_attribute("data-points", str(len(history.portfolio_history(
        trader, history.window_from(period="1W", timeframe=None))["equity"])))
    assert_books_balanced()
