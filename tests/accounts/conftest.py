"""Helpers for the accounts tests: e-mail codes from the outbox, TOTP codes, signed-in API clients."""
import re
import time

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import UserFactory

PASSWORD = "x-Test-pass-1"


def url(name: str, **kwargs) -> str:
    return reverse(f"v1:{name}", kwargs=kwargs or None)


def last_code(to: str | None = None) -> str:
    messages = [m for m in mail.outbox if to is None or to in m.to]
    assert messages, "no e-mail sent"
    return re.search(r"\b(\d{6})\b", messages[-1].body).group(1)


def totp_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def make_totp(user, *, confirmed: bool = True) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="app", confirmed=confirmed)


def unthrottle(user) -> None:
    """Skip django-otp's back-off after a wrong code (1 s, 2 s, ...) so a test need not sleep."""
    from django_otp.plugins.otp_email.models import EmailDevice

    for model in (TOTPDevice, EmailDevice):
        model.objects.filter(user=user).update(throttling_failure_timestamp=None)


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def sign_in(django_capture_on_commit_callbacks):
    """sign_in(client, user) -> token pair, through login + e-mail code (or TOTP when the user has one)."""

    def _sign_in(client, user, *, password: str = PASSWORD) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url("auth-login"), {"email": user.email, "password": password}, format="json")
        assert response.status_code == 200, response.json()
        body = response.json()
        if "totp" in body["methods"]:
            device = TOTPDevice.objects.get(user=user, confirmed=True)
            data = {"challenge_id": body["challenge_id"], "code": totp_code(device, steps_ahead=1), "method": "totp"}
        else:
            data = {"challenge_id": body["challenge_id"], "code": last_code(user.email), "method": "email"}
        response = client.post(url("auth-mfa-verify"), data, format="json")
        assert response.status_code == 200, response.json()
        return response.json()

    return _sign_in


@pytest.fixture
def authed_client(api_client, user, sign_in):
    tokens = sign_in(api_client, user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return api_client


@pytest.fixture
def browser_sign_in(django_capture_on_commit_callbacks):
    """Signs a Django test client in through /login/ and /login/mfa/ (e-mail code)."""

    def _sign_in(client, user, *, next_url: str = "/"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("accounts:login"), {"email": user.email, "password": PASSWORD,
                                                               "next": next_url})
        assert response.status_code == 302, response.content
        response = client.post(reverse("accounts:login-mfa"),
                               {"action": "verify", "method": "email", "code": last_code(user.email)})
        assert response.status_code == 302, response.content
        return response

    return _sign_in
