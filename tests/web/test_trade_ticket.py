"""The order ticket's classes (bracket, OCO, OTO), trailing stops and orders by amount in headless Chromium, and
the open orders list following a class live: held legs, legs growing with the entry's fills, the OCO cancel."""
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from orders.models import Instrument, Order, OrderStatus
from orders.selectors import instrument_cache_invalidate
from tests.trading_fixtures import assert_books_balanced
from tests.web.conftest import match, place, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
D = Decimal


def ticket(page):
    return page.locator("#ticket")


def leg_rows(page, parent: Order):
    return page.locator(f'#orders-body tr.leg[data-parent-id="{parent.pk}"]')


def trade_at(make_trader, price: str, qty: str = "1", symbol: str = "ACME") -> None:
    """Two outsiders trade at `price`: the last price moves there."""
    seller, buyer = make_trader(shares={symbol: qty}), make_trader(cash="100000")
    place(seller, "sell", qty, price, symbol=symbol)
    place(buyer, "buy", qty, price, symbol=symbol)
    match(symbol)


def test_a_bracket_from_the_ticket_shows_its_legs_held_then_live_then_the_oco_cancel(page, sign_in_as, instrument,
                                                                                    make_trader, books_fresh):
    trader = sign_in_as(make_trader(cash="10000"))
    seller = make_trader(shares={"ACME": "20"})
    page.goto("/trade/?symbol=ACME")
    expect(page.locator("#orders-conn")).to_have_attribute("data-state", "live")
    page.evaluate("window.notReloaded = true")
    form = ticket(page)

    # The exits appear with the class; an entry is a buy (selected with the class).
    expect(form.get_by_label("Take-profit price")).to_be_hidden()
    form.get_by_label("Order class").select_option("bracket")
    expect(page.locator("#side-buy")).to_be_checked()
    expect(form.get_by_label("Take-profit price")).to_be_visible()
    expect(form.get_by_label("Stop-loss trigger")).to_be_visible()
    expect(form.get_by_label("Type").locator('option[value="stop"]')).to_be_disabled()
    expect(form.get_by_label("Time in force").locator('option[value="ioc"]')).to_be_disabled()
    form.get_by_label("Type").select_option("limit")
    form.get_by_label("Time in force").select_option("gtc")
    form.get_by_label("Quantity").fill("10")
    form.get_by_label("Limit price").fill("100.00")
    form.get_by_label("Take-profit price").fill("105.00")
    form.get_by_label("Stop-loss trigger").fill("95.00")
    expect(page.locator("#ticket-estimate")).to_contain_text("gain at take-profit $50.00, loss at stop-loss $50.00")
    expect(page.locator("#ticket-submit")).to_have_text("Place bracket buy order")
    page.locator("#ticket-submit").click()

    entry = None
    for _ in range(50):
        entry = Order.objects.filter(user=trader, parent__isnull=True).first()
        if entry:
            break
        page.wait_for_timeout(100)
    assert entry is not None and entry.order_class == "bracket"
    take_profit, stop_loss = Order.objects.filter(parent=entry).order_by("id")
    assert (take_profit.type, take_profit.limit_price, stop_loss.type, stop_loss.stop_price) == (
        "limit", D("105.00"), "stop", D("95.00"))

    # The legs are listed under the entry, held until it fills.
    entry_row = page.locator(f"#order-{entry.pk}")
    expect(entry_row).to_contain_text("bracket entry")
    legs = leg_rows(page, entry)
    expect(legs).to_have_count(2)
    tp_row, sl_row = page.locator(f"#order-{take_profit.pk}"), page.locator(f"#order-{stop_loss.pk}")
    expect(tp_row).to_contain_text("take-profit")
    expect(sl_row).to_contain_text("stop-loss")
    for row in (tp_row, sl_row):
        expect(row.locator(".status-cell")).to_have_text("held — sized by the entry's fills")
        expect(row.get_by_role("button", name=re.compile("^Modify"))).to_have_count(0)  # a held leg waits
    # The legs follow their entry in the table, in the order they were placed.
    ids = page.locator("#orders-body tr").evaluate_all("rows => rows.map(r => Number(r.dataset.id))")
    assert ids == [entry.pk, take_profit.pk, stop_loss.pk]
    expect(page.locator("#orders-count")).to_have_text("(3)")
    screenshot(page, "ticket-bracket-held")

    # Another trader sells 4 into the entry: the legs become live for 4, without a reload.
    match()
    place(seller, "sell", "4", "100.00")
    match()
    expect(entry_row.locator(".status")).to_have_text("partially filled")
    for row in (tp_row, sl_row):
        expect(row.locator(".status")).to_have_text("new")
        expect(row.locator("td").nth(3)).to_have_text("4")
    expect(page.locator("#fills")).to_contain_text(f"#{take_profit.pk} exit sized to 4 by the entry's fill")

    # The rest fills: the legs grow to 10; the filled entry stays above them, faded.
    place(seller, "sell", "6", "100.00")
    match()
    expect(tp_row.locator("td").nth(3)).to_have_text("10")
    expect(sl_row.locator("td").nth(3)).to_have_text("10")
    expect(entry_row).to_have_class(re.compile(r"\bclosed\b"))
    expect(entry_row.locator(".status")).to_have_text("filled")
    expect(entry_row.get_by_role("button")).to_have_count(0)
    expect(page.locator("#orders-count")).to_have_text("(2)")
    screenshot(page, "ticket-bracket-live")

    # Someone buys at the take-profit: it fills and the stop-loss is canceled by the class, shown live.
    buyer = make_trader(cash="5000")
    place(buyer, "buy", "10", "105.00")
    match()
    expect(sl_row.locator(".status")).to_have_text("canceled (OCO)")
    expect(tp_row.locator(".status")).to_have_text("filled")
    expect(page.locator("#fills")).to_contain_text(f"Sell ACME #{stop_loss.pk} canceled (OCO)")
    expect(page.locator("#fills li[data-exec-type=trade]").first).to_contain_text("Sold 10 ACME @ 105.00")
    screenshot(page, "ticket-bracket-oco-canceled")
    stop_loss.refresh_from_db()
    assert (stop_loss.status, stop_loss.reason) == (OrderStatus.CANCELED, "oco")
    assert page.evaluate("window.notReloaded") is True
    # The closed class leaves the list after a moment.
    expect(page.locator("#orders-body")).to_contain_text("No open orders.", timeout=20000)
    assert_books_balanced()


