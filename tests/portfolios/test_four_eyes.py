"""Four eyes on money: adjustment requests and withdrawals above the approval threshold wait for another person;
nothing is paid before approval, a hold keeps the cash from being spent twice, a rejection releases it exactly;
every step is in the staff audit log; a double approval posts once, with real threads."""
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import StaffAuditLog
from brokerx.invariants import invariants_check
from portfolios import selectors, services
from portfolios.errors import FourEyesRefused, InsufficientFunds, InvalidState, LimitExceeded
from portfolios.models import AdjustmentRequest, JournalEntry, Withdrawal
from tests.factories import UserFactory

from .test_concurrency import run_together

D = Decimal


@pytest.fixture
def threshold(settings):
    settings.WITHDRAWAL_APPROVAL_THRESHOLD = D("1000")
    return settings.WITHDRAWAL_APPROVAL_THRESHOLD


@pytest.fixture
def checker(db):
    return UserFactory(is_staff=True)


def cash(user) -> tuple[Decimal, Decimal]:
    balances = selectors.balances_for_user(user)
    return balances["cash_available"], balances["cash_held"]


def audit(obj) -> list[tuple[str, int]]:
    return list(StaffAuditLog.objects.filter(object_type=obj._meta.label, object_id=str(obj.pk))
                .order_by("id").values_list("action", "actor"))


# --- withdrawals ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("books")
def test_a_withdrawal_above_the_threshold_holds_its_cash_and_pays_nothing(trader, fund, threshold):
    fund(trader, cash="5000")
    withdrawal = services.withdrawal_create(user=trader, amount=D("1000.01"))

    assert (withdrawal.status, withdrawal.provider_ref) == ("pending_review", "")
    assert cash(trader) == (D("3999.99"), D("1000.01"))
    assert not JournalEntry.objects.filter(kind="withdrawal").exists()  # not paid out
    assert JournalEntry.objects.get(kind="withdrawal_hold").reference == withdrawal.reference
    assert audit(withdrawal) == [("withdrawal_review_requested", trader.pk)]
    portfolio = selectors.portfolio_for_user(trader)
    assert (portfolio["buying_power"], portfolio["cash_held"], portfolio["equity"]) == (
        D("3999.99"), D("1000.01"), D("5000"))
    # The held cash cannot be spent again: not withdrawn, not reserved for an order.
    with pytest.raises(InsufficientFunds):
        services.withdrawal_create(user=trader, amount=D("4000"))
    with pytest.raises(InsufficientFunds):
        services.cash_reserve(user=trader, amount=D("4000"), reference="order:1")
    # At the threshold exactly, it is paid at once.
    assert services.withdrawal_create(user=trader, amount=D("1000")).status == "completed"


@pytest.mark.usefixtures("books")
def test_an_approved_withdrawal_is_paid_from_its_hold_once(trader, fund, threshold, checker):
    fund(trader, cash="5000")
    withdrawal = services.withdrawal_create(user=trader, amount=D("3000"))

    services.withdrawal_approve(withdrawal_id=withdrawal.pk, staff_user=checker, reason="called the client")

    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.reviewed_by, withdrawal.review_reason) == (
        "completed", checker, "called the client")
    assert withdrawal.provider_ref.startswith("sim-payout-")
    assert cash(trader) == (D("2000"), D("0"))
    assert JournalEntry.objects.filter(kind="withdrawal", reference=withdrawal.reference).count() == 1
    assert audit(withdrawal) == [("withdrawal_review_requested", trader.pk), ("withdrawal_approved", checker.pk)]
    with pytest.raises(InvalidState):
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, staff_user=checker)
    with pytest.raises(InvalidState):
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, staff_user=checker, reason="too late")


