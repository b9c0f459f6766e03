"""Back office for money: a client's ledger, an audited manual adjustment with a reason, the reconciliation view."""
from decimal import Decimal

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_email.models import EmailDevice

from accounts.models import StaffAuditLog
from portfolios import selectors
from portfolios.models import JournalEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.usefixtures("books")


@pytest.fixture
def desk(client, db):
    """A Django test client signed in as a superuser whose session passed a second factor."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    device = EmailDevice.objects.create(user=staff, name="e-mail", confirmed=True)
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    client.staff = staff
    return client


def test_adjustment_is_posted_balanced_with_reason_and_audited(desk, trader):
    response = desk.post("/admin/portfolios/ledgeraccount/adjust/", {
        "client_email": trader.email, "account": "cash_available", "asset": "usd", "amount": "125.50",
        "reason": "Refund of a wire fee, ticket 881"})
    assert response.status_code == 302, response.content
    entry = JournalEntry.objects.get(kind="adjustment")
    assert (entry.created_by, entry.memo) == (desk.staff, "Refund of a wire fee, ticket 881")
    assert selectors.balances_for_user(trader)["cash_available"] == Decimal("125.50")
    audit = StaffAuditLog.objects.get(action="ledger_adjustment")
    assert (audit.actor, audit.object_id, audit.reason) == (desk.staff, str(entry.pk), entry.memo)


def test_adjustment_without_a_reason_or_beyond_the_balance_is_refused(desk, trader):
    url = "/admin/portfolios/ledgeraccount/adjust/"
    body = {"client_email": trader.email, "account": "cash_available", "asset": "USD", "amount": "-5"}
    assert b"A reason is required" in desk.post(url, {**body, "reason": " "}).content
    assert b"Not enough USD" in desk.post(url, {**body, "reason": "chargeback"}).content
    assert not JournalEntry.objects.exists()


def test_client_ledger_and_reconciliation_pages(desk, trader, fund):
    fund(trader, cash="10", shares={"ACME": "3"})
    page = desk.get(f"/admin/portfolios/ledgeraccount/client/{trader.pk}/")
    assert page.status_code == 200 and b"ACME" in page.content and b"test funding" in page.content
    reconcile = desk.get("/admin/portfolios/ledgeraccount/reconcile/")
    assert reconcile.status_code == 200 and b"No drift" in reconcile.content
    for url in ("/admin/portfolios/ledgeraccount/", "/admin/portfolios/journalentry/", "/admin/portfolios/deposit/",
                f"/admin/portfolios/journalentry/{JournalEntry.objects.first().pk}/change/"):
        assert desk.get(url).status_code == 200, url


def test_back_office_pages_need_a_staff_session(client, trader):
    client.force_login(trader)
    assert client.get("/admin/portfolios/ledgeraccount/reconcile/").status_code == 302