def test_an_oco_pair_and_a_held_class_cancel_from_the_list(page, sign_in_as, instrument, make_trader, books_fresh):
    trader = sign_in_as(make_trader(cash="10000", shares={"ACME": "10"}))
    page.goto("/trade/?symbol=ACME")
    form = ticket(page)
    form.get_by_label("Order class").select_option("oco")
    expect(page.locator("#side-sell")).to_be_checked()
    expect(form.get_by_label("Limit price")).to_be_hidden()  # the take-profit is the limit
    form.get_by_label("Quantity").fill("10")
    form.get_by_label("Take-profit price").fill("108.00")
    form.get_by_label("Stop-loss trigger").fill("94.00")
    form.get_by_label("Stop-loss limit").fill("93.50")
    page.locator("#ticket-submit").click()
    first = page.locator("#orders-body tr:not(.leg)")
    expect(first).to_contain_text("OCO take-profit")
    leg = page.locator("#orders-body tr.leg")
    expect(leg).to_contain_text("stop-loss")
    expect(leg).to_contain_text("stop limit")
    expect(leg.locator("td").nth(3)).to_have_text("10")
    oco = Order.objects.get(user=trader, parent__isnull=True)
    (stop_loss,) = Order.objects.filter(parent=oco)
    assert (oco.side, oco.limit_price, stop_loss.stop_price, stop_loss.limit_price) == (
        "sell", D("108.00"), D("94.00"), D("93.50"))

    # Canceling one order cancels its class.
    first.get_by_role("button", name=f"Cancel order {oco.pk} (cancels its OCO class)").click()
    expect(page.locator(f"#order-{stop_loss.pk} .status")).to_have_text("canceled")
    stop_loss.refresh_from_db()
    assert stop_loss.status == OrderStatus.CANCELED
    assert_books_balanced()


