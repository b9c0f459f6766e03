"""The reusable Idempotency-Key handling of API writes (brokerx.idempotency), on a view of its own."""
import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from brokerx.api.errors import ApiError
from brokerx.idempotency import idempotency_keys_purge, idempotent
from brokerx.models import IdempotencyKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
CALLS: list = []


class _Body(serializers.Serializer):
    amount = serializers.IntegerField(min_value=1)
    outcome = serializers.ChoiceField(choices=["ok", "refused", "crash"], default="ok")


class _View(APIView):
    @idempotent()
    def post(self, request):
        body = _Body(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["outcome"] == "crash":
            raise RuntimeError("a bug")
        CALLS.append(body.validated_data["amount"])
        if body.validated_data["outcome"] == "refused":
            raise ApiError("Not enough cash.", code="insufficient_funds", status_code=422)
        return Response({"call": len(CALLS), "amount": body.validated_data["amount"]}, status=201)


@pytest.fixture(autouse=True)
def _calls():
    CALLS.clear()
    yield
    CALLS.clear()


def post(user, body, key: str | None = "key-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    request = APIRequestFactory().post("/api/v1/things", body, format="json", **headers)
    force_authenticate(request, user=user)
    response = _View.as_view()(request)
    response.render()
    return response


def test_same_key_and_body_replays_the_stored_status_and_body_with_a_header():
    user = UserFactory()
    first = post(user, {"amount": 5})
    again = post(user, {"amount": 5})
    assert first.status_code == again.status_code == 201
    assert first.data == again.data == {"call": 1, "amount": 5}
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert CALLS == [5]


def test_key_order_and_spacing_of_the_body_do_not_matter():
    user = UserFactory()
    post(user, {"amount": 5, "outcome": "ok"})
    assert post(user, {"outcome": "ok", "amount": 5}).headers["Idempotent-Replayed"] == "true"


def test_same_key_with_a_different_body_is_422():
    user = UserFactory()
    post(user, {"amount": 5})
    response = post(user, {"amount": 6})
    assert response.status_code == 422
    assert response.data["code"] == "idempotency_key_reused"
    assert CALLS == [5]


def test_a_request_failing_validation_is_not_stored():
    user = UserFactory()
    response = post(user, {"amount": 0})
    assert response.status_code == 400 and response.data["code"] == "validation_error"
    assert not IdempotencyKey.objects.exists()
    # The client fixes the body and retries with the same key: it runs.
    assert post(user, {"amount": 1}).status_code == 201


def test_a_business_refusal_is_stored_and_replayed():
    user = UserFactory()
    first = post(user, {"amount": 5, "outcome": "refused"})
    again = post(user, {"amount": 5, "outcome": "refused"})
    assert first.status_code == again.status_code == 422
    assert again.data["code"] == "insufficient_funds" and again.headers["Idempotent-Replayed"] == "true"
    assert CALLS == [5]


def test_a_crash_is_not_stored_and_the_key_can_be_retried():
    user = UserFactory()
    with pytest.raises(RuntimeError):
        post(user, {"amount": 5, "outcome": "crash"})
    assert not IdempotencyKey.objects.exists()


def test_keys_are_scoped_per_user():
    alice, bob = UserFactory(), UserFactory()
    assert post(alice, {"amount": 5}).data == {"call": 1, "amount": 5}
    bobs = post(bob, {"amount": 7})
    assert bobs.status_code == 201 and "Idempotent-Replayed" not in bobs.headers
    assert CALLS == [5, 7]


def test_the_key_is_required_and_checked():
    user = UserFactory()
    assert post(user, {"amount": 5}, key=None).data["code"] == "idempotency_key_required"
    assert post(user, {"amount": 5}, key="x" * 256).data["code"] == "idempotency_key_invalid"
    assert CALLS == []


def _claim(user, *, claimed_at, body_hash: str):
    now = timezone.now()
    return IdempotencyKey.objects.create(user=user, key="key-1", scope="POST /api/v1/things", request_hash=body_hash,
                                         claim_token=uuid.uuid4(), claimed_at=claimed_at, created_at=now)


def _hash_of(user, body) -> str:
    post(user, body, key="probe")
    return IdempotencyKey.objects.get(key="probe").request_hash


def test_a_duplicate_while_the_first_is_in_flight_gets_409():
    user = UserFactory()
    _claim(user, claimed_at=timezone.now(), body_hash=_hash_of(user, {"amount": 5}))
    response = post(user, {"amount": 5})
    assert response.status_code == 409 and response.data["code"] == "idempotency_in_flight"


def test_a_stale_in_flight_claim_is_taken_over(settings):
    settings.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS = 30
    user = UserFactory()
    _claim(user, claimed_at=timezone.now() - dt.timedelta(seconds=31), body_hash=_hash_of(user, {"amount": 5}))
    response = post(user, {"amount": 5})
    assert response.status_code == 201
    assert IdempotencyKey.objects.get(key="key-1").status == IdempotencyKey.Status.COMPLETED


def test_purge_keeps_keys_for_at_least_24_hours(settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 1  # never below 24 h
    user = UserFactory()
    post(user, {"amount": 5}, key="recent")
    post(user, {"amount": 5}, key="old")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - dt.timedelta(hours=25))
    IdempotencyKey.objects.filter(key="recent").update(created_at=timezone.now() - dt.timedelta(hours=23))
    assert idempotency_keys_purge() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]


def test_anonymous_callers_are_refused_before_any_key_is_claimed():
    request = APIRequestFactory().post("/api/v1/things", {"amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = _View.as_view()(request)
    assert response.status_code in (401, 403)
    assert not IdempotencyKey.objects.exists()
