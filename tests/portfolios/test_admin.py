"""Back office for money: a client's ledger, a manual adjustment requested by one member of staff and posted when
another approves it (four eyes), the withdrawal review queue, the reconciliation view."""
from decimal import Decimal

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_email.models import EmailDevice

from accounts.models import StaffAuditLog
from portfolios import selectors, services
from portfolios.models import AdjustmentRequest, JournalEntry, Withdrawal
from tests.factories import UserFactory

pytestmark = pytest.mark.usefixtures("books")
QUEUE = "/admin/portfolios/adjustmentrequest/"
REVIEWS = "/admin/portfolios/withdrawalunderreview/"


def otp_client(staff) -> Client:
    """A Django test client signed in as `staff`, its session marked as having passed a second factor."""
    client = Client()
    device = EmailDevice.objects.create(user=staff, name="e-mail", confirmed=True)
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    client.staff = staff
    return client


@pytest.fixture
def desk(db):
    """A superuser whose session passed a second factor."""
    return otp_client(UserFactory(is_staff=True, is_superuser=True))


@pytest.fixture
def checker(db):
    """A second superuser, to approve what `desk` asked for."""
    return otp_client(UserFactory(is_staff=True, is_superuser=True))


def decide(client, changelist: str, action: str, ids, reason: str = ""):
    """An approve/reject action: the first POST asks for the reason, the second confirms."""
    body = {"action": action, "_selected_action": [str(pk) for pk in ids]}
    ask = client.post(changelist, body)
    assert ask.status_code == 200 and b"name=\"reason\"" in ask.content, ask.content[:500]
    return client.post(changelist, {**body, "confirm": "yes", "reason": reason})


def test_adjustment_is_requested_then_posted_by_another_member_of_staff_and_audited(desk, checker, trader):
    response = desk.post("/admin/portfolios/ledgeraccount/adjust/", {
        "client_email": trader.email, "account": "cash_available", "asset": "usd", "amount": "125.50",
        "reason": "Refund of a wire fee, ticket 881"})
    assert response.status_code == 302 and response["Location"] == QUEUE, response.content
    request = AdjustmentRequest.objects.get()
    assert (request.status, request.requested_by, request.amount) == ("pending", desk.staff, Decimal("125.50"))
    assert not JournalEntry.objects.exists()  # nothing posted before approval
    assert str(request.pk).encode() in checker.get(QUEUE).content

    response = decide(checker, QUEUE, "approve_requests", [request.pk], reason="checked the ticket")
    assert response.status_code == 302
    request.refresh_from_db()
    entry = JournalEntry.objects.get(kind="adjustment")
    assert (request.status, request.decided_by, request.entry) == ("approved", checker.staff, entry)
    assert (entry.created_by, entry.memo, entry.reference) == (checker.staff, "Refund of a wire fee, ticket 881",
                                                              f"adjustment_request:{request.pk}")
    assert selectors.balances_for_user(trader)["cash_available"] == Decimal("125.50")
    steps = list(StaffAuditLog.objects.order_by("id").values_list("action", "actor"))
    assert steps == [("adjustment_requested", desk.staff.pk), ("ledger_adjustment", checker.staff.pk),
                     ("adjustment_approved", checker.staff.pk)]
    assert StaffAuditLog.objects.get(action="adjustment_approved").reason == "checked the ticket"


def test_the_requester_cannot_approve_their_own_adjustment_in_the_admin(desk, trader):
    request = services.adjustment_request_create(staff_user=desk.staff, user=trader, kind="cash_available",
                                                 asset="USD", amount=Decimal("10"), reason="goodwill")
    response = decide(desk, QUEUE, "approve_requests", [request.pk])
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("another person" in m for m in messages), messages
    request.refresh_from_db()
    assert request.status == "pending" and not JournalEntry.objects.exists()


def test_a_rejection_needs_a_reason_and_posts_nothing(desk, checker, trader):
    request = services.adjustment_request_create(staff_user=desk.staff, user=trader, kind="cash_available",
                                                 asset="USD", amount=Decimal("10"), reason="goodwill")
    blank = decide(checker, QUEUE, "reject_requests", [request.pk], reason=" ")
    assert blank.status_code == 200 and b"A reason is required to reject" in blank.content
    decide(checker, QUEUE, "reject_requests", [request.pk], reason="no ticket")
    request.refresh_from_db()
    assert (request.status, request.decision_reason, request.entry) == ("rejected", "no ticket", None)
    assert not JournalEntry.objects.exists()
    assert StaffAuditLog.objects.filter(action="adjustment_rejected", actor=checker.staff).count() == 1