def test_a_trailing_stop_from_the_ticket_follows_the_high_live(page, sign_in_as, instrument, make_trader,
                                                               books_fresh):
    trader = sign_in_as(make_trader(shares={"ACME": "10"}))
    trade_at(make_trader, "100.00")
    page.goto("/trade/?symbol=ACME")
    expect(page.locator('[data-l1="last"]')).to_have_text("100.00")
    form = ticket(page)
    page.locator("label[for=side-sell]").click()
    form.get_by_label("Type").select_option("trailing_stop")
    expect(form.get_by_label("Limit price")).to_be_hidden()
    expect(page.locator("#hint-trail")).to_contain_text("Last trade 100.00")
    form.get_by_label("Quantity").fill("5")
    form.get_by_label("Trail amount ($)").fill("2.00")
    expect(page.locator("#ticket-submit")).to_have_text("Place sell trailing stop order")
    page.locator("#ticket-submit").click()
    row = page.locator("#orders-body tr", has_text="trailing stop")
    expect(row).to_have_count(1)
    order = Order.objects.get(user=trader)
    assert (order.type, order.trail_price, order.trail_percent) == ("trailing_stop", D("2.00"), None)

    match()  # it enters the book: its mark starts at the last trade
    expect(row.locator('[data-field="trail"]')).to_have_text("trail 2.00 · high 100.00")
    expect(row.locator('[data-field="stop"]')).to_have_text("98.00")
    trade_at(make_trader, "103.00")  # the stop follows the high, seen live
    expect(row.locator('[data-field="trail"]')).to_have_text("trail 2.00 · high 103.00")
    expect(row.locator('[data-field="stop"]')).to_have_text("101.00")
    screenshot(page, "ticket-trailing-stop")

    # By percent: the other field, the same order type.
    page.locator("label[for=trail-by-percent]").click()
    expect(form.get_by_label("Trail amount ($)")).to_be_hidden()
    form.get_by_label("Quantity").fill("3")
    form.get_by_label("Trail percent (%)").fill("1.5")
    page.locator("#ticket-submit").click()
    expect(page.locator("#orders-body tr", has_text="trail 1.5%")).to_have_count(1)
    assert Order.objects.get(user=trader, trail_percent__isnull=False).trail_percent == D("1.5")
    assert_books_balanced()


def test_an_order_by_amount_on_a_fractionable_instrument(page, sign_in_as, instrument, make_trader, books_fresh):
    Instrument.objects.create(symbol="FRAC", name="Fraction Co", reference_price=D("20.00"), tick_size=D("0.01"),
                              lot_size=D("0.001"), price_band_pct=D("0.10"), max_order_notional=D("500000"))
    instrument_cache_invalidate("FRAC")
    trader = sign_in_as(make_trader(cash="1000"))
    maker = make_trader(shares={"FRAC": "100"})
    place(maker, "sell", "50", "20.00", symbol="FRAC")
    match("FRAC")
    page.goto("/trade/?symbol=ACME")
    form = ticket(page)
    form.get_by_label("Type").select_option("market")
    expect(page.locator("[data-for=sizing]")).to_be_hidden()  # ACME trades in whole shares

    page.get_by_label("Symbol").select_option("FRAC")
    expect(page.locator("[data-for=sizing]")).to_be_visible()
    page.locator("label[for=sizing-notional]").click()
    expect(form.get_by_label("Quantity")).to_be_hidden()
    expect(form.get_by_label("Time in force").locator('option[value="ioc"]')).to_be_disabled()
    form.get_by_label("Dollar amount").fill("250")
    # Sized at the band's top (22.00) as the server does: 250 / 22 = 11.363 shares.
    expect(page.locator("#ticket-estimate")).to_contain_text("About 11.363 shares")
    screenshot(page, "ticket-notional")
    page.locator("#ticket-submit").click()
    expect(page.locator("#toasts")).to_contain_text("$250.00 (11.363) FRAC accepted")
    order = Order.objects.get(user=trader)
    assert (order.notional, order.qty, order.type, order.time_in_force) == (D("250.00"), D("11.363"), "market", "day")

    match("FRAC")
    expect(page.locator("#fills li[data-exec-type=trade]").first).to_contain_text("Bought 11.363 FRAC @ 20.00")
    instrument_cache_invalidate("FRAC")
    assert_books_balanced()


