"""Sign-up and e-mail verification (UC-01): single-use, expiring, hashed tokens; no enumeration; resend limits."""
import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import EmailVerificationToken, User
from accounts.selectors import user_can_trade
from tests.accounts.conftest import url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GOOD = {"email": "new.trader@example.com", "password": "Correct-Horse-42", "first_name": "Ada", "last_name": "L"}


def _register(api_client, capture, data=GOOD):
    with capture(execute=True):
        return api_client.post(url("auth-register"), data, format="json")


def _token_from_mail() -> str:
    return re.search(r"/verify-email/([^/\s]+)/", mail.outbox[-1].body).group(1)


def test_register_creates_unverified_user_and_mails_link(api_client, django_capture_on_commit_callbacks):
    response = _register(api_client, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    user = User.objects.get(email=GOOD["email"])
    assert user.email_verified_at is None and not user_can_trade(user)
    assert user.check_password(GOOD["password"])
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [GOOD["email"]]
    token = _token_from_mail()
    # Stored as a SHA-256 only.
    record = EmailVerificationToken.objects.get(user=user)
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not EmailVerificationToken.objects.filter(token_hash=token).exists()


def test_register_existing_email_answers_the_same(api_client, django_capture_on_commit_callbacks):
    UserFactory(email="taken@example.com")
    fresh = _register(api_client, django_capture_on_commit_callbacks, {**GOOD, "email": "fresh@example.com"})
    taken = _register(api_client, django_capture_on_commit_callbacks, {**GOOD, "email": "Taken@Example.com"})

    assert fresh.status_code == taken.status_code == 202
    assert fresh.json() == taken.json()
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert "already" in mail.outbox[-1].body.lower() and "/verify-email/" not in mail.outbox[-1].body


def test_register_rejects_weak_password_with_error_shape(api_client):
    response = api_client.post(url("auth-register"), {**GOOD, "password": "password"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error" and "password" in body["details"]
    assert not User.objects.filter(email=GOOD["email"]).exists()


def test_verify_email_once(api_client, django_capture_on_commit_callbacks):
    _register(api_client, django_capture_on_commit_callbacks)
    token = _token_from_mail()

    first = api_client.post(url("auth-verify-email"), {"token": token}, format="json")
    replay = api_client.post(url("auth-verify-email"), {"token": token}, format="json")

    assert first.status_code == 200
    assert User.objects.get(email=GOOD["email"]).email_verified_at is not None
    assert replay.status_code == 400 and replay.json()["code"] == "verification_token_invalid"


def test_expired_verification_token_refused(api_client, django_capture_on_commit_callbacks):
    _register(api_client, django_capture_on_commit_callbacks)
    token = _token_from_mail()
    EmailVerificationToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api_client.post(url("auth-verify-email"), {"token": token}, format="json")

    assert response.status_code == 400 and response.json()["code"] == "verification_token_invalid"
    assert User.objects.get(email=GOOD["email"]).email_verified_at is None


def test_unknown_token_refused(api_client):
    response = api_client.post(url("auth-verify-email"), {"token": "not-a-token"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "verification_token_invalid"


def test_resend_spends_the_earlier_link(api_client, django_capture_on_commit_callbacks):
    _register(api_client, django_capture_on_commit_callbacks)
    old = _token_from_mail()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(url("auth-verify-email-resend"), {"email": GOOD["email"]}, format="json")
    new = _token_from_mail()

    assert response.status_code == 202 and new != old
    assert api_client.post(url("auth-verify-email"), {"token": old}, format="json").status_code == 400
    assert api_client.post(url("auth-verify-email"), {"token": new}, format="json").status_code == 200


def test_resend_answers_the_same_for_unknown_and_verified_addresses(api_client, django_capture_on_commit_callbacks):
    UserFactory(email="verified@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        unknown = api_client.post(url("auth-verify-email-resend"), {"email": "nobody@example.com"}, format="json")
        verified = api_client.post(url("auth-verify-email-resend"), {"email": "verified@example.com"}, format="json")

    assert unknown.status_code == verified.status_code == 202
    assert unknown.json() == verified.json()
    assert mail.outbox == []


def test_resend_is_rate_limited_per_address(api_client):
    statuses = [api_client.post(url("auth-verify-email-resend"), {"email": "x@example.com"}, format="json")
                for _ in range(4)]

    assert [r.status_code for r in statuses] == [202, 202, 202, 429]
    limited = statuses[-1]
    assert limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) > 0 and limited.json()["details"]["retry_after"] > 0
