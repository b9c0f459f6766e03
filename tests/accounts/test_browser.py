"""Browser pages: sign-up, check-your-e-mail, verify landing (GET shows a button, POST spends), sign-in to an MFA'd
session, security settings with TOTP QR, API keys page, sign-out."""
import re

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiKey, User
from tests.accounts.conftest import PASSWORD, totp_code, url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_sign_up_and_verify_in_the_browser(client, django_capture_on_commit_callbacks):
    assert client.get(reverse("accounts:signup")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:signup"), {"email": "web@example.com", "password": "Tulip-Fields-77"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:signup-done")
    assert b"Check your e-mail" in client.get(response["Location"]).content

    path = re.search(r"https?://[^/\s]+(/verify-email/\S+/)", mail.outbox[-1].body).group(1)
    landing = client.get(path)
    assert landing.status_code == 200 and b"Verify my address" in landing.content
    assert User.objects.get(email="web@example.com").email_verified_at is None  # GET spends nothing

    assert b"Address verified" in client.post(path).content
    assert User.objects.get(email="web@example.com").email_verified_at is not None
    assert client.post(path).status_code == 400


def test_sign_up_shows_password_errors(client):
    response = client.post(reverse("accounts:signup"), {"email": "web@example.com", "password": "123"})
    assert response.status_code == 200 and b"errors" in response.content
    assert not User.objects.filter(email="web@example.com").exists()


def test_wrong_password_in_the_browser(client):
    user = UserFactory()
    response = client.post(reverse("accounts:login"), {"email": user.email, "password": "nope"})
    assert response.status_code == 400 and b"incorrect" in response.content


def test_sign_in_gives_an_otp_verified_session(client, browser_sign_in):
    user = UserFactory()
    browser_sign_in(client, user)

    page = client.get(reverse("accounts:security"))
    assert page.status_code == 200 and user.email.encode() in page.content
    # The session also authenticates the API.
    assert client.get(url("auth-me")).json()["email"] == user.email


def test_pages_need_a_verified_session(client):
    user = UserFactory()
    client.force_login(user)  # password-only session
    for name in ("accounts:security", "accounts:api-keys"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get(url("auth-me")).status_code in (401, 403)


def test_totp_setup_in_the_browser(client, browser_sign_in):
    user = UserFactory()
    browser_sign_in(client, user)

    page = client.post(reverse("accounts:security"), {"action": "totp-start"})
    assert b"data:image/svg+xml;base64," in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(reverse("accounts:security"), {"action": "totp-confirm", "code": totp_code(device)})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def test_api_keys_page_shows_the_secret_once(client, browser_sign_in):
    user = UserFactory()
    browser_sign_in(client, user)

    response = client.post(reverse("accounts:api-keys"), {"action": "create", "name": "bot", "scope": "read"},
                           follow=True)
    key = ApiKey.objects.get(user=user)
    assert key.key_id.encode() in response.content and b"shown once" in response.content
    again = client.get(reverse("accounts:api-keys"))
    assert b"shown once" not in again.content

    client.post(reverse("accounts:api-keys"), {"action": "revoke", "key_id": key.key_id})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_api_keys_page_cannot_revoke_someone_elses_key(client, browser_sign_in):
    from accounts.services import api_key_create

    other_key = api_key_create(user=UserFactory(), name="theirs").api_key
    browser_sign_in(client, UserFactory())
    client.post(reverse("accounts:api-keys"), {"action": "revoke", "key_id": other_key.key_id})
    other_key.refresh_from_db()
    assert other_key.revoked_at is None


def test_totp_user_signs_in_with_the_app(client):
    user = UserFactory()
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    client.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD})
    page = client.get(reverse("accounts:login-mfa"))
    assert b"authenticator app" in page.content and mail.outbox == []

    response = client.post(reverse("accounts:login-mfa"), {"action": "verify", "method": "totp",
                                                            "code": totp_code(device)})
    assert response.status_code == 302


def test_open_redirect_refused(client, browser_sign_in):
    response = browser_sign_in(client, UserFactory(), next_url="https://evil.example/")
    assert response["Location"] == "/"


def test_logout(client, browser_sign_in):
    browser_sign_in(client, UserFactory())
    assert client.get(reverse("accounts:logout")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("accounts:security")).status_code == 302
