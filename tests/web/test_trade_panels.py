"""The trade page's candle intervals and watchlist panel in headless Chromium."""
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from matching import market
from matching.models import Bar
from orders.models import Instrument
from orders.selectors import instrument_cache_invalidate
from tests.trading_fixtures import assert_books_balanced
from tests.web.conftest import match, place, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
D = Decimal


def seed_minutes(symbol="ACME") -> None:
    """One-minute bars over the last half hour, the newest at the start of the current 5-minute period.

    Close to a period's end, wait for the next one, so the live trade below lands in the seeded period."""
    now = timezone.now()
    if (now - market.period_start(now, "5Min")).total_seconds() > 280:
        time.sleep(301 - (now - market.period_start(now, "5Min")).total_seconds())
        now = timezone.now()
    newest = market.period_start(now, "5Min")
    for k, (o, h, low, c, v) in enumerate([("99.00", "99.50", "98.80", "99.20", "4"),
                                           ("99.20", "100.40", "99.10", "100.30", "6"),
                                           ("100.30", "100.90", "99.70", "99.80", "2"),
                                           ("99.80", "101.00", "99.60", "100.60", "5"),
                                           ("100.60", "100.60", "97.90", "98.10", "9"),
                                           ("98.10", "98.50", "97.50", "98.40", "3"),
                                           ("98.40", "99.90", "98.40", "99.70", "7")]):
        start = newest - timedelta(minutes=[0, 3, 6, 11, 14, 22, 27][k])
        Bar.objects.create(symbol=symbol, start=start, open=D(o), high=D(h), low=D(low), close=D(c), volume=D(v),
                           notional=D(c) * D(v), trade_count=1)


def legend_of(candle: dict) -> str:
    return (f"O {candle['open']}  H {candle['high']}  L {candle['low']}  C {candle['close']}  "
            f"V {int(D(candle['volume']))}")


def test_the_chart_switches_interval_and_follows_live_candles(page, sign_in_as, instrument, make_trader,
                                                              books_fresh):
    seed_minutes()
    trader = sign_in_as(make_trader(cash="10000"))
    seller = make_trader(shares={"ACME": "50"})
    page.goto("/trade/?symbol=ACME")
    chart = page.locator("#chart")
    expect(page.locator("#market-conn")).to_have_attribute("data-state", "live")
    expect(chart).to_have_attribute("data-timeframe", "1Min")
    expect(chart).to_have_attribute("data-candles", "7")
    minutes = market.market_bars("ACME", timeframe="1Min")["bars"]
    expect(page.locator("#chart-legend")).to_contain_text(legend_of(minutes[-1]))

    page.get_by_role("button", name="5m", exact=True).click()
    expect(page.get_by_role("button", name="5m", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="1m", exact=True)).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#chart-title")).to_have_text("5-minute candles")
    expect(chart).to_have_attribute("data-timeframe", "5Min")
    fives = market.market_bars("ACME", timeframe="5Min")["bars"]
    assert 4 <= len(fives) < 7  # minutes share periods: fewer candles than minutes
    expect(chart).to_have_attribute("data-candles", str(len(fives)))
    expect(page.locator("#chart-legend")).to_contain_text(legend_of(fives[-1]))
    screenshot(page, "trade-5min")

    # A trade now lands in the newest 5-minute period: its candle is pushed, merged with the seeded minute.
    place(seller, "sell", "3", "101.50")
    place(trader, "buy", "3", "101.50")
    match()
    current = market.market_bars("ACME", timeframe="5Min", limit=1)["bars"][-1]
    assert current["start"] == fives[-1]["start"] and current["open"] == "99.00"  # the seeded minute opened it
    assert (current["high"], current["close"], current["volume"]) == ("101.50", "101.50", "7")
    expect(page.locator("#chart-legend")).to_contain_text(legend_of(current))
    expect(chart).to_have_attribute("data-candles", str(len(fives)))

    page.get_by_role("button", name="1h", exact=True).click()
    expect(page.locator("#chart-title")).to_have_text("1-hour candles")
    hours = market.market_bars("ACME", timeframe="1Hour")["bars"]
    expect(chart).to_have_attribute("data-candles", str(len(hours)))
    expect(page.locator("#chart-legend")).to_contain_text(legend_of(hours[-1]))
    page.get_by_role("button", name="1d", exact=True).click()
    days = market.market_bars("ACME", timeframe="1Day")["bars"]
    expect(chart).to_have_attribute("data-timeframe", "1Day")
    expect(chart).to_have_attribute("data-candles", str(len(days)))
    expect(page.locator("#chart-legend")).to_contain_text(f"V {int(D(days[-1]['volume']))}")
    assert sum(D(d["volume"]) for d in days) == 39  # every seeded minute and the trade, whatever the periods

    page.get_by_role("button", name="1m", exact=True).click()
    expect(chart).to_have_attribute("data-candles", re.compile(r"^(7|8)$"))  # the trade's minute may be new
    expect(page.locator("#chart-legend")).to_contain_text("C 101.50")
    assert_books_balanced()


