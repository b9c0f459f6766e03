"""Credentials the sweep adds to tests/accounts: a JWT signed with another key, forged tokens on the order stream,
TOTP replay and lockout through the browser's sign-in pages. (What tests/accounts already proves is listed in
docs/reliability.md, "Security", and not repeated here.)"""
import jwt
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import LoginEvent
from accounts.services import jwt_issue
from brokerx.asgi import application
from tests.accounts.conftest import PASSWORD, totp_code
from tests.factories import UserFactory

OTHER_KEY = "not-the-signing-key-but-as-long-as-one-0123456789abcdef"


def _forgeries(access: str) -> dict[str, str]:
    """Tokens carrying the real claims of `access` that the server must refuse."""
    claims = jwt.decode(access, options={"verify_signature": False})
    return {
        "signed with another key": jwt.encode(claims, OTHER_KEY, algorithm="HS256"),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "expired": jwt.encode({**claims, "exp": claims["iat"] - 1}, settings.SIMPLE_JWT["SIGNING_KEY"],
                              algorithm="HS256"),
    }


@pytest.mark.django_db
def test_a_token_signed_with_another_key_is_refused(api_client):
    access = jwt_issue(user=UserFactory())["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api_client.get("/api/v1/auth/me").status_code == 200  # the control: the real one works

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {_forgeries(access)['signed with another key']}")
    response = api_client.get("/api/v1/auth/me")

    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


@pytest.mark.django_db(transaction=True)
async def test_the_order_stream_refuses_forged_tokens():
    from asgiref.sync import sync_to_async

    access = await sync_to_async(lambda: jwt_issue(user=UserFactory())["access"], thread_sensitive=True)()
    genuine = WebsocketCommunicator(application, f"/ws/orders/?token={access}")
    assert (await genuine.connect(timeout=5))[0]
    await genuine.disconnect()

    for name, token in _forgeries(access).items():
        communicator = WebsocketCommunicator(application, f"/ws/orders/?token={token}")
        assert await communicator.connect(timeout=5) == (False, 4401), name


def _browser_login(client: Client, user, password: str = PASSWORD):
    return client.post("/login/", {"email": user.email, "password": password})


@pytest.mark.django_db
def test_a_totp_code_signs_in_once_through_the_browser():
    user = UserFactory()
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    code = totp_code(device)
    first, second = Client(), Client()

    _browser_login(first, user)
    accepted = first.post("/login/mfa/", {"action": "verify", "method": "totp", "code": code})
    _browser_login(second, user)
    replayed = second.post("/login/mfa/", {"action": "verify", "method": "totp", "code": code})

    assert accepted.status_code == 302
    assert replayed.status_code == 400
    assert second.get("/settings/security/").status_code == 302  # not signed in
    assert LoginEvent.objects.filter(user=user, success=True, reason="ok").count() == 1


@pytest.mark.django_db
def test_the_browser_sign_in_locks_out_after_repeated_failures():
    user = UserFactory()
    client = Client()
    for _ in range(settings.LOGIN_LOCKOUT["ACCOUNT_FAILURES"]):
        assert _browser_login(client, user, "wrong-password").status_code == 400

    locked = _browser_login(client, user)  # the right password, too late

    assert locked.status_code == 400 and b"Try again in" in locked.content
    assert "_auth_user_id" not in client.session and client.get("/login/mfa/").status_code == 302
    assert LoginEvent.objects.filter(user=user, reason="locked_out").exists()
