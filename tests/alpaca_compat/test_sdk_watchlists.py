"""alpaca-py's watchlist calls, unchanged, against a live BrokerX: create, read, add, remove, update, delete."""
import pytest
import requests

from alpaca_compat import ids
from watchlists.models import Watchlist

from .conftest import request

pytestmark = pytest.mark.slow


def _ok(reply: dict) -> dict:
    assert reply["ok"], reply
    return reply


def test_watchlist_lifecycle_through_the_sdk(sdk, trader_with_key, alpaca_instrument):
    from orders.models import Instrument

    Instrument.objects.create(symbol="BETA", name="Beta Inc.", reference_price="50")
    user, key, secret = trader_with_key()
    sdk.use(key, secret)

    created = _ok(sdk.call("create_watchlist", request("CreateWatchlistRequest", name="tech", symbols=["ACME"])))
    assert created["type"] == "Watchlist"
    watchlist = created["value"]
    row = Watchlist.objects.get(user=user, name="tech")
    assert watchlist["id"] == str(ids.encode(ids.Kind.WATCHLIST, row.pk))
    assert watchlist["account_id"] == str(ids.encode(ids.Kind.ACCOUNT, user.pk))
    assert [a["symbol"] for a in watchlist["assets"]] == ["ACME"]
    assert watchlist["assets"][0]["id"] == str(ids.encode(ids.Kind.ASSET, alpaca_instrument.pk))

    added = _ok(sdk.call("add_asset_to_watchlist_by_id", watchlist["id"], "BETA"))["value"]
    assert [a["symbol"] for a in added["assets"]] == ["ACME", "BETA"]
    listed = _ok(sdk.call("get_watchlists"))
    assert listed["type"] == "list[Watchlist]" and [w["name"] for w in listed["value"]] == ["tech"]

    removed = _ok(sdk.call("remove_asset_from_watchlist_by_id", watchlist["id"], "ACME"))["value"]
    assert [a["symbol"] for a in removed["assets"]] == ["BETA"]
    updated = _ok(sdk.call("update_watchlist_by_id", watchlist["id"],
                           request("UpdateWatchlistRequest", name="renamed", symbols=["BETA", "ACME"])))["value"]
    assert updated["name"] == "renamed" and [a["symbol"] for a in updated["assets"]] == ["BETA", "ACME"]
    assert _ok(sdk.call("get_watchlist_by_id", watchlist["id"]))["value"]["name"] == "renamed"

    _ok(sdk.call("delete_watchlist_by_id", watchlist["id"]))
    missing = sdk.call("get_watchlist_by_id", watchlist["id"])
    assert not missing["ok"] and (missing["status_code"], missing["code"]) == (404, 40410000), missing
    assert not Watchlist.objects.filter(user=user).exists()


def test_watchlists_by_name_and_refusals(sdk, trader_with_key, alpaca_instrument):
    user, key, secret = trader_with_key()
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    base = f"{sdk.url}/v2/watchlists"

    assert requests.post(base, json={"name": "by name", "symbols": []}, headers=headers, timeout=10).status_code == 200
    by_name = requests.get(f"{base}:by_name", params={"name": "by name"}, headers=headers, timeout=10)
    assert by_name.status_code == 200 and by_name.json()["assets"] == []
    added = requests.post(f"{base}:by_name", params={"name": "by name"}, json={"symbol": "ACME"}, headers=headers,
                          timeout=10)
    assert [a["symbol"] for a in added.json()["assets"]] == ["ACME"]

    duplicate = requests.post(base, json={"name": "by name"}, headers=headers, timeout=10)
    assert duplicate.status_code == 422 and duplicate.json()["code"] == 40010001
    unknown = requests.post(f"{base}:by_name", params={"name": "by name"}, json={"symbol": "NOPE"}, headers=headers,
                            timeout=10)
    assert unknown.status_code == 422 and set(unknown.json()) == {"code", "message"}
    assert requests.delete(f"{base}:by_name", params={"name": "by name"}, headers=headers,
                           timeout=10).status_code == 204
    assert requests.get(f"{base}:by_name", params={"name": "by name"}, headers=headers, timeout=10).status_code == 404


def test_another_accounts_watchlist_is_a_404(sdk, trader_with_key, alpaca_instrument):
    _, key_a, secret_a = trader_with_key()
    _, key_b, secret_b = trader_with_key()
    sdk.use(key_a, secret_a)
    theirs = _ok(sdk.call("create_watchlist", request("CreateWatchlistRequest", name="a", symbols=["ACME"])))["value"]

    sdk.use(key_b, secret_b)
    for method, args in (("get_watchlist_by_id", ()), ("add_asset_to_watchlist_by_id", ("ACME",)),
                         ("remove_asset_from_watchlist_by_id", ("ACME",)), ("delete_watchlist_by_id", ())):
        reply = sdk.call(method, theirs["id"], *args)
        assert not reply["ok"] and reply["status_code"] == 404, (method, reply)
    assert _ok(sdk.call("get_watchlists"))["value"] == []

    sdk.use(key_a, secret_a)
    assert [a["symbol"] for a in _ok(sdk.call("get_watchlist_by_id", theirs["id"]))["value"]["assets"]] == ["ACME"]
