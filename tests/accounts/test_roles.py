"""Staff roles (groups made by migration accounts.0004_staff_roles): each role reaches what it should in the admin,
through an OTP-verified staff session, and nothing else (403 on lists and pages, actions not offered nor run)."""
import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_email.models import EmailDevice

from orders.models import Instrument, Order
from orders.services import OrderRequest, order_place
from outbox.models import OutboxEvent
from portfolios import services
from portfolios.models import AdjustmentRequest, Withdrawal
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("books")]
ROLES_MIGRATION = importlib.import_module("accounts.migrations.0004_staff_roles")

PAGES = {
    "users": "/admin/accounts/user/",
    "sign-ins": "/admin/accounts/loginevent/",
    "audit log": "/admin/accounts/staffauditlog/",
    "instruments": "/admin/orders/instrument/",
    "orders": "/admin/orders/order/",
    "outbox": "/admin/outbox/outboxevent/",
    "balances": "/admin/portfolios/ledgeraccount/",
    "journal": "/admin/portfolios/journalentry/",
    "deposits": "/admin/portfolios/deposit/",
    "withdrawals": "/admin/portfolios/withdrawal/",
    "adjustment requests": "/admin/portfolios/adjustmentrequest/",
    "withdrawal reviews": "/admin/portfolios/withdrawalunderreview/",
    "adjustment form": "/admin/portfolios/ledgeraccount/adjust/",
    "groups": "/admin/auth/group/",
    "otp devices": "/admin/otp_totp/totpdevice/",
}
SEES = {
    "support": {"users", "sign-ins", "instruments", "orders", "balances", "deposits", "withdrawals"},
    "operations": {"users", "instruments", "orders", "outbox"},
    "finance": {"users", "balances", "journal", "deposits", "withdrawals", "adjustment requests",
                "withdrawal reviews", "adjustment form"},
    "compliance": {"users", "sign-ins", "audit log", "orders", "balances", "journal", "deposits", "withdrawals",
                   "adjustment requests", "withdrawal reviews"},
}
# The actions each role is offered, by page; any other is neither offered nor run.
ACTIONS = {
    "support": {},
    "operations": {"instruments": {"halt", "resume"}, "orders": {"cancel_orders"}, "outbox": {"retry_dead"}},
    "finance": {"adjustment requests": {"approve_requests", "reject_requests"},
                "withdrawal reviews": {"approve_withdrawals", "reject_withdrawals"}},
    "compliance": {},
}


@pytest.fixture
def roles(db):
    """The groups as the migration makes them (a transactional test elsewhere may have truncated them)."""
    ROLES_MIGRATION.roles_create(apps, None)
    return {group.name: group for group in Group.objects.all()}


def member(role: str, groups) -> Client:
    staff = UserFactory(is_staff=True)
    staff.groups.add(groups[role])
    client = Client()
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = EmailDevice.objects.create(user=staff, name="e-mail", confirmed=True).persistent_id
    session.save()
    client.staff = staff
    return client


def offered(client, url) -> set[str]:
    form = client.get(url).context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def test_the_migration_makes_four_roles(roles):
    assert set(roles) == {"support", "operations", "finance", "compliance"}
    assert not any(p.codename.startswith("delete_") for g in roles.values() for p in g.permissions.all())


@pytest.mark.parametrize("role", sorted(SEES))
def test_each_role_reaches_its_pages_and_no_other(role, roles):
    client = member(role, roles)
    answers = {name: client.get(url).status_code for name, url in PAGES.items()}
    assert answers == {name: 200 if name in SEES[role] else 403 for name in PAGES}


@pytest.mark.parametrize("role", sorted(SEES))
def test_each_role_is_offered_its_actions_and_no_other(role, roles):
    client = member(role, roles)
    for name in SEES[role] - {"adjustment form"}:
        assert offered(client, PAGES[name]) == ACTIONS[role].get(name, set()), name


