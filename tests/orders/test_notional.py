"""Notional orders: an amount of money instead of a quantity, for market day orders on fractionable instruments.

The quantity is the notional over the order's protection price (the price-band edge on its side), rounded down to
the lot size; the ACK shows both. Refusals are 4xx and write nothing.
"""
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from orders.models import Instrument, Order, OrderEvent
from orders.selectors import instrument_cache_invalidate
from orders.services import OrderRequest, buy_reservation, order_place
from outbox.models import OutboxEvent
from portfolios.models import JournalEntry
from tests.trading_fixtures import assert_books_balanced, balance, match

pytestmark = pytest.mark.django_db

# FRAC: reference 100.00, band 10% -> a market buy is protected (and sized) at 110.00, a market sell at 90.00.
BUY = {"symbol": "FRAC", "side": "buy", "type": "market", "time_in_force": "day", "notional": "100.00"}


@pytest.fixture
def fractionable(db):
    inst = Instrument.objects.create(symbol="FRAC", name="Fractional Corp", reference_price=Decimal("100.00"),
                                     tick_size=Decimal("0.01"), lot_size=Decimal("0.001"),
                                     price_band_pct=Decimal("0.10"), max_order_notional=Decimal("500000"))
    instrument_cache_invalidate("FRAC")
    yield inst
    instrument_cache_invalidate("FRAC")


def _client(user) -> APIClient:
    key = api_key_create(user=user, name="bot", scope="trade")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {key.api_key.key_id}:{key.secret}")
    return client


def _written() -> tuple[int, int, int, int]:
    return (Order.objects.count(), OrderEvent.objects.count(), OutboxEvent.objects.count(),
            JournalEntry.objects.count())


