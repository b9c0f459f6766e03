"""End to end over the API only: sign up, verify from the e-mail, sign in with the e-mailed code, call the API."""
import re

import pytest
from django.core import mail

from tests.accounts.conftest import url

pytestmark = pytest.mark.django_db


def test_new_trader_from_sign_up_to_an_authenticated_api_call(api_client, django_capture_on_commit_callbacks):
    email, password = "grace@example.com", "Compiler-Nanosecond-1906"

    with django_capture_on_commit_callbacks(execute=True):
        signed_up = api_client.post(url("auth-register"), {"email": email, "password": password,
                                                           "first_name": "Grace"}, format="json")
    assert signed_up.status_code == 202

    link = re.search(r"https?://\S+/verify-email/(\S+)/", mail.outbox[-1].body)
    assert mail.outbox[-1].to == [email] and link
    assert api_client.post(url("auth-verify-email"), {"token": link.group(1)}, format="json").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        challenge = api_client.post(url("auth-login"), {"email": email, "password": password}, format="json").json()
    assert challenge["methods"] == ["email"] and challenge["email_code_sent"]
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    tokens = api_client.post(url("auth-mfa-verify"), {"challenge_id": challenge["challenge_id"], "code": code},
                             format="json").json()

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = api_client.get(url("auth-me"))
    assert me.status_code == 200
    assert me.json()["email"] == email and me.json()["can_trade"] is True

    created = api_client.post(url("auth-api-keys"), {"name": "my bot", "scope": "trade"}, format="json").json()
    api_client.credentials(HTTP_AUTHORIZATION=f"ApiKey {created['key_id']}:{created['secret']}")
    assert api_client.get(url("auth-me")).json()["email"] == email