def _bolt() -> Instrument:
    bolt = Instrument.objects.create(symbol="BOLT", name="Bolt Industries", reference_price=D("20.00"),
                                     tick_size=D("0.01"), lot_size=D("1"), price_band_pct=D("0.10"),
                                     max_order_notional=D("500000"), last_price=D("21.00"),
                                     previous_close=D("20.00"))
    instrument_cache_invalidate("BOLT")
    return bolt


def test_the_watchlist_adds_switches_and_removes_symbols(page, sign_in_as, instrument, make_trader):
    from watchlists.models import Watchlist

    _bolt()
    Instrument.objects.filter(symbol="ACME").update(last_price=D("98.00"), previous_close=D("100.00"))
    instrument_cache_invalidate("ACME")
    trader = sign_in_as(make_trader(cash="1000"))
    page.goto("/trade/?symbol=ACME")
    panel = page.locator("#watchlist")
    expect(panel.locator("#watchlist-body")).to_contain_text("No symbols watched yet.")

    panel.get_by_label("Add to the watchlist").select_option("BOLT")
    panel.get_by_role("button", name="Watch", exact=True).click()
    bolt = panel.locator('#watchlist-body tr[data-symbol="BOLT"]')
    expect(bolt.locator('[data-field="last"]')).to_have_text("21.00")
    expect(bolt.locator('[data-field="change"]')).to_have_text("+1.00 (+5.00%)")
    expect(bolt.locator('[data-field="change"]')).to_have_class(re.compile(r"\bpos\b"))
    panel.get_by_label("Add to the watchlist").select_option("ACME")
    panel.get_by_role("button", name="Watch", exact=True).click()
    acme = panel.locator('#watchlist-body tr[data-symbol="ACME"]')
    expect(acme.locator('[data-field="change"]')).to_have_text("-2.00 (-2.00%)")
    expect(acme).to_have_class(re.compile(r"\bselected\b"))  # the page's symbol
    watchlist = Watchlist.objects.get(user=trader)
    assert [item.instrument.symbol for item in watchlist.items.all()] == ["BOLT", "ACME"]
    expect(panel.get_by_label("Add to the watchlist").locator("option")).to_have_count(0)  # nothing left to add

    panel.get_by_role("button", name="Trade BOLT").click()
    expect(page.locator("#symbol")).to_have_value("BOLT")
    expect(page).to_have_url(re.compile(r"symbol=BOLT"))
    expect(page.locator("#symbol-name")).to_have_text("Bolt Industries")
    expect(bolt).to_have_class(re.compile(r"\bselected\b"))
    screenshot(page, "trade-watchlist")

    panel.get_by_role("button", name="Remove ACME from the watchlist").click()
    expect(acme).to_have_count(0)
    expect(panel.locator("#watchlist-body tr")).to_have_count(1)
    assert [item.instrument.symbol for item in watchlist.items.all()] == ["BOLT"]
    page.reload()
    expect(panel.locator('#watchlist-body tr[data-symbol="BOLT"]')).to_have_count(1)
    expect(panel.locator('#watchlist-body tr[data-symbol="ACME"]')).to_have_count(0)
    instrument_cache_invalidate("BOLT")
