"""JWT: fixed HS256, expiry, tampering, `alg: none`; refresh rotation and reuse detection revoking the family."""
import base64
import json
import time

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import RefreshTokenFamily
from accounts.services import user_lock
from tests.accounts.conftest import url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _me(client, access: str):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get(url("auth-me"))


def test_access_token_authenticates_and_carries_the_user_id_only(api_client, user, sign_in):
    tokens = sign_in(api_client, user)

    assert _me(api_client, tokens["access"]).json()["email"] == user.email
    header = jwt.get_unverified_header(tokens["access"])
    assert header["alg"] == "HS256"
    assert set(_claims(tokens["access"])) == {"token_type", "exp", "iat", "jti", "user_id", "fam"}
    assert tokens["expires_in"] == 900


def test_tampered_token_refused(api_client, user, sign_in):
    tokens = sign_in(api_client, user)
    other = UserFactory()
    header, payload, signature = tokens["access"].split(".")
    forged = ".".join([header, _b64({**_claims(tokens["access"]), "user_id": other.pk}), signature])

    response = _me(api_client, forged)

    assert response.status_code == 401 and response.json()["code"] == "token_invalid"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_alg_none_refused(api_client, user, sign_in):
    claims = _claims(sign_in(api_client, user)["access"])
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."

    assert _me(api_client, unsigned).status_code == 401


@pytest.mark.filterwarnings("ignore:The HMAC key")
def test_other_algorithm_with_the_right_key_refused(api_client, user, sign_in):
    claims = _claims(sign_in(api_client, user)["access"])
    hs512 = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")

    assert _me(api_client, hs512).status_code == 401


def test_expired_token_refused(api_client, user, sign_in):
    claims = _claims(sign_in(api_client, user)["access"])
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")

    assert _me(api_client, expired).status_code == 401


def test_refresh_token_is_not_an_access_token(api_client, user, sign_in):
    assert _me(api_client, sign_in(api_client, user)["refresh"]).status_code == 401


def test_refresh_rotates(api_client, user, sign_in):
    first = sign_in(api_client, user)

    second = api_client.post(url("auth-token-refresh"), {"refresh": first["refresh"]}, format="json")

    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh"] != first["refresh"]
    assert _claims(pair["refresh"])["fam"] == _claims(first["refresh"])["fam"]
    assert _me(api_client, pair["access"]).status_code == 200


def test_reused_refresh_token_revokes_the_family(api_client, user, sign_in):
    stolen = sign_in(api_client, user)
    rotated = api_client.post(url("auth-token-refresh"), {"refresh": stolen["refresh"]}, format="json").json()

    reuse = api_client.post(url("auth-token-refresh"), {"refresh": stolen["refresh"]}, format="json")

    assert reuse.status_code == 401 and reuse.json()["code"] == "token_reused"
    family = RefreshTokenFamily.objects.get(user=user)
    assert family.revoked_at is not None and family.revoked_reason == "reuse_detected"
    # The legitimate holder's newer tokens die with it.
    later = api_client.post(url("auth-token-refresh"), {"refresh": rotated["refresh"]}, format="json")
    assert later.status_code == 401
    assert _me(api_client, rotated["access"]).status_code == 401


def test_other_sign_ins_survive_a_revoked_family(api_client, user, sign_in):
    phone, laptop = sign_in(api_client, user), sign_in(api_client, user)
    api_client.post(url("auth-token-refresh"), {"refresh": phone["refresh"]}, format="json")
    api_client.post(url("auth-token-refresh"), {"refresh": phone["refresh"]}, format="json")

    assert _me(api_client, laptop["access"]).status_code == 200


def test_garbage_refresh_token_refused(api_client):
    response = api_client.post(url("auth-token-refresh"), {"refresh": "abc.def.ghi"}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


def test_logout_revokes_the_family(api_client, user, sign_in):
    tokens = sign_in(api_client, user)

    assert api_client.post(url("auth-logout"), {"refresh": tokens["refresh"]}, format="json").status_code == 204
    assert api_client.post(url("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert _me(api_client, tokens["access"]).status_code == 401


def test_locking_the_account_kills_its_tokens(api_client, user, sign_in):
    tokens = sign_in(api_client, user)
    user_lock(user=user, actor=UserFactory(is_staff=True))

    assert _me(api_client, tokens["access"]).status_code in (401, 403)
    api_client.credentials()
    assert api_client.post(url("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json").status_code == 401


def test_locked_user_token_refused_even_if_cached(api_client, user, sign_in):
    tokens = sign_in(api_client, user)
    assert _me(api_client, tokens["access"]).status_code == 200  # user now cached
    user.locked_at = timezone.now()
    user.save(update_fields=["locked_at"])

    response = _me(api_client, tokens["access"])
    assert response.status_code == 403 and response.json()["code"] == "account_locked"