@pytest.mark.usefixtures("books")
def test_a_rejected_withdrawal_releases_its_hold_exactly(trader, fund, threshold, checker):
    fund(trader, cash="5000")
    services.cash_reserve(user=trader, amount=D("500.25"), reference="order:7")  # an open order's cash stays put
    withdrawal = services.withdrawal_create(user=trader, amount=D("2500.50"))
    assert cash(trader) == (D("1999.25"), D("2500.50"))

    with pytest.raises(InvalidState, match="reason"):
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, staff_user=checker, reason=" ")
    services.withdrawal_reject(withdrawal_id=withdrawal.pk, staff_user=checker, reason="beneficiary mismatch")

    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.reviewed_by, withdrawal.provider_ref) == ("rejected", checker, "")
    assert cash(trader) == (D("4499.75"), D("0"))
    assert selectors.balances_for_user(trader)["cash_reserved"] == D("500.25")
    release = JournalEntry.objects.get(kind="withdrawal_release", reference=withdrawal.reference)
    assert sorted(p.amount for p in release.postings.all()) == [D("-2500.50"), D("2500.50")]
    assert not JournalEntry.objects.filter(kind="withdrawal").exists()
    assert audit(withdrawal)[-1] == ("withdrawal_rejected", checker.pk)
    assert StaffAuditLog.objects.get(action="withdrawal_rejected").reason == "beneficiary mismatch"
    # A rejected withdrawal does not count towards the daily limit.
    assert services.withdrawal_create(user=trader, amount=D("4499.75")).status == "pending_review"


@pytest.mark.usefixtures("books")
def test_nobody_reviews_their_own_withdrawal(fund, threshold):
    staff_trader = UserFactory(is_staff=True)
    fund(staff_trader, cash="5000")
    withdrawal = services.withdrawal_create(user=staff_trader, amount=D("2000"))
    with pytest.raises(FourEyesRefused):
        services.withdrawal_approve(withdrawal_id=withdrawal.pk, staff_user=staff_trader)
    with pytest.raises(FourEyesRefused):
        services.withdrawal_reject(withdrawal_id=withdrawal.pk, staff_user=staff_trader, reason="mine")
    withdrawal.refresh_from_db()
    assert withdrawal.status == "pending_review" and cash(staff_trader) == (D("3000"), D("2000"))


@pytest.mark.usefixtures("books")
def test_withdrawals_under_review_count_towards_the_daily_limit(trader, fund, threshold, settings):
    settings.WITHDRAWAL_DAILY_LIMIT = D("3000")
    fund(trader, cash="10000")
    services.withdrawal_create(user=trader, amount=D("2500"))
    with pytest.raises(LimitExceeded):
        services.withdrawal_create(user=trader, amount=D("600"))


@pytest.mark.usefixtures("books")
def test_api_answers_202_pending_review_above_the_threshold(trader, fund, threshold):
    fund(trader, cash="5000")
    client = APIClient()
    client.force_authenticate(trader)

    small = client.post("/api/v1/withdrawals", {"amount": "1000.00"}, format="json", HTTP_IDEMPOTENCY_KEY="w1")
    large = client.post("/api/v1/withdrawals", {"amount": "1500.00"}, format="json", HTTP_IDEMPOTENCY_KEY="w2")
    replay = client.post("/api/v1/withdrawals", {"amount": "1500.00"}, format="json", HTTP_IDEMPOTENCY_KEY="w2")

    assert (small.status_code, small.json()["status"]) == (201, "completed")
    assert (large.status_code, large.json()["status"], large.json()["reviewed_at"]) == (202, "pending_review", None)
    assert (replay.status_code, replay.json()["id"]) == (202, large.json()["id"])
    assert Withdrawal.objects.filter(status="pending_review").count() == 1
    portfolio = client.get("/api/v1/portfolio").json()
    assert (portfolio["cash"], portfolio["cash_held"]) == ("2500.0000", "1500.0000")


def test_the_invariant_checker_names_a_hold_that_does_not_match_the_withdrawals_under_review(
        trader, fund, threshold):
    fund(trader, cash="5000")
    withdrawal = services.withdrawal_create(user=trader, amount=D("2000"))
    assert invariants_check(only=["withdrawal_holds"]) == []
    with connection.cursor() as cursor:  # marked paid without its payout entry
        cursor.execute("UPDATE portfolios_withdrawal SET status = 'completed' WHERE id = %s", [withdrawal.pk])
    found = [str(v) for v in invariants_check(only=["withdrawal_holds"])]
    assert found == [f"withdrawal_holds: user {trader.pk} cash_held USD: ledger holds 2000.0000 but withdrawals "
                     "under review hold 0"]


# --- adjustment requests ---------------------------------------------------------------------------

