"""TOTP provisioning (QR, confirmation by a first code), removal with a code, replay refused even under a race."""
import threading

import pytest
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import login_mfa_verify, login_start
from tests.accounts.conftest import make_totp, totp_code, unthrottle, url
from tests.factories import UserFactory


@pytest.mark.django_db
def test_provision_confirm_and_remove(authed_client, user):
    started = authed_client.post(url("auth-mfa-totp"))

    assert started.status_code == 201
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/BrokerX")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_data_uri"].startswith("data:image/svg+xml;base64,")
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False
    assert authed_client.get(url("auth-mfa-totp")).json() == {"confirmed": False, "pending": True}

    wrong = authed_client.post(url("auth-mfa-totp-confirm"), {"code": "000000" if totp_code(device) != "000000"
                                                                else "111111"}, format="json")
    assert wrong.status_code == 401
    unthrottle(user)
    confirmed = authed_client.post(url("auth-mfa-totp-confirm"), {"code": totp_code(device)}, format="json")
    assert confirmed.status_code == 200
    assert authed_client.get(url("auth-mfa-totp")).json() == {"confirmed": True, "pending": False}
    assert authed_client.post(url("auth-mfa-totp")).status_code == 409

    # The confirmation code is spent; removal needs a fresh one.
    assert authed_client.delete(url("auth-mfa-totp"), {"code": totp_code(device)}, format="json").status_code == 401
    unthrottle(user)
    removed = authed_client.delete(url("auth-mfa-totp"), {"code": totp_code(device, steps_ahead=1)}, format="json")
    assert removed.status_code == 204
    assert not TOTPDevice.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_confirm_without_provisioning(authed_client):
    response = authed_client.post(url("auth-mfa-totp-confirm"), {"code": "123456"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "totp_not_configured"


@pytest.mark.django_db
def test_totp_management_needs_authentication(api_client):
    assert api_client.post(url("auth-mfa-totp")).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_same_totp_code_raced_twice_is_accepted_once():
    user = UserFactory()
    device = make_totp(user)
    code = totp_code(device)
    challenges = [login_start(email=user.email, password="x-Test-pass-1", ip="10.0.0.1").id for _ in range(2)]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def attempt(challenge_id):
        try:
            barrier.wait()
            login_mfa_verify(challenge_id=challenge_id, code=code, method="totp", ip="10.0.0.1")
            results.append("ok")
        except Exception as exc:  # noqa: BLE001
            results.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(c,)) for c in challenges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == ["InvalidCode", "ok"]
