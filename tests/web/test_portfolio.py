"""The portfolio page in headless Chromium: balances, idempotent deposits, withdrawals, activity, notifications."""
import re
import uuid

import pytest
from playwright.sync_api import expect

from notifications.models import Notification
from notifications.services import notification_create
from portfolios.models import Deposit, Withdrawal
from tests.trading_fixtures import assert_books_balanced
from tests.web.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_deposit_whose_answer_is_lost_is_retried_under_the_same_key(page, sign_in_as, make_trader):
    trader = sign_in_as(make_trader(cash="1000"))
    keys = []

    def lose_the_first_answer(route):
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers["idempotency-key"])
        response = route.fetch()  # the server handles it...
        if len(keys) == 1:
            route.abort("connectionreset")  # ...but the answer never reaches the page
        else:
            route.fulfill(response=response)

    page.route(re.compile(r"/api/v1/deposits$"), lose_the_first_answer)
    page.goto("/portfolio/")
    expect(page.locator('[data-pf="cash"]')).to_have_text("$1,000.00")
    expect(page.locator("#activities-body")).to_contain_text("+1,000.00")

    page.get_by_label("Deposit (USD)").fill("250.00")
    page.get_by_role("button", name="Deposit", exact=True).click()
    expect(page.locator("#deposit-error")).to_contain_text("Cannot reach BrokerX")
    page.get_by_role("button", name="Deposit", exact=True).click()

    expect(page.locator("#transfers-body")).to_contain_text("$250.00")
    expect(page.locator('[data-pf="cash_pending"]')).to_have_text("$250.00")
    assert len(keys) == 2 and keys[0] == keys[1] and uuid.UUID(keys[0])
    assert Deposit.objects.filter(user=trader).count() == 1

    # A new deposit is a new key.
    page.get_by_label("Deposit (USD)").fill("10.00")
    page.get_by_role("button", name="Deposit", exact=True).click()
    expect(page.locator("#transfers-body tr")).to_have_count(2)
    assert len(set(keys)) == 2
    screenshot(page, "portfolio")
    assert_books_balanced()


def test_withdrawal_errors_are_shown_at_the_field(page, sign_in_as, make_trader):
    trader = sign_in_as(make_trader(cash="100"))
    page.goto("/portfolio/")

    page.get_by_label("Withdraw (USD)").fill("12.345")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#withdraw-error")).to_have_text("Use dollars and cents, e.g. 250.00.")
    expect(page.get_by_label("Withdraw (USD)")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Withdraw (USD)").fill("500.00")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#withdraw-error")).not_to_be_empty()
    assert not Withdrawal.objects.filter(user=trader).exists()

    page.get_by_label("Withdraw (USD)").fill("40.00")
    page.get_by_role("button", name="Withdraw").click()
    expect(page.locator('[data-pf="cash"]')).to_have_text("$60.00")
    assert Withdrawal.objects.filter(user=trader).count() == 1
    assert_books_balanced()


def test_notifications_show_the_unread_count_and_can_be_marked_read(page, sign_in_as, make_trader):
    trader = sign_in_as(make_trader())
    for title in ("Order filled", "Deposit settled"):
        notification_create(user_id=trader.pk, kind="fill", title=title)
    page.goto("/portfolio/")
    expect(page.locator("#unread")).to_have_text("2")
    expect(page.locator("#notes li.unread")).to_have_count(2)

    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#unread")).to_have_text("0")
    expect(page.locator("#notes li.unread")).to_have_count(0)
    assert not Notification.objects.filter(user=trader, read_at__isnull=True).exists()
