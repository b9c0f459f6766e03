"""API keys: secret shown once and stored as HMAC, scopes, revocation, owner-only access, fast cached checks."""
import pytest
from django.utils import timezone

from accounts.errors import AccountLocked, ApiKeyInvalid
from accounts.models import ApiKey, ApiKeyScope
from accounts.services import api_key_authenticate, api_key_create, api_key_revoke
from accounts.services import api_keys as api_keys_service
from tests.accounts.conftest import url
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _key_header(key_id: str, secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"ApiKey {key_id}:{secret}"}


def test_create_shows_the_secret_once_and_stores_a_hash(authed_client, user):
    created = authed_client.post(url("auth-api-keys"), {"name": "bot", "scope": "trade"}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["key_id"].startswith("BX") and len(body["key_id"]) == 20 and len(body["secret"]) >= 40
    stored = ApiKey.objects.get(key_id=body["key_id"])
    assert stored.user == user and stored.scope == "trade"
    assert body["secret"] not in stored.secret_hash and len(stored.secret_hash) == 64
    listed = authed_client.get(url("auth-api-keys")).json()
    assert [k["key_id"] for k in listed] == [body["key_id"]] and "secret" not in listed[0]


def test_api_key_authenticates_the_native_api(api_client, user):
    created = api_key_create(user=user, name="bot")

    response = api_client.get(url("auth-me"), **_key_header(created.api_key.key_id, created.secret))

    assert response.status_code == 200 and response.json()["email"] == user.email


@pytest.mark.parametrize("header", ["ApiKey nonsense", "ApiKey BXAAAAAAAAAAAAAAAAAA:wrong", "ApiKey :"])
def test_bad_api_keys_refused(api_client, user, header):
    api_key_create(user=user, name="bot")
    response = api_client.get(url("auth-me"), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["code"] == "api_key_invalid"


def test_wrong_secret_for_a_real_key_refused(api_client, user):
    created = api_key_create(user=user, name="bot")
    response = api_client.get(url("auth-me"), **_key_header(created.api_key.key_id, created.secret + "x"))
    assert response.status_code == 401


def test_revoked_key_refused_at_once_even_when_cached(authed_client, user):
    from rest_framework.test import APIClient

    api_client = APIClient()  # authed_client carries a JWT; this one only the key
    created = api_key_create(user=user, name="bot")
    headers = _key_header(created.api_key.key_id, created.secret)
    assert api_client.get(url("auth-me"), **headers).status_code == 200  # now cached

    revoked = authed_client.delete(url("auth-api-key-detail", key_id=created.api_key.key_id))

    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert api_client.get(url("auth-me"), **headers).status_code == 401
    with pytest.raises(ApiKeyInvalid):
        api_key_authenticate(key_id=created.api_key.key_id, secret=created.secret)


def test_service_returns_user_and_key_and_raises_typed_errors(user):
    created = api_key_create(user=user, name="alpaca", scope=ApiKeyScope.TRADE)

    got_user, got_key = api_key_authenticate(key_id=created.api_key.key_id, secret=created.secret)

    assert got_user == user and got_key.pk == created.api_key.pk and got_key.allows_trading()
    with pytest.raises(ApiKeyInvalid):
        api_key_authenticate(key_id="BXNOPE", secret=created.secret)
    user.locked_at = timezone.now()
    user.save(update_fields=["locked_at"])
    with pytest.raises(AccountLocked):
        api_key_authenticate(key_id=created.api_key.key_id, secret=created.secret)


def test_user_b_cannot_see_or_revoke_user_a_keys(api_client, sign_in):
    alice, bob = UserFactory(), UserFactory()
    alice_key = api_key_create(user=alice, name="alice-bot").api_key
    bob_tokens = sign_in(api_client, bob)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {bob_tokens['access']}")

    assert api_client.get(url("auth-api-keys")).json() == []
    detail = api_client.get(url("auth-api-key-detail", key_id=alice_key.key_id))
    revoke = api_client.delete(url("auth-api-key-detail", key_id=alice_key.key_id))

    assert detail.status_code == revoke.status_code == 404
    alice_key.refresh_from_db()
    assert alice_key.revoked_at is None
    assert api_client.get(url("auth-login-events")).json()[0]["reason"] == "ok"
    assert all(e for e in api_client.get(url("auth-login-events")).json())  # only bob's own


def test_api_key_cannot_manage_keys_or_mfa(api_client, user):
    created = api_key_create(user=user, name="bot", scope=ApiKeyScope.TRADE)
    headers = _key_header(created.api_key.key_id, created.secret)

    assert api_client.post(url("auth-api-keys"), {"name": "more"}, format="json", **headers).status_code == 403
    assert api_client.get(url("auth-api-keys"), **headers).status_code == 403
    assert api_client.post(url("auth-mfa-totp"), **headers).status_code == 403


def test_last_used_updated_at_most_once_a_minute(user, django_assert_num_queries):
    created = api_key_create(user=user, name="bot")
    api_key_authenticate(key_id=created.api_key.key_id, secret=created.secret)
    first = ApiKey.objects.get(pk=created.api_key.pk).last_used_at
    assert first is not None

    # Warm cache, flag set: verifying a key costs no database query at all.
    with django_assert_num_queries(0):
        api_key_authenticate(key_id=created.api_key.key_id, secret=created.secret)
    assert ApiKey.objects.get(pk=created.api_key.pk).last_used_at == first

    api_keys_service._last_touched.clear()  # as if a minute had passed
    with django_assert_num_queries(1):
        api_key_authenticate(key_id=created.api_key.key_id, secret=created.secret)


def test_revoke_is_idempotent(user):
    key = api_key_create(user=user, name="bot").api_key
    first = api_key_revoke(api_key=key).revoked_at
    assert api_key_revoke(api_key=key).revoked_at == first


def test_jwt_auth_hot_path_needs_no_query_once_cached(authed_client, django_assert_num_queries):
    authed_client.get(url("auth-me"))  # caches the user
    from rest_framework.test import APIRequestFactory

    from accounts.authentication import JWTAuthentication

    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=authed_client._credentials["HTTP_AUTHORIZATION"])
    with django_assert_num_queries(0):
        user, _token = JWTAuthentication().authenticate(request)
    assert user.is_authenticated