@pytest.mark.usefixtures("books")
def test_an_adjustment_request_posts_nothing_until_approved(trader, staff, checker):
    request = services.adjustment_request_create(staff_user=staff, user=trader, kind="securities_available",
                                                 asset="ACME", amount=D("5"), unit_cost=D("90"), reason="transfer in")
    assert not JournalEntry.objects.exists()
    assert audit(request) == [("adjustment_requested", staff.pk)]

    services.adjustment_request_approve(request_id=request.pk, staff_user=checker)

    request.refresh_from_db()
    assert (request.status, request.decided_by, request.entry.reference) == (
        "approved", checker, f"adjustment_request:{request.pk}")
    assert selectors.balances_for_user(trader)["securities"]["ACME"]["available"] == D("5")
    assert [a for a, _ in audit(request)] == ["adjustment_requested", "adjustment_approved"]


def test_a_self_approval_is_refused(trader, staff):
    request = services.adjustment_request_create(staff_user=staff, user=trader, kind="cash_available", asset="USD",
                                                 amount=D("100"), reason="goodwill")
    with pytest.raises(FourEyesRefused, match="another person"):
        services.adjustment_request_approve(request_id=request.pk, staff_user=staff)
    request.refresh_from_db()
    assert (request.status, request.entry) == ("pending", None)
    assert not JournalEntry.objects.exists()
    assert [a for a, _ in audit(request)] == ["adjustment_requested"]


def test_postgres_refuses_a_self_decided_request_written_around_the_service(trader, staff):
    from django.db import IntegrityError, transaction

    request = services.adjustment_request_create(staff_user=staff, user=trader, kind="cash_available", asset="USD",
                                                 amount=D("100"), reason="goodwill")
    with pytest.raises(IntegrityError), transaction.atomic():
        AdjustmentRequest.objects.filter(pk=request.pk).update(status="rejected", decided_by=staff)


@pytest.mark.usefixtures("books")
def test_an_approval_the_client_can_no_longer_cover_is_refused_and_stays_pending(trader, staff, checker, fund):
    fund(trader, cash="100")
    request = services.adjustment_request_create(staff_user=staff, user=trader, kind="cash_available", asset="USD",
                                                 amount=D("-80"), reason="chargeback")
    services.withdrawal_create(user=trader, amount=D("50"))
    with pytest.raises(InsufficientFunds):
        services.adjustment_request_approve(request_id=request.pk, staff_user=checker)
    request.refresh_from_db()
    assert request.status == "pending"
    services.adjustment_request_reject(request_id=request.pk, staff_user=checker, reason="client withdrew first")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("books")
def test_an_approved_adjustment_posts_exactly_once_under_concurrent_double_approval():
    trader, requester = UserFactory(), UserFactory(is_staff=True)
    approvers = [UserFactory(is_staff=True) for _ in range(4)]
    request = services.adjustment_request_create(staff_user=requester, user=trader, kind="cash_available",
                                                 asset="USD", amount=D("250"), reason="wire fee refund")

    def approve(i):
        try:
            services.adjustment_request_approve(request_id=request.pk, staff_user=approvers[i])
            return "approved"
        except InvalidState:
            return "already decided"

    assert Counter(run_together(4, approve)) == {"approved": 1, "already decided": 3}
    assert JournalEntry.objects.filter(kind="adjustment", reference=request.reference).count() == 1
    assert selectors.balances_for_user(trader)["cash_available"] == D("250")
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_by in approvers
    assert StaffAuditLog.objects.filter(action="adjustment_approved").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("books")
def test_a_withdrawal_approved_and_rejected_at_once_is_decided_once(fund, settings):
    settings.WITHDRAWAL_APPROVAL_THRESHOLD = D("1000")
    trader = UserFactory()
    fund(trader, cash="5000")
    withdrawal = services.withdrawal_create(user=trader, amount=D("4000"))
    deciders = [UserFactory(is_staff=True) for _ in range(4)]

    def decide(i):
        try:
            if i % 2:
                services.withdrawal_approve(withdrawal_id=withdrawal.pk, staff_user=deciders[i])
            else:
                services.withdrawal_reject(withdrawal_id=withdrawal.pk, staff_user=deciders[i], reason="no")
            return "decided"
        except InvalidState:
            return "already decided"

    assert Counter(run_together(4, decide)) == {"decided": 1, "already decided": 3}
    withdrawal.refresh_from_db()
    outs = JournalEntry.objects.filter(reference=withdrawal.reference, kind__in=["withdrawal", "withdrawal_release"])
    assert outs.count() == 1
    assert cash(trader) == ((D("1000"), D("0")) if withdrawal.status == "completed" else (D("5000"), D("0")))
