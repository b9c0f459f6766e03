"""Back office: reachable only by staff whose session passed a second factor; lock/unlock and audit trail."""
import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from accounts.admin_audit import AuditedAdminMixin
from accounts.models import StaffAuditLog
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory(is_staff=True, is_superuser=True)


def test_admin_redirects_to_sign_in_without_a_session(client):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("accounts:login"))
    assert response.status_code == 200 and b"Sign in" in response.content


def test_password_only_session_cannot_reach_the_admin(client, staff):
    client.force_login(staff)  # a session without a verified second factor

    for path in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{staff.pk}/change/"):
        response = client.get(path)
        assert response.status_code == 302 and "/login/" in response["Location"], path


def test_staff_after_mfa_reaches_the_admin(client, staff, browser_sign_in):
    response = browser_sign_in(client, staff, next_url="/admin/")

    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/user/?q=" + staff.email).status_code == 200


def test_non_staff_after_mfa_cannot_reach_the_admin(client, browser_sign_in):
    trader = UserFactory()
    browser_sign_in(client, trader)
    assert client.get("/admin/").status_code == 302


def test_lock_and_unlock_actions_are_audited(client, staff, browser_sign_in):
    browser_sign_in(client, staff)
    trader = UserFactory()
    changelist = "/admin/accounts/user/"

    client.post(changelist, {"action": "lock_accounts", "_selected_action": [trader.pk]})
    trader.refresh_from_db()
    assert trader.locked_at is not None
    client.post(changelist, {"action": "unlock_accounts", "_selected_action": [trader.pk]})
    trader.refresh_from_db()
    assert trader.locked_at is None

    actions = list(StaffAuditLog.objects.order_by("created_at").values_list("action", "actor", "object_id"))
    assert actions == [("user_lock", staff.pk, str(trader.pk)), ("user_unlock", staff.pk, str(trader.pk))]


def test_user_change_page_shows_state_and_history(client, staff, browser_sign_in):
    browser_sign_in(client, staff)
    page = client.get(f"/admin/accounts/user/{staff.pk}/change/").content.decode()
    assert "second factor" in page and "Sign-in history" in page and "Signed in" in page


def test_mixin_audits_changes_made_in_the_admin(client, staff, browser_sign_in):
    from accounts.admin import UserAdmin

    assert issubclass(UserAdmin, AuditedAdminMixin)
    browser_sign_in(client, staff)
    trader = UserFactory(first_name="Old")
    page = client.get(f"/admin/accounts/user/{trader.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("groups", "user_permissions")}
    data.update({"first_name": "New", "email": trader.email, "is_active": "on",
                 "date_joined_0": "2020-01-01", "date_joined_1": "00:00:00",
                 "login_events-TOTAL_FORMS": "0", "login_events-INITIAL_FORMS": "0",
                 "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"})
    data.pop("last_login", None)
    data.pop("password", None)
    response = client.post(f"/admin/accounts/user/{trader.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    entry = StaffAuditLog.objects.get(action="admin_change")
    assert entry.actor == staff and entry.object_id == str(trader.pk) and "first_name" in entry.details["fields"]


def test_audit_log_is_append_only(staff):
    entry = StaffAuditLog.objects.create(actor=staff, action="test")
    with pytest.raises(DatabaseError), transaction.atomic():
        StaffAuditLog.objects.filter(pk=entry.pk).update(action="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        StaffAuditLog.objects.filter(pk=entry.pk).delete()


def test_demo_seed_gives_demo_users_a_second_factor():
    import io

    from django_otp.plugins.otp_email.models import EmailDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.demo import seed_demo

    trader = UserFactory(email="trader@brokerx.example")
    UserFactory(email="staff@brokerx.example", is_staff=True)
    out = io.StringIO()
    seed_demo(out)
    seed_demo(out)  # idempotent

    assert EmailDevice.objects.filter(confirmed=True).count() == 2
    assert TOTPDevice.objects.filter(user=trader, confirmed=True).count() == 1
    assert out.getvalue().count("shown once") == 1
