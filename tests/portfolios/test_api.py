"""The portfolios API: deposits (idempotent), withdrawals, portfolio, activities; permissions and no IDOR."""
from decimal import Decimal

import pytest
from django.utils import timezone

from brokerx.models import IdempotencyKey
from portfolios.models import Deposit, JournalEntry
from portfolios.services import cash_reserve
from tests.factories import UserFactory

pytestmark = pytest.mark.usefixtures("books")
D = Decimal


@pytest.fixture
def client(api_client, trader):
    api_client.force_authenticate(trader)
    return api_client


def deposit(client, body, key="dep-1"):
    return client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_deposit_is_created_pending_and_replayed_with_the_same_key(client, trader):
    first = deposit(client, {"amount": "150.00"})
    assert first.status_code == 201, first.json()
    assert first.json()["status"] == "pending" and first.json()["amount"] == "150.00"
    again = deposit(client, {"amount": "150.00"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Deposit.objects.filter(user=trader).count() == 1
    assert JournalEntry.objects.filter(kind="deposit").count() == 1


def test_deposit_same_key_different_body_is_422(client):
    deposit(client, {"amount": "150.00"})
    response = deposit(client, {"amount": "151.00"})
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"


def test_deposit_failing_validation_is_not_stored(client):
    response = deposit(client, {"amount": "-5"})
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert not IdempotencyKey.objects.exists()
    assert deposit(client, {"amount": "5"}).status_code == 201


def test_deposit_keys_are_per_user(client, api_client):
    deposit(client, {"amount": "10"})
    other = UserFactory()
    api_client.force_authenticate(other)
    response = deposit(api_client, {"amount": "10"})
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert Deposit.objects.count() == 2


def test_deposit_over_the_limit_is_a_stored_422(client, settings):
    settings.DEPOSIT_MAX_AMOUNT = D("100")
    response = deposit(client, {"amount": "100.01"})
    assert response.status_code == 422 and response.json()["code"] == "limit_exceeded"
    assert deposit(client, {"amount": "100.01"}).headers["Idempotent-Replayed"] == "true"


def test_deposit_requires_the_idempotency_key(client):
    response = client.post("/api/v1/deposits", {"amount": "10"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "idempotency_key_required"


@pytest.mark.parametrize(("field", "code"), [("email_verified_at", "email_not_verified"),
                                             ("locked_at", "account_locked")])
def test_unverified_or_locked_users_cannot_move_money(api_client, field, code):
    user = UserFactory(**{"email_verified_at": None} if field == "email_verified_at" else {"locked_at": timezone.now()})
    api_client.force_authenticate(user)
    for path in ("/api/v1/deposits", "/api/v1/withdrawals"):
        response = api_client.post(path, {"amount": "10"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 403 and response.json()["code"] == code
    assert api_client.get("/api/v1/deposits").status_code == 200


def test_anonymous_callers_get_401_or_403(api_client):
    assert api_client.get("/api/v1/portfolio").status_code in (401, 403)


def test_deposit_list_and_detail_show_only_the_callers_deposits(client, api_client, trader):
    mine = deposit(client, {"amount": "10"}).json()
    other = UserFactory()
    api_client.force_authenticate(other)
    assert api_client.get(f"/api/v1/deposits/{mine['id']}").status_code == 404
    assert api_client.get("/api/v1/deposits").json()["results"] == []
    api_client.force_authenticate(trader)
    assert [d["id"] for d in api_client.get("/api/v1/deposits").json()["results"]] == [mine["id"]]
    assert api_client.get(f"/api/v1/deposits/{mine['id']}").json()["status"] == "pending"


def test_withdrawal_from_available_cash_only(client, trader, fund):
    fund(trader, cash="100")
    cash_reserve(user=trader, amount=D("30"), reference="order:1")
    refused = client.post("/api/v1/withdrawals", {"amount": "70.01"}, format="json", HTTP_IDEMPOTENCY_KEY="w1")
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"
    done = client.post("/api/v1/withdrawals", {"amount": "70"}, format="json", HTTP_IDEMPOTENCY_KEY="w2")
    assert done.status_code == 201 and done.json()["status"] == "completed"
    assert client.get("/api/v1/withdrawals").json()["results"][0]["amount"] == "70.00"
    assert client.get("/api/v1/portfolio").json()["cash"] == "0.0000"


def test_portfolio_shows_cash_reserved_pending_buying_power_and_positions(client, trader, fund):
    fund(trader, cash="1000", shares={"ACME": "10"}, unit_cost="20")
    cash_reserve(user=trader, amount=D("100"), reference="order:1")
    deposit(client, {"amount": "500"})
    body = client.get("/api/v1/portfolio").json()
    assert body["cash"] == "900.0000" and body["cash_reserved"] == "100.0000" and body["cash_pending"] == "500.0000"
    assert body["buying_power"] == "900.0000"
    assert body["equity"] == "1200.0000"
    [position] = body["positions"]
    assert position["symbol"] == "ACME" and position["qty"] == "10.0000" and position["avg_cost"] == "20.00000000"
    assert position["market_value"] == "200.0000" and position["unrealized_pnl"] == "0.0000"


def test_activities_list_the_ledger_history_filtered_and_paginated(client, trader, fund):
    fund(trader, cash="1000")
    deposit(client, {"amount": "10"})
    for i in range(3):
        cash_reserve(user=trader, amount=D("1"), reference=f"order:{i}")
    page = client.get("/api/v1/activities?limit=4").json()
    assert len(page["results"]) == 4 and page["next"]
    assert page["results"][0]["type"] == "cash_reserve"
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 4 and rest["results"][-1]["type"] == "adjustment"
    deposits = client.get("/api/v1/activities?type=deposit").json()["results"]
    assert [(a["type"], a["account"], a["amount"]) for a in deposits] == [("deposit", "cash_pending", "10.0000")]
    assert client.get("/api/v1/activities?since=2999-01-01T00:00:00Z").json()["results"] == []
    assert client.get("/api/v1/activities?type=nope").status_code == 400
    unreadable = client.get("/api/v1/activities?cursor=owner")
    assert unreadable.status_code == 400 and unreadable.json()["code"] == "invalid_cursor"


def test_activities_of_others_are_not_visible(client, api_client, trader, fund):
    fund(trader, cash="10")
    api_client.force_authenticate(UserFactory())
    assert api_client.get("/api/v1/activities").json()["results"] == []


def test_openapi_documents_the_idempotency_key_and_the_simulated_outcome(client):
    schema = client.get("/api/schema/?format=json").json()
    create = schema["paths"]["/api/v1/deposits"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" and p["required"] for p in create["parameters"])
    body = schema["components"]["schemas"]["DepositCreateRequest"]["properties"]
    assert "fail" in body["simulate"]["description"] and ".13" in body["simulate"]["description"]
