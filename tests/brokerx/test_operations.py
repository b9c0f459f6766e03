"""The back office's operations page: each section's figures match the data, drift is shown, only staff get in."""
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db.models import F
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_email.models import EmailDevice

from brokerx.admin_operations import bar_chart_svg
from orders.models import Instrument, Order
from orders.services import OrderRequest, order_cancel, order_place
from outbox.models import OutboxEvent
from tests.factories import UserFactory
from tests.trading_fixtures import match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_books")]
URL = "/admin/operations/"


def verified_client(user) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = EmailDevice.objects.create(user=user, name="e-mail", confirmed=True).persistent_id
    session.save()
    return client


def place(user, side: str, qty: str, price: str) -> Order:
    order, _ = order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                           qty=Decimal(qty), limit_price=Decimal(price)))
    return order


@pytest.fixture
def staff_client(db):
    return verified_client(UserFactory(is_staff=True))


@pytest.fixture
def trading(instrument, make_trader):
    """Three orders (one filled against another, one canceled), one trade, one order still waiting for matching."""
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="10000")
    place(seller, "sell", "3", "100.00")
    match()
    place(buyer, "buy", "3", "100.00")
    match()
    canceled = place(buyer, "buy", "1", "99.00")
    order_cancel(user=buyer, order_id=canceled.pk, version=canceled.version)
    match()
    waiting = place(buyer, "buy", "2", "98.00")  # its order.created stays pending
    return waiting


def test_each_section_shows_the_figures_of_the_data(staff_client, trading):
    OutboxEvent.objects.create(topic="report.mailed", status="dead", last_error="smtp down")
    Instrument.objects.create(symbol="HALTD", name="Halted Inc", reference_price=Decimal("10"), trading_status="halted")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = broker.llen("low")
    broker.rpush("low", "operations-page-test")
    try:
        response = staff_client.get(URL)
    finally:
        broker.lrem("low", 1, "operations-page-test")
        broker.close()

    assert response.status_code == 200
    context = response.context
    activity = {a["title"]: a for a in context["activity"]}
    assert activity["Orders"]["total"] == Order.objects.count() == 4
    assert activity["Fills"]["total"] == 1
    assert activity["Rejected / canceled"]["total"] == 1
    dead = {row.topic: row.dead for row in context["backlog"]}
    assert dead["report.mailed"] == 1 and context["dead_total"] == 1
    pending = OutboxEvent.objects.filter(status="pending").count()
    assert pending >= 1 and context["pending_total"] == pending  # the waiting order's order.created at least
    assert context["queues"]["low"] == before + 1
    assert set(context["queues"]) == set(settings.CELERY_QUEUE_NAMES)
    assert [i.symbol for i in context["halted"]] == ["HALTD"]
    assert context["invariants"].ok and context["invariants"].seconds > 0
    html = response.content.decode()
    assert "HALTD" in html and "report.mailed" in html and "all hold" in html
    assert html.count('<svg class="ops-chart"') == 4  # three activity charts and the queues'


def test_a_drift_is_shown_with_its_first_details(staff_client, trading):
    Order.objects.filter(pk=trading.pk).update(leaves_qty=F("leaves_qty") + 1)

    response = staff_client.get(URL)

    checks = {c.name: c for c in response.context["invariants"].checks}
    assert not response.context["invariants"].ok
    assert not checks["order_quantities"].ok and checks["order_quantities"].violations == 1
    assert f"order {trading.pk} (new)" in checks["order_quantities"].details[0]
    assert checks["fills_complete"].ok
    html = response.content.decode()
    assert "drifted" in html and f"order {trading.pk} (new): cum_qty + leaves_qty &lt;&gt; qty" in html


def test_an_unreadable_broker_is_shown_not_raised(staff_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = staff_client.get(URL)

    assert response.status_code == 200 and response.context["queues"] is None
    assert "The broker could not be read." in response.content.decode()


def test_the_admin_index_links_to_the_page(staff_client):
    assert 'href="/admin/operations/"' in staff_client.get("/admin/").content.decode()


@pytest.mark.parametrize("who", ["client", "staff without a second factor", "anonymous"])
def test_anyone_but_verified_staff_is_refused(who):
    if who == "client":
        client = verified_client(UserFactory())
    elif who == "staff without a second factor":
        client = Client()
        client.force_login(UserFactory(is_staff=True))
    else:
        client = Client()

    response = client.get(URL)

    assert response.status_code == 302 and "/login" in response["Location"]  # sent to sign in, nothing shown


def test_bar_chart_scales_bars_to_the_largest_value():
    svg = str(bar_chart_svg([0, 2, 4], label="x"))
    assert svg.count("<rect") == 3
    assert 'height="0.0"' in svg and 'height="16.0"' in svg and 'height="32.0"' in svg