def test_the_queues_open_on_what_waits_for_a_decision(desk, checker, trader):
    pending = services.adjustment_request_create(staff_user=desk.staff, user=trader, kind="cash_available",
                                                 asset="USD", amount=Decimal("7"), reason="pending one")
    decided = services.adjustment_request_create(staff_user=desk.staff, user=trader, kind="cash_available",
                                                 asset="USD", amount=Decimal("8"), reason="decided one")
    services.adjustment_request_reject(request_id=decided.pk, staff_user=checker.staff, reason="no")
    listed = checker.get(QUEUE).context["cl"].result_list
    assert [r.pk for r in listed] == [pending.pk]
    assert {r.pk for r in checker.get(QUEUE + "?status=all").context["cl"].result_list} == {pending.pk, decided.pk}
    assert checker.get(f"{QUEUE}{pending.pk}/change/").status_code == 200


def test_withdrawal_review_queue_approves_and_rejects(desk, checker, trader, fund, settings):
    settings.WITHDRAWAL_APPROVAL_THRESHOLD = Decimal("100")
    fund(trader, cash="1000")
    small = services.withdrawal_create(user=trader, amount=Decimal("50"))  # paid at once: not in the queue
    paid = services.withdrawal_create(user=trader, amount=Decimal("300"))
    refused = services.withdrawal_create(user=trader, amount=Decimal("200"))
    assert {w.pk for w in checker.get(REVIEWS).context["cl"].result_list} == {paid.pk, refused.pk}

    decide(checker, REVIEWS, "approve_withdrawals", [paid.pk])
    decide(desk, REVIEWS, "reject_withdrawals", [refused.pk], reason="name on the bank account differs")

    statuses = dict(Withdrawal.objects.values_list("pk", "status"))
    assert statuses == {small.pk: "completed", paid.pk: "completed", refused.pk: "rejected"}
    balances = selectors.balances_for_user(trader)
    assert (balances["cash_available"], balances["cash_held"]) == (Decimal("650"), Decimal("0"))
    assert checker.get(REVIEWS).context["cl"].result_list.count() == 0
    assert {w.pk for w in checker.get(REVIEWS + "?status=all").context["cl"].result_list} == {paid.pk, refused.pk}


def test_adjustment_without_a_reason_or_beyond_the_balance_is_refused(desk, trader):
    url = "/admin/portfolios/ledgeraccount/adjust/"
    body = {"client_email": trader.email, "account": "cash_available", "asset": "USD", "amount": "-5"}
    assert b"A reason is required" in desk.post(url, {**body, "reason": " "}).content
    assert b"Not enough USD" in desk.post(url, {**body, "reason": "chargeback"}).content
    assert not JournalEntry.objects.exists() and not AdjustmentRequest.objects.exists()


def test_client_ledger_and_reconciliation_pages(desk, trader, fund):
    fund(trader, cash="10", shares={"ACME": "3"})
    page = desk.get(f"/admin/portfolios/ledgeraccount/client/{trader.pk}/")
    assert page.status_code == 200 and b"ACME" in page.content and b"test funding" in page.content
    reconcile = desk.get("/admin/portfolios/ledgeraccount/reconcile/")
    assert reconcile.status_code == 200 and b"No drift" in reconcile.content
    for url in ("/admin/portfolios/ledgeraccount/", "/admin/portfolios/journalentry/", "/admin/portfolios/deposit/",
                "/admin/portfolios/withdrawal/", QUEUE, REVIEWS, "/admin/portfolios/ledgeraccount/adjust/",
                f"/admin/portfolios/journalentry/{JournalEntry.objects.first().pk}/change/"):
        assert desk.get(url).status_code == 200, url


def test_back_office_pages_need_a_staff_session(client, trader):
    client.force_login(trader)
    assert client.get("/admin/portfolios/ledgeraccount/reconcile/").status_code == 302
