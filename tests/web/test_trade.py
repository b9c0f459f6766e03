"""The trade page in headless Chromium: real sign-in, the order ticket, open orders, live fills, market data."""
import re
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from orders.models import Order, OrderStatus
from orders.services import order_replace
from portfolios.models import Position
from tests.trading_fixtures import assert_books_balanced
from tests.web.conftest import PASSWORD, in_worker, match, place, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill_ticket(page, *, side="buy", type="limit", qty="", limit="", stop="", tif=None):
    page.locator(f"label[for=side-{side}]").click()
    page.get_by_label("Type").select_option(type)
    if tif:
        page.get_by_label("Time in force").select_option(tif)
    page.get_by_label("Quantity").fill(qty)
    if type in ("limit", "stop_limit"):
        page.get_by_label("Limit price").fill(limit)
    if type in ("stop", "stop_limit"):
        page.get_by_label("Stop price").fill(stop)
    page.locator("#ticket-submit").click()


def test_sign_in_with_password_and_emailed_code_lands_on_the_trade_page(page, instrument, make_trader):
    trader = make_trader(cash="1000")
    page.goto("/trade/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/trade/"))

    page.get_by_label("Email").fill(trader.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/trade/"))
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Trade")).to_have_attribute(
        "aria-current", "page")
    expect(page.locator('[data-pf="cash"]')).to_have_text("$1,000.00")
    expect(page.locator("#market-conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#orders-conn")).to_have_attribute("data-state", "live")


def test_pages_need_a_second_factor(page, make_trader, live_url):
    trader = make_trader()
    from django.test import Client

    client = Client()
    client.force_login(trader)  # password only
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_url}])
    for path in ("/trade/", "/portfolio/"):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/login/"))


def test_place_a_limit_order_then_cancel_it(page, sign_in_as, instrument, make_trader, books_fresh):
    trader = sign_in_as(make_trader(cash="10000"))
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("#symbol")).to_have_value("ACME")

    fill_ticket(page, qty="10", limit="99.50", tif="gtc")
    row = page.locator("#orders-body tr", has_text="ACME")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Buy")
    expect(row).to_contain_text("99.50")
    order = Order.objects.get(user=trader)
    assert (order.qty, order.limit_price, order.time_in_force) == (Decimal("10"), Decimal("99.50"), "gtc")
    assert order.client_order_id.startswith("web-")
    expect(page.locator('[data-pf="cash_reserved"]')).not_to_have_text("$0.00")

    # The worker puts it in the book: the ladder shows it live.
    match()
    expect(page.locator("#ladder-bids tr.level").first).to_contain_text("99.50")

    row.get_by_role("button", name=f"Cancel order {order.pk}").click()
    expect(page.locator("#orders-body")).to_contain_text("No open orders.")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    expect(page.locator('[data-pf="cash_reserved"]')).to_have_text("$0.00")
    expect(page.locator("#fills")).to_contain_text("canceled")
    assert_books_balanced()


def test_a_fill_arrives_live_and_updates_the_position(page, sign_in_as, instrument, make_trader, books_fresh):
    buyer = sign_in_as(make_trader(cash="10000"))
    seller = make_trader(shares={"ACME": "50"})
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("#orders-conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#fills-empty")).to_be_visible()

    fill_ticket(page, qty="5", limit="100.00", tif="day")
    expect(page.locator("#orders-body tr", has_text="ACME")).to_have_count(1)
    match()
    place(seller, "sell", "8", "100.00")
    match()

    feed = page.locator("#fills li[data-exec-type=trade]")
    expect(feed).to_have_count(1)
    expect(feed.first).to_contain_text("Bought 5 ACME @ 100.00")
    expect(feed.first).to_contain_text("filled")
    expect(page.locator("#orders-body")).to_contain_text("No open orders.")
    position = page.locator('#positions-body tr[data-symbol="ACME"] td')
    expect(position.nth(1)).to_have_text("5")
    expect(position.nth(3)).to_have_text("500.00")  # market value at the last trade
    # Market data moved with the trade: last price, trades tape, the rest of the seller's order in the book, a candle.
    expect(page.locator('[data-l1="last"]')).to_have_text("100.00")
    expect(page.locator("#trades-body tr").first).to_contain_text("100.00")
    expect(page.locator("#ladder-asks tr.level")).to_contain_text("3")
    expect(page.locator("#chart-legend")).to_contain_text("C 100.00")
    expect(page.locator("#chart-empty")).to_be_hidden()
    screenshot(page, "trade")
    assert Position.objects.get(user=buyer, symbol="ACME").qty == Decimal("5")
    assert_books_balanced()


def test_missed_fills_are_fetched_after_a_reload(page, sign_in_as, instrument, make_trader, books_fresh):
    buyer = sign_in_as(make_trader(cash="10000"))
    seller = make_trader(shares={"ACME": "50"})
    place(buyer, "buy", "2", "101.00")
    place(seller, "sell", "2", "101.00")
    match()  # before the page is open: its history comes over REST
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("#fills li[data-exec-type=trade]")).to_contain_text("Bought 2 ACME @ 101.00")
    expect(page.locator('#positions-body tr[data-symbol="ACME"]')).to_contain_text("2")
    assert_books_balanced()