def test_the_ticket_checks_a_class_before_sending_and_shows_the_servers_refusal(page, sign_in_as, instrument,
                                                                                 make_trader):
    trader = sign_in_as(make_trader(cash="10000"))
    page.goto("/trade/?symbol=ACME")
    form = ticket(page)
    form.get_by_label("Order class").select_option("bracket")
    form.get_by_label("Quantity").fill("5")
    form.get_by_label("Limit price").fill("100.00")
    form.get_by_label("Take-profit price").fill("94.00")
    form.get_by_label("Stop-loss trigger").fill("96.00")
    page.locator("#ticket-submit").click()
    take_profit = form.get_by_label("Take-profit price")
    expect(page.locator("#err-take_profit")).to_have_text(
        "The take-profit must be above the stop-loss trigger (96.00).")
    expect(take_profit).to_have_attribute("aria-invalid", "true")
    expect(take_profit).to_be_focused()
    screenshot(page, "ticket-validation")

    # Typing in the field clears its message; an exit on the wrong side of the entry is refused too.
    take_profit.fill("104.00")
    expect(page.locator("#err-take_profit")).to_be_hidden()
    form.get_by_label("Stop-loss trigger").fill("101.00")
    page.locator("#ticket-submit").click()
    expect(page.locator("#err-stop_loss")).to_have_text(
        "The stop-loss trigger must be below the entry's limit price (100.00).")

    # A sell entry: the class says why not.
    form.get_by_label("Stop-loss trigger").fill("96.00")
    page.locator("label[for=side-sell]").click()
    page.locator("#ticket-submit").click()
    expect(page.locator("#err-order_class")).to_contain_text("entry is a buy")
    expect(form.get_by_label("Order class")).to_be_focused()

    # The server's refusal lands at the price it names: a take-profit outside the price band (90.00-110.00).
    page.locator("label[for=side-buy]").click()
    take_profit.fill("111.00")
    page.locator("#ticket-submit").click()
    expect(page.locator("#err-take_profit")).to_contain_text("outside the band")
    expect(page.locator("#ticket-error")).to_be_hidden()

    # OTO: one exit, chosen; the other's field is not shown.
    form.get_by_label("Order class").select_option("oto")
    page.locator("label[for=oto-leg-sl]").click()
    expect(take_profit).to_be_hidden()
    form.get_by_label("Stop-loss trigger").fill("")
    page.locator("#ticket-submit").click()
    expect(page.locator("#err-stop_loss")).to_have_text("Enter a stop-loss trigger.")
    assert not Order.objects.filter(user=trader).exists()

    form.get_by_label("Stop-loss trigger").fill("97.00")
    page.locator("#ticket-submit").click()
    expect(page.locator("#orders-body tr.leg")).to_contain_text("stop-loss")
    oto = Order.objects.get(user=trader, parent__isnull=True)
    assert oto.order_class == "oto" and [leg.type for leg in Order.objects.filter(parent=oto)] == ["stop"]
    assert_books_balanced()
