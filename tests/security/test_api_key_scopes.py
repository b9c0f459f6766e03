"""A read-scoped API key writes nothing: every unsafe method of /api/v1/ and /v2/ refuses it with 403.

The write endpoints are enumerated from the URL map (`write_methods` of each view); `test_every_write_is_tried`
fails when a write appears that the sweep does not try. Each request is one the key's owner could otherwise make
on their own objects, so a missing check would write, and the snapshot would show it.
"""
import pytest
from rest_framework.test import APIClient

from .conftest import A_WATCHLIST_NAME, alpaca_headers, api_key_header, api_routes, snapshot, write_methods

pytestmark = pytest.mark.django_db

# Sign-up and sign-in take no credentials (no authentication class, so no key to scope): nothing to refuse.
ANONYMOUS = {"v1:auth-register", "v1:auth-verify-email", "v1:auth-verify-email-resend", "v1:auth-login",
             "v1:auth-mfa-email", "v1:auth-mfa-verify", "v1:auth-token-refresh", "v1:auth-logout"}

# (route name, method) -> (path, JSON body, extra headers), all on A's own objects.
WRITES = {
    ("v1:auth-mfa-totp", "POST"): lambda a: ("/api/v1/auth/mfa/totp", None, {}),
    ("v1:auth-mfa-totp", "DELETE"): lambda a: ("/api/v1/auth/mfa/totp", {"code": "123456"}, {}),
    ("v1:auth-mfa-totp-confirm", "POST"): lambda a: ("/api/v1/auth/mfa/totp/confirm", {"code": "123456"}, {}),
    ("v1:auth-api-keys", "POST"): lambda a: ("/api/v1/auth/api-keys", {"name": "more", "scope": "trade"}, {}),
    ("v1:auth-api-key-detail", "DELETE"): lambda a: (f"/api/v1/auth/api-keys/{a.trade_key[0]}", None, {}),
    ("v1:deposits", "POST"): lambda a: ("/api/v1/deposits", {"amount": "100.00"}, {"HTTP_IDEMPOTENCY_KEY": "r-1"}),
    ("v1:withdrawals", "POST"): lambda a: ("/api/v1/withdrawals", {"amount": "100.00"},
                                           {"HTTP_IDEMPOTENCY_KEY": "r-2"}),
    ("v1:orders", "POST"): lambda a: ("/api/v1/orders", {"symbol": "ACME", "side": "sell", "type": "limit",
                                                         "time_in_force": "gtc", "qty": "1", "limit_price": "101.00"},
                                      {}),
    ("v1:order-detail", "PATCH"): lambda a: (f"/api/v1/orders/{a.order.pk}", {"version": 1, "qty": "2"}, {}),
    ("v1:order-cancel", "POST"): lambda a: (f"/api/v1/orders/{a.order.pk}/cancel", {"version": 1}, {}),
    ("v1:notifications-read", "POST"): lambda a: ("/api/v1/notifications/read", {"ids": [a.notification.pk]}, {}),
    ("v1:notification-preferences", "PATCH"): lambda a: ("/api/v1/notifications/preferences",
                                                         {"email_fills": False}, {}),
    ("alpaca-orders", "POST"): lambda a: ("/v2/orders", {"symbol": "ACME", "side": "sell", "type": "limit",
                                                         "time_in_force": "gtc", "qty": "1", "limit_price": "101"},
                                          {}),
    ("alpaca-orders", "DELETE"): lambda a: ("/v2/orders", None, {}),
    ("alpaca-order", "PATCH"): lambda a: (f"/v2/orders/{a.alpaca_order_id}", {"qty": "2"}, {}),
    ("alpaca-order", "DELETE"): lambda a: (f"/v2/orders/{a.alpaca_order_id}", None, {}),
    ("alpaca-positions", "DELETE"): lambda a: ("/v2/positions", None, {}),
    ("alpaca-position", "DELETE"): lambda a: ("/v2/positions/ACME", None, {}),
    ("v1:watchlists", "POST"): lambda a: ("/api/v1/watchlists", {"name": "read key's"}, {}),
    ("v1:watchlist-detail", "PATCH"): lambda a: (f"/api/v1/watchlists/{a.watchlist_id}", {"symbols": []}, {}),
    ("v1:watchlist-detail", "DELETE"): lambda a: (f"/api/v1/watchlists/{a.watchlist_id}", None, {}),
    ("v1:watchlist-symbols", "POST"): lambda a: (f"/api/v1/watchlists/{a.watchlist_id}/symbols",
                                                 {"symbol": "ACME"}, {}),
    ("v1:watchlist-symbol", "DELETE"): lambda a: (f"/api/v1/watchlists/{a.watchlist_id}/symbols/ACME", None, {}),
    ("alpaca-watchlists", "POST"): lambda a: ("/v2/watchlists", {"name": "read key's"}, {}),
    ("alpaca-watchlist", "PUT"): lambda a: (f"/v2/watchlists/{a.alpaca_watchlist_id}", {"symbols": []}, {}),
    ("alpaca-watchlist", "POST"): lambda a: (f"/v2/watchlists/{a.alpaca_watchlist_id}", {"symbol": "ACME"}, {}),
    ("alpaca-watchlist", "DELETE"): lambda a: (f"/v2/watchlists/{a.alpaca_watchlist_id}", None, {}),
    ("alpaca-watchlist-symbol", "DELETE"): lambda a: (f"/v2/watchlists/{a.alpaca_watchlist_id}/ACME", None, {}),
    ("alpaca-watchlist-by-name", "PUT"): lambda a: (f"/v2/watchlists:by_name?name={A_WATCHLIST_NAME}",
                                                    {"symbols": []}, {}),
    ("alpaca-watchlist-by-name", "POST"): lambda a: (f"/v2/watchlists:by_name?name={A_WATCHLIST_NAME}",
                                                     {"symbol": "ACME"}, {}),
    ("alpaca-watchlist-by-name", "DELETE"): lambda a: (f"/v2/watchlists:by_name?name={A_WATCHLIST_NAME}", None, {}),
}


def test_every_write_is_tried():
    served = {(name, method) for _, name, view in api_routes() if name not in ANONYMOUS
              for method in write_methods(view)}

    assert served - set(WRITES) == set(), "writes no read-key check tries: add them to test_api_key_scopes.py"
    assert set(WRITES) - served == set(), "checks of writes that no longer exist"


@pytest.mark.parametrize(("route", "method"), sorted(WRITES))
def test_a_read_key_cannot_write(alice, route, method):
    path, body, headers = WRITES[route, method](alice)
    credentials = (alpaca_headers if route.startswith("alpaca") else api_key_header)(*alice.read_key)
    before = snapshot()

    response = getattr(APIClient(), method.lower())(path, body, format="json", **credentials, **headers)

    assert response.status_code == 403, (response.status_code, response.content)
    assert snapshot() == before