def test_validation_errors_are_shown_next_to_the_field(page, sign_in_as, instrument, make_trader):
    trader = sign_in_as(make_trader(cash="1000"))
    page.goto("/trade/?symbol=ACME")

    # Checked in the page: no price, then a price off the tick grid.
    fill_ticket(page, qty="3", limit="")
    expect(page.locator("#err-limit_price")).to_have_text("Enter a limit price.")
    expect(page.get_by_label("Limit price")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Limit price")).to_be_focused()
    fill_ticket(page, qty="3", limit="100.005")
    expect(page.locator("#err-limit_price")).to_contain_text("tick size 0.01")

    # Refused by the API: outside the price band (shown at the field), then not enough buying power (banner).
    fill_ticket(page, qty="3", limit="150.00")
    expect(page.locator("#err-limit_price")).to_contain_text("outside the band")
    fill_ticket(page, qty="30", limit="100.00")
    expect(page.locator("#ticket-error")).to_be_visible()
    expect(page.locator("#ticket-error")).not_to_be_empty()
    assert not Order.objects.filter(user=trader).exists()

    # Market orders cannot be good-till-canceled.
    fill_ticket(page, type="market", qty="1", tif="day")
    page.get_by_label("Time in force").select_option("gtc")
    page.locator("#ticket-submit").click()
    expect(page.locator("#err-time_in_force")).to_contain_text("cannot be good till canceled")
    assert_books_balanced()


def test_modify_after_the_order_changed_elsewhere_shows_it_and_retries(page, sign_in_as, instrument, make_trader,
                                                                       books_fresh):
    trader = sign_in_as(make_trader(cash="10000"))
    order = place(trader, "buy", "10", "98.00")
    # The page's private stream is lost (delivery is at most once), so it does not hear of the change below.
    page.route_web_socket(re.compile(r"/ws/orders/"), lambda ws: None)
    page.goto("/trade/?symbol=ACME")
    row = page.locator(f"#order-{order.pk}")
    expect(row).to_contain_text("98.00")

    # Another window changes the order: the page still holds version 1.
    in_worker(order_replace, user=trader, order_id=order.pk, version=order.version, qty=Decimal("8"))
    row.get_by_role("button", name=f"Modify order {order.pk}").click()
    row.get_by_label(f"Limit price for order {order.pk}").fill("97.00")
    row.get_by_role("button", name=f"Save changes to order {order.pk}").click()
    expect(page.locator("#orders-message")).to_contain_text("changed before your modification arrived")
    expect(row.get_by_label(f"New total quantity for order {order.pk}")).to_have_value("8")  # the current order
    expect(row.get_by_label(f"Limit price for order {order.pk}")).to_have_value("97.00")  # the user's edit kept

    row.get_by_role("button", name=f"Save changes to order {order.pk}").click()
    expect(row).not_to_have_class(re.compile("editing"))
    expect(row).to_contain_text("97.00")
    order.refresh_from_db()
    assert (order.qty, order.limit_price, order.version) == (Decimal("8"), Decimal("97.00"), 3)
    assert_books_balanced()


def test_a_lost_execution_report_is_recovered_from_the_gap(page, sign_in_as, instrument, make_trader, books_fresh):
    buyer = sign_in_as(make_trader(cash="10000"))
    seller = make_trader(shares={"ACME": "50"})
    dropped = []

    def drop_the_first_report(ws):
        server = ws.connect_to_server()

        def forward(message):
            if '"execution_report"' in str(message) and not dropped:
                dropped.append(message)  # the push is at most once: this one never arrives
                return
            ws.send(message)

        server.on_message(forward)

    page.route_web_socket(re.compile(r"/ws/orders/$"), drop_the_first_report)
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("#orders-conn")).to_have_attribute("data-state", "live")
    page.wait_for_function("document.querySelector('#fills').getAttribute('aria-busy') === null")

    place(buyer, "buy", "4", "100.00")  # report 1 ("new") is dropped
    place(seller, "sell", "4", "100.00")
    match()  # report 2 (the fill) arrives: the page sees the gap and fetches report 1

    expect(page.locator("#fills li")).to_have_count(2)
    expect(page.locator("#fills li").nth(0)).to_contain_text("Bought 4 ACME @ 100.00")
    expect(page.locator("#fills li").nth(1)).to_contain_text("accepted")
    assert len(dropped) == 1
    assert_books_balanced()


def test_switching_symbols_and_taking_a_price_from_the_ladder(page, sign_in_as, instrument, make_trader,
                                                              books_fresh):
    from orders.models import Instrument
    from orders.selectors import instrument_cache_invalidate

    Instrument.objects.create(symbol="BOLT", name="Bolt Industries", reference_price=Decimal("20.00"),
                              tick_size=Decimal("0.01"), lot_size=Decimal("1"), price_band_pct=Decimal("0.10"),
                              max_order_notional=Decimal("500000"))
    instrument_cache_invalidate("BOLT")
    sign_in_as(make_trader(cash="1000"))
    maker = make_trader(shares={"BOLT": "100"})
    place(maker, "sell", "7", "20.25", symbol="BOLT")
    match("BOLT")

    page.goto("/trade/")
    expect(page.locator("#symbol")).to_have_value("ACME")
    page.get_by_label("Symbol").select_option("BOLT")
    expect(page).to_have_url(re.compile(r"symbol=BOLT"))
    expect(page.locator("#symbol-name")).to_have_text("Bolt Industries")
    expect(page.locator('[data-l1="ask"]')).to_have_text("20.25")
    page.get_by_role("button", name="Use ask price 20.25").click()
    expect(page.get_by_label("Limit price")).to_have_value("20.25")
    expect(page.get_by_label("Limit price")).to_be_focused()
    page.get_by_label("Quantity").fill("2")
    expect(page.locator("#ticket-estimate")).to_have_text("Estimated value ≈ $40.50")
    instrument_cache_invalidate("BOLT")
