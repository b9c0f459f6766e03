"""No IDOR: trader B, with each kind of credential, tries every object route on trader A's objects.

Each route of /api/v1/ and /v2/ that names an object (a path parameter, or Alpaca's client_order_id lookup) has a
probe here; `test_every_object_route_is_probed` fails when a route appears that no probe covers. B must get 404 (or
the documented refusal), see none of A's data, and write nothing.
"""
import pytest
from django.utils import timezone

from portfolios.models import Position

from .conftest import (
    A_CLIENT_ORDER_ID,
    A_DEPOSIT,
    A_NOTIFICATION_TITLE,
    A_WATCHLIST_NAME,
    A_WITHDRAWAL,
    api_routes,
    assert_no_leak,
    has_path_parameter,
    snapshot,
)

pytestmark = pytest.mark.django_db

# route name -> requests B makes on A's object: (method, path, JSON body).
NATIVE_PROBES = {
    "v1:order-detail": lambda a: [("get", f"/api/v1/orders/{a.order.pk}", None),
                                  ("patch", f"/api/v1/orders/{a.order.pk}", {"version": 1, "qty": "1"})],
    "v1:order-cancel": lambda a: [("post", f"/api/v1/orders/{a.order.pk}/cancel", {"version": 1})],
    "v1:order-events": lambda a: [("get", f"/api/v1/orders/{a.order.pk}/events", None)],
    "v1:deposit-detail": lambda a: [("get", f"/api/v1/deposits/{a.deposit_id}", None)],
    "v1:auth-api-key-detail": lambda a: [("get", f"/api/v1/auth/api-keys/{a.api_key_id}", None),
                                         ("delete", f"/api/v1/auth/api-keys/{a.api_key_id}", None)],
    "v1:watchlist-detail": lambda a: [("get", f"/api/v1/watchlists/{a.watchlist_id}", None),
                                      ("patch", f"/api/v1/watchlists/{a.watchlist_id}", {"name": "b's now"}),
                                      ("delete", f"/api/v1/watchlists/{a.watchlist_id}", None)],
    "v1:watchlist-symbols": lambda a: [("post", f"/api/v1/watchlists/{a.watchlist_id}/symbols", {"symbol": "ACME"})],
    "v1:watchlist-symbol": lambda a: [("delete", f"/api/v1/watchlists/{a.watchlist_id}/symbols/ACME", None)],
}
ALPACA_PROBES = {
    "alpaca-order": lambda a: [("get", f"/v2/orders/{a.alpaca_order_id}", None),
                               ("patch", f"/v2/orders/{a.alpaca_order_id}", {"qty": "1"}),
                               ("delete", f"/v2/orders/{a.alpaca_order_id}", None)],
    "alpaca-order-by-client-id": lambda a: [
        ("get", f"/v2/orders:by_client_order_id?client_order_id={A_CLIENT_ORDER_ID}", None)],
    # A holds ACME, B holds none: B's view of the position, and closing it, must not reach A's.
    "alpaca-position": lambda a: [("get", "/v2/positions/ACME", None), ("delete", "/v2/positions/ACME", None)],
    "alpaca-watchlist": lambda a: [("get", f"/v2/watchlists/{a.alpaca_watchlist_id}", None),
                                   ("put", f"/v2/watchlists/{a.alpaca_watchlist_id}", {"name": "b's now"}),
                                   ("post", f"/v2/watchlists/{a.alpaca_watchlist_id}", {"symbol": "ACME"}),
                                   ("delete", f"/v2/watchlists/{a.alpaca_watchlist_id}", None)],
    "alpaca-watchlist-symbol": lambda a: [("delete", f"/v2/watchlists/{a.alpaca_watchlist_id}/ACME", None)],
    # By name: B has no watchlist of that name, so A's is not found either.
    "alpaca-watchlist-by-name": lambda a: [
        (method, f"/v2/watchlists:by_name?name={A_WATCHLIST_NAME}", body)
        for method, body in (("get", None), ("put", {"symbols": []}), ("post", {"symbol": "ACME"}), ("delete", None))],
}
# Routes whose parameter names public reference data, the same for every caller: no owner, nothing to steal.
PUBLIC = {"v1:market-quote", "v1:market-book", "v1:market-trades", "v1:market-bars", "alpaca-asset"}
# Routes whose parameter filters the caller's own list (no object named): B's answers are checked in the lists test.
# A statement's month picks a period of the requester's own ledger; nobody else's can be named.
OWN_LIST_FILTERS = {"alpaca-activities-of-type", "v1:statement-csv", "v1:statement-pdf"}
# Account management refuses API keys outright (IsInteractiveUser): 403 for a key, 404 for a person.
INTERACTIVE = {"v1:auth-api-key-detail"}
# The query-string lookup has no path parameter but names an object all the same.
QUERY_OBJECT_ROUTES = {"alpaca-order-by-client-id", "alpaca-watchlist-by-name"}