def test_the_ack_shows_the_notional_and_the_quantity_it_became(fractionable, make_trader):
    trader = make_trader(cash="1000")

    response = _client(trader).post("/api/v1/orders", BUY, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    # 100.00 / 110.00 = 0.90909... -> 0.909 (lot 0.001)
    assert (body["notional"], body["qty"], body["leaves_qty"], body["type"]) == ("100.00", "0.9090", "0.9090",
                                                                                 "market")
    assert body["protection_price"] == "110.0000"
    order = Order.objects.get(pk=body["id"])
    assert order.notional == Decimal("100.00") and order.qty == Decimal("0.909")
    # The reservation covers the fill at the protection bound, and never more than the notional plus its fee.
    assert order.reserved_amount == buy_reservation(Decimal("0.909"), Decimal("110.00")) == balance(trader,
                                                                                                    "cash_reserved")
    assert order.reserved_amount <= Decimal("100.00") + Decimal("0.05")
    assert_books_balanced()


@pytest.mark.parametrize(("notional", "qty"), [
    ("50.00", "0.454"),  # 454.54... lots
    ("0.11", "0.001"),  # exactly one lot at 110.00
    ("0.21", "0.001"),  # 1.9 lots
    ("1234.56", "11.223"),
])
def test_the_quantity_is_rounded_down_to_the_lot(fractionable, make_trader, notional, qty):
    trader = make_trader(cash="2000")

    order, created = order_place(user=trader, request=OrderRequest(
        symbol="FRAC", side="buy", type="market", time_in_force="day", qty=None, notional=Decimal(notional)))

    assert created and order.qty == Decimal(qty) and order.notional == Decimal(notional)
    assert order.qty * Decimal("110.00") <= Decimal(notional) < (order.qty + Decimal("0.001")) * Decimal("110.00")
    assert_books_balanced()


def test_a_lot_size_of_a_ten_thousandth_is_kept_to_four_places(fractionable, make_trader):
    Instrument.objects.filter(pk=fractionable.pk).update(lot_size=Decimal("0.0001"))
    instrument_cache_invalidate("FRAC")

    order, _ = order_place(user=make_trader(cash="1000"), request=OrderRequest(
        symbol="FRAC", side="buy", type="market", time_in_force="day", qty=None, notional=Decimal("10")))

    assert order.qty == Decimal("0.0909")


# (body changes, status, code or the invalid field)
REFUSED = {
    "too small for one lot": ({"notional": "0.10"}, 422, "notional_too_small"),
    "not fractionable": ({"symbol": "ACME"}, 422, "not_fractionable"),
    "limit": ({"type": "limit", "limit_price": "100.00"}, 422, "notional_not_supported"),
    "stop": ({"type": "stop", "stop_price": "101.00"}, 422, "notional_not_supported"),
    "ioc": ({"time_in_force": "ioc"}, 422, "notional_not_supported"),
    "gtc": ({"time_in_force": "gtc"}, 422, "invalid_time_in_force"),
    "qty and notional": ({"qty": "1"}, 400, "notional"),
    "neither qty nor notional": ({"notional": None}, 400, "qty"),
    "a fraction of a cent": ({"notional": "100.005"}, 400, "notional"),
    "zero": ({"notional": "0"}, 400, "notional"),
    "not a number": ({"notional": "lots"}, 400, "notional"),
    "above buying power": ({"notional": "5000"}, 422, "insufficient_buying_power"),
    "above the maximum notional": ({"notional": "900000"}, 422, "max_notional_exceeded"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_refusals_are_4xx_in_the_error_shape_and_write_nothing(fractionable, instrument, make_trader, case):
    changes, status, reason = REFUSED[case]
    client = _client(make_trader(cash="1000"))
    body = {k: v for k, v in {**BUY, **changes}.items() if v is not None}
    before = _written()

    response = client.post("/api/v1/orders", body, format="json")

    assert response.status_code == status, response.json()
    error = response.json()
    assert set(error) == {"code", "message", "details"}
    if status == 400:
        assert error["code"] == "validation_error" and reason in error["details"], error
    else:
        assert error["code"] == reason, error
    assert _written() == before
    assert_books_balanced()


def test_too_small_says_the_smallest_notional(fractionable, make_trader):
    response = _client(make_trader(cash="1000")).post("/api/v1/orders", {**BUY, "notional": "0.10"}, format="json")

    assert response.json()["details"]["min_notional"] == "0.11"


@pytest.mark.usefixtures("fresh_books")
def test_a_notional_buy_fills_and_the_books_balance(fractionable, make_trader):
    seller = make_trader(shares={"FRAC": "5"})
    buyer = make_trader(cash="1000")
    order_place(user=seller, request=OrderRequest(symbol="FRAC", side="sell", type="limit", time_in_force="gtc",
                                                  qty=Decimal("2"), limit_price=Decimal("100.00")))
    match("FRAC")
    response = _client(buyer).post("/api/v1/orders", BUY, format="json")
    match("FRAC")

    order = Order.objects.get(pk=response.json()["id"])
    assert (order.status, order.cum_qty, order.avg_px, order.reserved_amount) == ("filled", Decimal("0.909"),
                                                                                   Decimal("100.00"), 0)
    # 0.909 x 100.00 = 90.90, plus the taker fee; the rest of the reservation went back.
    assert balance(buyer, "cash_available") == Decimal("1000") - Decimal("90.90") - order.fees_paid
    assert balance(buyer, "securities_available", "FRAC") == Decimal("0.909")
    assert balance(seller, "securities_available", "FRAC") + balance(seller, "securities_reserved", "FRAC") == (
        Decimal("5") - Decimal("0.909"))
    assert_books_balanced()


@pytest.mark.usefixtures("fresh_books")
def test_a_notional_sell_is_sized_at_its_protection_price_and_checks_the_position(fractionable, make_trader):
    seller = make_trader(shares={"FRAC": "1"})
    buyer = make_trader(cash="1000")
    order_place(user=buyer, request=OrderRequest(symbol="FRAC", side="buy", type="limit", time_in_force="gtc",
                                                 qty=Decimal("3"), limit_price=Decimal("100.00")))
    match("FRAC")
    client = _client(seller)

    too_much = client.post("/api/v1/orders", {**BUY, "side": "sell", "notional": "95.00"}, format="json")
    sold = client.post("/api/v1/orders", {**BUY, "side": "sell", "notional": "50.00"}, format="json")
    match("FRAC")

    # 95.00 / 90.00 = 1.055 shares: more than held.
    assert too_much.status_code == 422 and too_much.json()["code"] == "insufficient_shares"
    assert sold.status_code == 201 and (sold.json()["qty"], sold.json()["notional"]) == ("0.5550", "50.00")
    order = Order.objects.get(pk=sold.json()["id"])
    assert order.status == "filled" and order.cum_qty == Decimal("0.555")
    assert balance(seller, "securities_available", "FRAC") == Decimal("0.445")
    assert_books_balanced()


def test_an_idempotency_key_replays_a_notional_order(fractionable, make_trader):
    client = _client(make_trader(cash="1000"))

    first = client.post("/api/v1/orders", BUY, format="json", HTTP_IDEMPOTENCY_KEY="n-1")
    again = client.post("/api/v1/orders", BUY, format="json", HTTP_IDEMPOTENCY_KEY="n-1")
    other = client.post("/api/v1/orders", {**BUY, "notional": "90.00"}, format="json", HTTP_IDEMPOTENCY_KEY="n-1")

    assert first.status_code == 201 and again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and first.json()["notional"] == "100.00"
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1
    assert_books_balanced()


def test_a_repeated_client_order_id_answers_the_first_notional_order(fractionable, make_trader):
    client = _client(make_trader(cash="1000"))

    first = client.post("/api/v1/orders", {**BUY, "client_order_id": "n-2"}, format="json")
    again = client.post("/api/v1/orders", {**BUY, "client_order_id": "n-2", "notional": "20.00"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["notional"] == "100.00"
    assert Order.objects.count() == 1


def test_a_quantity_order_has_no_notional(instrument, make_trader):
    response = _client(make_trader(cash="1000")).post(
        "/api/v1/orders", {"symbol": "ACME", "side": "buy", "type": "market", "qty": "1"}, format="json")

    assert response.status_code == 201 and response.json()["notional"] is None


def test_the_alpaca_door_places_a_notional_order_and_shows_both(fractionable, instrument, make_trader):
    trader = make_trader(cash="1000")
    key = api_key_create(user=trader, name="alpaca", scope="trade")
    client = APIClient()
    client.credentials(HTTP_APCA_API_KEY_ID=key.api_key.key_id, HTTP_APCA_API_SECRET_KEY=key.secret)

    placed = client.post("/v2/orders", {**BUY, "notional": 100, "qty": None}, format="json")
    whole = client.post("/v2/orders", {**BUY, "symbol": "ACME"}, format="json")
    limit = client.post("/v2/orders", {**BUY, "type": "limit", "limit_price": "100"}, format="json")

    assert placed.status_code == 200, placed.json()
    assert (placed.json()["notional"], placed.json()["qty"]) == ("100", "0.909")
    assert whole.status_code == 422 and whole.json()["code"] == 42210000 and "notional" in whole.json()["message"]
    assert limit.status_code == 422 and limit.json()["code"] == 42210000
    assert Order.objects.count() == 1


def test_instruments_say_whether_they_are_fractionable(fractionable, instrument):
    symbols = {row["symbol"]: row for row in APIClient().get("/api/v1/market/symbols").json()}

    assert symbols["FRAC"]["fractionable"] is True and symbols["ACME"]["fractionable"] is False


def test_the_demo_has_fractionable_instruments_and_an_older_demo_gets_them(django_capture_on_commit_callbacks):
    import io

    from orders import demo

    Instrument.objects.create(symbol="AAPL", name="Apple Inc.", reference_price=Decimal("189.50"))  # lot 1
    with django_capture_on_commit_callbacks(execute=True):
        demo.seed_demo(io.StringIO())

    lots = dict(Instrument.objects.values_list("symbol", "lot_size"))
    assert lots["AAPL"] == Decimal("0.001") and lots["NVDA"] == Decimal("0.0001") and lots["GOOGL"] == 1
    assert {i.symbol for i in Instrument.objects.all() if i.fractionable} == {"AAPL", "MSFT", "NVDA"}


@pytest.mark.usefixtures("fresh_books")
def test_matching_rebuilds_a_book_whose_lot_size_changed(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    buyer = make_trader(cash="1000")
    order_place(user=seller, request=OrderRequest(symbol="ACME", side="sell", type="limit", time_in_force="gtc",
                                                  qty=Decimal("3"), limit_price=Decimal("100.00")))
    match()  # the book is cached on the whole-share grid
    Instrument.objects.filter(pk=instrument.pk).update(lot_size=Decimal("0.01"))
    instrument_cache_invalidate("ACME")

    bought, _ = order_place(user=buyer, request=OrderRequest(symbol="ACME", side="buy", type="market",
                                                             time_in_force="day", qty=None, notional=Decimal("55")))
    match()

    bought.refresh_from_db()
    assert (bought.qty, bought.status, bought.cum_qty) == (Decimal("0.5"), "filled", Decimal("0.5"))
    assert balance(seller, "securities_reserved", "ACME") == Decimal("2.5")
    assert_books_balanced()
