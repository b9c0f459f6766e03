"""CanTrade / user_can_trade / HasTradeScope as other contexts use them on deposit and order endpoints."""
import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from accounts.models import ApiKeyScope
from accounts.permissions import CanTrade, HasTradeScope
from accounts.selectors import user_can_trade
from accounts.services import api_key_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class TradeView(APIView):
    permission_classes = [CanTrade, HasTradeScope]

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


def _call(method, user, auth=None):
    request = getattr(APIRequestFactory(), method)("/x", {}, format="json")
    force_authenticate(request, user=user, token=auth)
    return TradeView.as_view()(request)


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [({}, True), ({"email_verified_at": None}, False), ({"locked_at": timezone.now()}, False),
     ({"is_active": False}, False)],
)
def test_user_can_trade(overrides, allowed):
    assert user_can_trade(UserFactory(**overrides)) is allowed


def test_anonymous_cannot_trade():
    from django.contrib.auth.models import AnonymousUser

    assert user_can_trade(AnonymousUser()) is False
    assert _call("post", None).status_code == 401


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"email_verified_at": None}, "email_not_verified"), ({"locked_at": timezone.now()}, "account_locked"),
     ({"is_active": False}, "account_inactive")],
)
def test_can_trade_refuses_with_a_specific_code(overrides, code):
    response = _call("post", UserFactory(**overrides))
    assert response.status_code == 403 and response.data["code"] == code


def test_can_trade_lets_verified_user_through():
    assert _call("post", UserFactory()).status_code == 200


def test_read_key_can_read_but_not_write():
    user = UserFactory()
    read_key = api_key_create(user=user, name="r", scope=ApiKeyScope.READ).api_key
    trade_key = api_key_create(user=user, name="t", scope=ApiKeyScope.TRADE).api_key

    assert _call("get", user, read_key).status_code == 200
    assert _call("post", user, read_key).status_code == 403
    assert _call("post", user, trade_key).status_code == 200
    assert _call("post", user, None).status_code == 200  # JWT / session users hold every scope
