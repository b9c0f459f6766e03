"""Two-step sign-in (UC-02): password -> challenge -> TOTP or e-mail code; wrong inputs, replay, lockout, history."""
import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from django_otp.plugins.otp_email.models import EmailDevice

from accounts.models import LoginEvent, MfaChallenge
from tests.accounts.conftest import PASSWORD, last_code, make_totp, totp_code, unthrottle, url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _login(client, capture, email, password=PASSWORD, **extra):
    with capture(execute=True):
        return client.post(url("auth-login"), {"email": email, "password": password}, format="json", **extra)


def _verify(client, challenge_id, code, method=None, **extra):
    data = {"challenge_id": challenge_id, "code": code}
    if method:
        data["method"] = method
    return client.post(url("auth-mfa-verify"), data, format="json", **extra)


def test_password_then_email_code_gives_tokens(api_client, user, django_capture_on_commit_callbacks):
    response = _login(api_client, django_capture_on_commit_callbacks, user.email)

    body = response.json()
    assert response.status_code == 200
    assert body["methods"] == ["email"] and body["email_code_sent"] is True
    assert "access" not in body and "refresh" not in body
    tokens = _verify(api_client, body["challenge_id"], last_code(user.email)).json()
    assert set(tokens) >= {"access", "refresh", "expires_in"}
    assert LoginEvent.objects.filter(user=user, success=True, reason="ok", method="email").count() == 1


def test_wrong_password_and_unknown_email_look_the_same(api_client, user, django_capture_on_commit_callbacks):
    wrong = _login(api_client, django_capture_on_commit_callbacks, user.email, "wrong-password")
    unknown = _login(api_client, django_capture_on_commit_callbacks, "nobody@example.com", "wrong-password")

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"
    assert mail.outbox == []
    assert LoginEvent.objects.filter(user=user, success=False, reason="bad_credentials").exists()


def test_wrong_code_refused_and_challenge_survives(api_client, user, django_capture_on_commit_callbacks):
    challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    code = last_code(user.email)
    wrong = "000000" if code != "000000" else "111111"

    refused = _verify(api_client, challenge_id, wrong)
    too_soon = _verify(api_client, challenge_id, code)  # django-otp's back-off: 1 s after the first failure
    EmailDevice.objects.filter(user=user).update(throttling_failure_timestamp=None)
    accepted = _verify(api_client, challenge_id, code)

    assert refused.status_code == 401 and refused.json()["code"] == "invalid_code"
    assert too_soon.status_code == 429 and too_soon.json()["code"] == "code_throttled" and too_soon["Retry-After"]
    assert accepted.status_code == 200
    assert LoginEvent.objects.filter(user=user, reason="bad_code").count() == 1


def test_challenge_is_single_use(api_client, user, django_capture_on_commit_callbacks):
    challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    code = last_code(user.email)

    assert _verify(api_client, challenge_id, code).status_code == 200
    again = _verify(api_client, challenge_id, code)
    assert again.status_code == 401 and again.json()["code"] == "challenge_invalid"


def test_expired_challenge_refused(api_client, user, django_capture_on_commit_callbacks):
    challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    MfaChallenge.objects.update(expires_at=timezone.now())

    assert _verify(api_client, challenge_id, last_code(user.email)).json()["code"] == "challenge_invalid"