@pytest.mark.parametrize("role", sorted(SEES))
def test_only_operations_halts_cancels_and_retries(role, roles, instrument, make_trader):
    client = member(role, roles)
    trader = make_trader(cash="1000")
    order, _ = order_place(user=trader, request=OrderRequest(
        symbol="ACME", side="buy", type="limit", time_in_force="day", qty=Decimal("1"), limit_price=Decimal("99")))
    dead = OutboxEvent.objects.create(topic="test.nothing", status="dead", attempts=5)

    client.post(PAGES["instruments"], {"action": "halt", "_selected_action": [instrument.pk]})
    client.post(PAGES["orders"], {"action": "cancel_orders", "_selected_action": [order.pk]})
    client.post(PAGES["outbox"], {"action": "retry_dead", "_selected_action": [dead.pk]})
    client.post(PAGES["users"], {"action": "lock_accounts", "_selected_action": [trader.pk]})

    allowed = role == "operations"
    assert (Instrument.objects.get(pk=instrument.pk).trading_status == "halted") is allowed
    assert (Order.objects.get(pk=order.pk).status == "canceled") is allowed
    assert (OutboxEvent.objects.get(pk=dead.pk).status == "pending") is allowed
    trader.refresh_from_db()
    assert trader.locked_at is None  # no role locks accounts (superusers do)


@pytest.mark.parametrize("role", sorted(SEES))
def test_read_only_pages_refuse_a_change(role, roles, instrument):
    client = member(role, roles)
    url = f"{PAGES['instruments']}{instrument.pk}/change/"
    page = client.get(url)
    assert page.status_code == (200 if "instruments" in SEES[role] else 403)
    data = {"symbol": "ACME", "name": "Renamed", "reference_price": "100.00", "tick_size": "0.01", "lot_size": "1",
            "price_band_pct": "0.10", "max_order_notional": "500000", "trading_status": "open", "is_tradable": "on"}
    if page.status_code == 200 and "adminform" in page.context:
        form = page.context["adminform"].form
        data = {**{k: v for k, v in form.initial.items() if v is not None}, "name": "Renamed", "is_tradable": "on"}
    answer = client.post(url, data)
    assert answer.status_code == (302 if role == "operations" else 403), answer.content[:3000]
    assert (Instrument.objects.get(pk=instrument.pk).name == "Renamed") is (role == "operations")


@pytest.mark.parametrize("role", sorted(SEES))
def test_only_finance_requests_and_decides_money(role, roles, settings):
    settings.WITHDRAWAL_APPROVAL_THRESHOLD = Decimal("100")
    requester = UserFactory(is_staff=True)
    trader = UserFactory()
    services.adjustment_post(staff_user=requester, user=trader, kind="cash_available", asset="USD",
                             amount=Decimal("1000"), reason="funding")
    request = services.adjustment_request_create(staff_user=requester, user=trader, kind="cash_available",
                                                 asset="USD", amount=Decimal("5"), reason="goodwill")
    withdrawal = services.withdrawal_create(user=trader, amount=Decimal("500"))
    client = member(role, roles)

    asked = client.post(PAGES["adjustment form"], {"client_email": trader.email, "account": "cash_available",
                                                   "asset": "USD", "amount": "1", "reason": "fee refund"})
    for url, action, obj in ((PAGES["adjustment requests"], "approve_requests", request.pk),
                             (PAGES["withdrawal reviews"], "approve_withdrawals", withdrawal.pk)):
        body = {"action": action, "_selected_action": [obj]}
        client.post(url, body)
        client.post(url, {**body, "confirm": "yes", "reason": "ok"})

    finance = role == "finance"
    assert asked.status_code == (302 if finance else 403)
    assert AdjustmentRequest.objects.filter(requested_by=client.staff).exists() is finance
    assert AdjustmentRequest.objects.get(pk=request.pk).status == ("approved" if finance else "pending")
    assert Withdrawal.objects.get(pk=withdrawal.pk).status == ("completed" if finance else "pending_review")


def test_finance_cannot_approve_what_it_asked_for(roles):
    client = member("finance", roles)
    trader = UserFactory()
    client.post(PAGES["adjustment form"], {"client_email": trader.email, "account": "cash_available",
                                           "asset": "USD", "amount": "10", "reason": "goodwill"})
    request = AdjustmentRequest.objects.get()
    body = {"action": "approve_requests", "_selected_action": [request.pk], "confirm": "yes", "reason": ""}
    client.post(PAGES["adjustment requests"], body)
    request.refresh_from_db()
    assert request.status == "pending"
    member("finance", roles).post(PAGES["adjustment requests"], body)
    request.refresh_from_db()
    assert request.status == "approved"
