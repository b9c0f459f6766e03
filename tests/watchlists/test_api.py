"""The native watchlists API: CRUD, symbols in order, the error shape, pagination, scopes and owners."""
import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts.services import api_key_create, jwt_issue
from orders.models import Instrument
from watchlists.models import Watchlist, WatchlistItem
from watchlists.services import watchlist_symbol_add

pytestmark = pytest.mark.django_db


@pytest.fixture
def symbols(db):
    for symbol in ("AAA", "BBB", "CCC"):
        Instrument.objects.create(symbol=symbol, name=symbol, reference_price=Decimal("10"))
    return ("AAA", "BBB", "CCC")


@pytest.fixture
def client_of(make_trader):
    from rest_framework.test import APIClient

    def make(user=None, *, key_scope: str | None = None):
        user = user or make_trader()
        client = APIClient()
        if key_scope:
            new_key = api_key_create(user=user, name="k", scope=key_scope)
            client.credentials(HTTP_AUTHORIZATION=f"ApiKey {new_key.api_key.key_id}:{new_key.secret}")
        else:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issue(user=user)['access']}")
        client.user = user
        return client

    return make


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code, body
    return body


def test_create_read_rename_replace_and_delete(client_of, symbols):
    client = client_of()

    created = client.post("/api/v1/watchlists", {"name": "tech", "symbols": ["bbb", "AAA"]}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["symbols"]) == ("tech", ["BBB", "AAA"])
    path = f"/api/v1/watchlists/{body['id']}"

    assert client.get(path).json()["symbols"] == ["BBB", "AAA"]
    renamed = client.patch(path, {"name": "tech 2", "symbols": ["CCC", "AAA", "BBB"]}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "tech 2"
    assert renamed.json()["symbols"] == ["CCC", "AAA", "BBB"]

    assert client.delete(path).status_code == 204
    _error(client.get(path), 404, "not_found")
    assert not WatchlistItem.objects.exists()


def test_add_and_remove_symbols_keep_the_order(client_of, symbols):
    client = client_of()
    watchlist_id = client.post("/api/v1/watchlists", {"name": "w"}, format="json").json()["id"]

    for symbol in ("CCC", "AAA", "BBB"):
        added = client.post(f"/api/v1/watchlists/{watchlist_id}/symbols", {"symbol": symbol}, format="json")
        assert added.status_code == 200, added.content
    assert added.json()["symbols"] == ["CCC", "AAA", "BBB"]

    removed = client.delete(f"/api/v1/watchlists/{watchlist_id}/symbols/AAA")
    assert removed.status_code == 200 and removed.json()["symbols"] == ["CCC", "BBB"]
    again = client.post(f"/api/v1/watchlists/{watchlist_id}/symbols", {"symbol": "AAA"}, format="json")
    assert again.json()["symbols"] == ["CCC", "BBB", "AAA"]
    _error(client.delete(f"/api/v1/watchlists/{watchlist_id}/symbols/ZZZ"), 404, "not_found")


def test_refusals_answer_422_in_the_error_shape_and_write_nothing(client_of, symbols):
    client = client_of()
    first = client.post("/api/v1/watchlists", {"name": "mine", "symbols": ["AAA"]}, format="json").json()

    _error(client.post("/api/v1/watchlists", {"name": "mine"}, format="json"), 422, "invalid_watchlist")
    _error(client.post("/api/v1/watchlists", {"name": "x", "symbols": ["NOPE"]}, format="json"), 422,
           "invalid_watchlist")
    _error(client.post("/api/v1/watchlists", {"name": "y", "symbols": ["AAA", "aaa"]}, format="json"), 422,
           "invalid_watchlist")
    _error(client.post("/api/v1/watchlists", {"name": ""}, format="json"), 400, "validation_error")
    _error(client.post(f"/api/v1/watchlists/{first['id']}/symbols", {"symbol": "AAA"}, format="json"), 422,
           "invalid_watchlist")
    _error(client.patch(f"/api/v1/watchlists/{first['id']}", {}, format="json"), 400, "validation_error")

    assert list(Watchlist.objects.values_list("name", flat=True)) == ["mine"]
    assert client.get(f"/api/v1/watchlists/{first['id']}").json()["symbols"] == ["AAA"]


def test_the_list_is_paginated_and_shows_only_the_callers_watchlists(client_of, symbols):
    alice, bob = client_of(), client_of()
    for name in ("one", "two", "three"):
        alice.post("/api/v1/watchlists", {"name": name}, format="json")
    bob.post("/api/v1/watchlists", {"name": "one"}, format="json")  # names are unique per user only

    page = alice.get("/api/v1/watchlists?limit=2").json()
    assert page["count"] == 3 and [w["name"] for w in page["results"]] == ["one", "two"] and page["next"]
    assert [w["name"] for w in bob.get("/api/v1/watchlists").json()["results"]] == ["one"]


def test_another_users_watchlist_is_a_404_and_untouched(client_of, symbols):
    alice, bob = client_of(), client_of()
    watchlist = alice.post("/api/v1/watchlists", {"name": "private", "symbols": ["AAA"]}, format="json").json()
    path = f"/api/v1/watchlists/{watchlist['id']}"

    for response in (bob.get(path), bob.patch(path, {"name": "stolen"}, format="json"), bob.delete(path),
                     bob.post(f"{path}/symbols", {"symbol": "BBB"}, format="json"),
                     bob.delete(f"{path}/symbols/AAA")):
        body = _error(response, 404, "not_found")
        assert "private" not in str(body)

    assert alice.get(path).json() == watchlist


def test_a_read_only_key_reads_and_writes_nothing(client_of, make_trader, symbols):
    user = make_trader()
    jwt, reader = client_of(user), client_of(user, key_scope="read")
    watchlist_id = jwt.post("/api/v1/watchlists", {"name": "w"}, format="json").json()["id"]

    assert reader.get("/api/v1/watchlists").status_code == 200
    assert reader.post("/api/v1/watchlists", {"name": "k"}, format="json").status_code == 403
    assert reader.post(f"/api/v1/watchlists/{watchlist_id}/symbols", {"symbol": "AAA"},
                       format="json").status_code == 403
    assert reader.delete(f"/api/v1/watchlists/{watchlist_id}").status_code == 403
    assert Watchlist.objects.filter(user=user).count() == 1 and not WatchlistItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_each_get_their_own_place(make_trader, symbols):
    user = make_trader()
    client_watchlist = Watchlist.objects.create(user=user, name="race")
    barrier = threading.Barrier(len(symbols))
    errors = []

    def add(symbol):
        try:
            barrier.wait()
            watchlist_symbol_add(user=user, watchlist_id=client_watchlist.pk, symbol=symbol)
        except Exception as exc:  # noqa: BLE001  (asserted below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(symbol,)) for symbol in symbols]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    ranks = list(WatchlistItem.objects.filter(watchlist=client_watchlist).values_list("rank", flat=True))
    assert sorted(ranks) == [1, 2, 3]
