"""Browser fixtures: the app served live on the test database, headless Debian Chromium driven by Playwright."""
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client

from matching.services import book_forget
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain
from tests.live_server import live_server

PORTS = range(18300, 18400)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "x-Trader-pass-1"  # tests/trading_fixtures.make_trader's


@pytest.fixture(scope="session")
def live_url(django_db_setup):
    with live_server(PORTS) as url:
        yield url


@pytest.fixture(scope="module")
def chromium(django_db_setup):
    """One browser per test module. Playwright's sync API keeps an event loop marked running in this thread, which
    Django takes for async code and refuses the ORM; the test code is synchronous, so that check is lifted, for
    the module only."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page(chromium, live_url, transactional_db):
    """A fresh browser context (no cookies) per test; console errors of the page fail the test."""
    context = chromium.new_context(base_url=live_url, viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(8000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # HTTP refusals the page handles (409, 422) are logged by Chromium as "Failed to load resource": not errors here.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def sign_in_as(page, live_url):
    """sign_in_as(user): give the browser an MFA-verified session (the real sign-in has its own test)."""
    from django_otp.plugins.otp_email.models import EmailDevice

    def sign_in(user):
        device, _ = EmailDevice.objects.get_or_create(user=user, name="email", defaults={"confirmed": True})
        client = Client()
        client.force_login(user)
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
        page.context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_url}])
        return user

    return sign_in


@pytest.fixture
def books_fresh():
    """The matching worker's in-process book cache starts and ends empty (the database is flushed between tests)."""
    book_forget()
    yield
    book_forget()


def in_worker(func, *args, **kwargs):
    """Run func in a thread of its own, as a worker would: its pushes after commit go through async_to_sync, which
    refuses the test thread (Playwright's loop)."""
    def run():
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def match(symbol: str = "ACME") -> None:
    """Run the symbol's matching worker until its queue is empty: commits, then pushes to the browser."""
    def drain():
        while outbox_drain(queue="critical", partition_key=symbol):
            pass

    in_worker(drain)


def place(user, side: str, qty: str, price: str, *, symbol: str = "ACME"):
    order, _ = in_worker(order_place, user=user, request=OrderRequest(
        symbol=symbol, side=side, type="limit", time_in_force="gtc", qty=Decimal(qty), limit_price=Decimal(price)))
    return order


def screenshot(page, name: str) -> None:
    """Kept only when BROKERX_SCREENSHOTS names a folder (to look at the pages; never committed)."""
    target = os.environ.get("BROKERX_SCREENSHOTS")
    if target:
        os.makedirs(target, exist_ok=True)
        page.screenshot(path=os.path.join(target, f"{name}.png"), full_page=True)