def test_challenge_dies_after_max_attempts(api_client, user, django_capture_on_commit_callbacks):
    challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    code = last_code(user.email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        _verify(api_client, challenge_id, wrong)
        unthrottle(user)

    # Even the right code is useless now; the lockout (5 per account) also answers from here on.
    response = _verify(api_client, challenge_id, code)
    assert response.status_code in (401, 429)
    assert response.json()["code"] in ("challenge_invalid", "login_locked_out")


def test_user_with_totp_is_offered_totp_and_no_mail_is_sent(api_client, user, django_capture_on_commit_callbacks):
    device = make_totp(user)

    body = _login(api_client, django_capture_on_commit_callbacks, user.email).json()

    assert body["methods"] == ["totp", "email"] and body["email_code_sent"] is False
    assert mail.outbox == []
    assert _verify(api_client, body["challenge_id"], totp_code(device)).status_code == 200


def test_totp_code_works_once(api_client, user, django_capture_on_commit_callbacks):
    device = make_totp(user)
    code = totp_code(device)
    first = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    assert _verify(api_client, first, code, "totp").status_code == 200

    second = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    replay = _verify(api_client, second, code, "totp")

    assert replay.status_code == 401 and replay.json()["code"] == "invalid_code"


def test_totp_user_can_fall_back_to_email_code(api_client, user, django_capture_on_commit_callbacks):
    make_totp(user)
    challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    with django_capture_on_commit_callbacks(execute=True):
        sent = api_client.post(url("auth-mfa-email"), {"challenge_id": challenge_id}, format="json")

    assert sent.status_code == 202
    assert _verify(api_client, challenge_id, last_code(user.email), "email").status_code == 200


def test_email_code_resend_has_a_cooldown(api_client, user, django_capture_on_commit_callbacks):
    challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
    response = api_client.post(url("auth-mfa-email"), {"challenge_id": challenge_id}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "code_not_sent"


def test_lockout_per_account_after_the_limit(api_client, user, django_capture_on_commit_callbacks):
    for _ in range(5):
        assert _login(api_client, django_capture_on_commit_callbacks, user.email, "wrong").status_code == 401

    locked = _login(api_client, django_capture_on_commit_callbacks, user.email)  # even the right password

    assert locked.status_code == 429
    body = locked.json()
    assert body["code"] == "login_locked_out" and "Try again in" in body["message"]
    assert int(locked["Retry-After"]) > 0
    assert LoginEvent.objects.filter(user=user, reason="locked_out").exists()
    # Another account from another address is unaffected.
    other = UserFactory()
    ok = _login(api_client, django_capture_on_commit_callbacks, other.email, REMOTE_ADDR="10.0.0.9")
    assert ok.status_code == 200


def test_wrong_codes_count_towards_the_account_lockout(api_client, user, django_capture_on_commit_callbacks):
    for _ in range(5):
        challenge_id = _login(api_client, django_capture_on_commit_callbacks, user.email).json()["challenge_id"]
        assert _verify(api_client, challenge_id, "12345").status_code == 401  # never a valid 6-digit code
        unthrottle(user)
    assert _login(api_client, django_capture_on_commit_callbacks, user.email).status_code == 429


@override_settings(LOGIN_LOCKOUT={"ACCOUNT_FAILURES": 100, "IP_FAILURES": 3, "WINDOW_SECONDS": 900})
def test_lockout_per_ip(api_client, django_capture_on_commit_callbacks):
    victims = [UserFactory() for _ in range(4)]
    for victim in victims[:3]:
        _login(api_client, django_capture_on_commit_callbacks, victim.email, "wrong", REMOTE_ADDR="10.1.1.1")

    from_same_ip = _login(api_client, django_capture_on_commit_callbacks, victims[3].email, REMOTE_ADDR="10.1.1.1")
    from_other_ip = _login(api_client, django_capture_on_commit_callbacks, victims[3].email, REMOTE_ADDR="10.2.2.2")

    assert from_same_ip.status_code == 429
    assert from_other_ip.status_code == 200


def test_locked_account_cannot_sign_in(api_client, django_capture_on_commit_callbacks):
    locked = UserFactory(locked_at=timezone.now())
    response = _login(api_client, django_capture_on_commit_callbacks, locked.email)
    assert response.status_code == 403 and response.json()["code"] == "account_locked"
    assert mail.outbox == []


def test_inactive_account_gets_the_generic_error(api_client, django_capture_on_commit_callbacks):
    inactive = UserFactory(is_active=False)
    response = _login(api_client, django_capture_on_commit_callbacks, inactive.email)
    assert response.status_code == 401 and response.json()["code"] == "invalid_credentials"


def test_unverified_user_can_sign_in_but_not_trade(api_client, sign_in):
    unverified = UserFactory(email_verified_at=None)
    tokens = sign_in(api_client, unverified)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = api_client.get(url("auth-me")).json()
    assert me["email_verified"] is False and me["can_trade"] is False


def test_login_history_is_visible_to_its_owner_only(authed_client, user):
    events = authed_client.get(url("auth-login-events")).json()
    assert [e["reason"] for e in events] == ["ok", "password_ok"]
    assert LoginEvent.objects.exclude(user=user).count() == 0