MARKERS = (A_CLIENT_ORDER_ID, A_DEPOSIT, A_WITHDRAWAL, A_NOTIFICATION_TITLE, A_WATCHLIST_NAME)


def test_every_object_route_is_probed():
    served = {name for path, name, _ in api_routes() if has_path_parameter(path)} | QUERY_OBJECT_ROUTES

    covered = set(NATIVE_PROBES) | set(ALPACA_PROBES) | PUBLIC | OWN_LIST_FILTERS
    assert served - covered == set(), "object routes with no IDOR probe: add them to tests/security/test_idor.py"
    assert covered - served == set(), "probes for routes that no longer exist"


def _markers(a):
    return (*MARKERS, a.user.email, a.api_key_id)


@pytest.mark.parametrize("credentials", ["jwt", "trade_key"])
def test_b_cannot_read_or_touch_as_objects_on_the_native_api(alice, bob, credentials):
    client = bob.client(credentials)
    before = snapshot()

    for route, probe in NATIVE_PROBES.items():
        for method, path, body in probe(alice):
            response = getattr(client, method)(path, body, format="json")
            expected = 403 if route in INTERACTIVE and credentials != "jwt" else 404
            assert response.status_code == expected, (route, method, response.status_code, response.content)
            assert_no_leak(response, *_markers(alice))

    assert snapshot() == before


def test_b_cannot_read_or_touch_as_objects_on_the_alpaca_api(alice, bob):
    client = bob.alpaca()
    before = snapshot()
    a_position = Position.objects.get(user=alice.user, symbol="ACME").qty

    for route, probe in ALPACA_PROBES.items():
        for method, path, body in probe(alice):
            response = getattr(client, method)(path, body, format="json")
            assert response.status_code == 404, (route, method, response.status_code, response.content)
            assert_no_leak(response, *_markers(alice))

    assert snapshot() == before
    assert Position.objects.get(user=alice.user, symbol="ACME").qty == a_position


def test_b_lists_and_bulk_writes_never_reach_as_objects(alice, bob):
    """The routes without an object in the path: B's lists show none of A's objects; B's bulk writes (mark read by
    id, cancel all, close all) leave A's untouched."""
    native, alpaca = bob.client(), bob.alpaca()
    before = snapshot()

    for path in ("/api/v1/orders?status=all", "/api/v1/orders?symbol=ACME", "/api/v1/deposits", "/api/v1/withdrawals",
                 "/api/v1/activities", "/api/v1/portfolio", "/api/v1/fills?after=0", "/api/v1/notifications",
                 "/api/v1/auth/api-keys", "/api/v1/auth/login-events", "/api/v1/watchlists",
                 f"/api/v1/statements/{timezone.now():%Y-%m}.csv"):
        response = native.get(path)
        assert response.status_code == 200, (path, response.content)
        assert_no_leak(response, *_markers(alice))
    for path in ("/v2/orders?status=all", "/v2/positions", "/v2/account", "/v2/watchlists", "/v2/account/activities",
                 "/v2/account/activities/CSW", "/v2/account/portfolio/history?period=1D"):
        response = alpaca.get(path)
        assert response.status_code == 200, (path, response.content)
        assert_no_leak(response, *_markers(alice))

    marked = native.post("/api/v1/notifications/read", {"ids": [alice.notification.pk]}, format="json")
    assert marked.status_code == 200 and marked.json()["marked"] == 0
    assert alpaca.delete("/v2/orders").json() == []
    assert alpaca.delete("/v2/positions?cancel_orders=true").json() == []

    assert snapshot() == before


def test_the_probes_name_real_objects_their_owner_can_read(alice):
    """The control: A's own reads on the same paths answer 200, so B's 404s above are refusals, not wrong paths."""
    native, alpaca = alice.client(), alice.alpaca()
    for client, probes in ((native, NATIVE_PROBES), (alpaca, ALPACA_PROBES)):
        for route, probe in probes.items():
            for method, path, _ in probe(alice):
                if method == "get":
                    assert client.get(path).status_code == 200, (route, path)
