"""Market data: bars kept with trades, numbered streams, versioned snapshots read through Redis under a fill lock."""
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from matching import market
from matching.engine import Grid, OrderBook
from matching.models import Bar, Trade
from orders.services import OrderRequest, order_place
from tests.trading_fixtures import assert_books_balanced, match

pytestmark = pytest.mark.usefixtures("fresh_books")


def place(user, side, qty, price=None, *, type="limit", tif="gtc", stop=None):
    order, _ = order_place(user=user, request=OrderRequest(
        symbol="ACME", side=side, type=type, time_in_force=tif, qty=Decimal(qty),
        limit_price=Decimal(price) if price else None, stop_price=Decimal(stop) if stop else None))
    return order


@pytest.fixture
def traders(instrument, make_trader):
    return make_trader(shares={"ACME": "100"}), make_trader(cash="50000")


@pytest.mark.django_db
def test_trades_fold_into_one_minute_bars(traders):
    seller, buyer = traders
    place(seller, "sell", "5", "100.00")
    place(seller, "sell", "5", "101.00")
    match()
    place(buyer, "buy", "8", "101.00")  # 5 @ 100 then 3 @ 101
    match()
    place(seller, "sell", "2", "99.50")
    place(buyer, "buy", "2", "99.50")
    match()

    trades = list(Trade.objects.order_by("id"))
    if Bar.objects.count() == 1:  # the minute did not roll over during the test
        bar = Bar.objects.get(symbol="ACME")
        assert bar.start == trades[0].executed_at.replace(second=0, microsecond=0)
        assert (bar.open, bar.high, bar.low, bar.close) == (Decimal("100"), Decimal("101"), Decimal("99.5"),
                                                            Decimal("99.5"))
        assert bar.volume == 10 and bar.trade_count == 3
        assert bar.notional == Decimal("500") + Decimal("303") + Decimal("199")
    assert sum(b.volume for b in Bar.objects.all()) == sum(t.qty for t in trades)
    assert_books_balanced()


@pytest.mark.django_db
def test_each_stream_is_numbered_and_the_rest_snapshots_follow(traders, api_client):
    seller, buyer = traders
    place(seller, "sell", "5", "101.00")
    match()
    book = api_client.get("/api/v1/market/ACME/book").json()
    assert book["seq"] == 1 and book["bids"] == []
    assert book["asks"] == [{"price": "101.00", "qty": "5", "count": 1}]
    quote = api_client.get("/api/v1/market/acme/quote").json()
    assert (quote["seq"], quote["ask"], quote["ask_size"], quote["bid"], quote["last"]) == (1, "101.00", "5", None,
                                                                                            None)

    place(buyer, "buy", "3", "100.00")
    place(buyer, "buy", "2", "101.00")  # trades 2 @ 101
    match()
    book = api_client.get("/api/v1/market/ACME/book").json()
    assert book["seq"] == 2
    assert book["bids"] == [{"price": "100.00", "qty": "3", "count": 1}]
    assert book["asks"] == [{"price": "101.00", "qty": "3", "count": 1}]
    quote = api_client.get("/api/v1/market/ACME/quote").json()
    assert (quote["seq"], quote["bid"], quote["ask"], quote["last"]) == (2, "100.00", "101.00", "101.00")
    trades = api_client.get("/api/v1/market/ACME/trades").json()
    assert trades["seq"] == 1 and [(t["price"], t["qty"], t["aggressor_side"]) for t in trades["trades"]] == [
        ("101.00", "2", "buy")]
    bars = api_client.get("/api/v1/market/ACME/bars").json()
    assert bars["seq"] == 1 and bars["timeframe"] == "1Min"
    assert bars["bars"][0]["close"] == "101.00" and bars["bars"][0]["volume"] == "2"
    assert bars["bars"][0]["vwap"] == "101.0000"


@pytest.mark.django_db
def test_cold_book_from_postgres_equals_the_worker_book(traders, make_trader):
    seller, buyer = traders
    stopper = make_trader(cash="10000")
    place(seller, "sell", "5", "101.00")
    place(seller, "sell", "7", "101.00")
    place(seller, "sell", "4", "102.50")
    place(buyer, "buy", "6", "100.00")
    place(buyer, "buy", "10", "99.00")
    place(stopper, "buy", "1", "105.00", type="stop_limit", stop="104.00")  # parked: not in the book
    match()
    place(buyer, "buy", "2", "101.00")  # partly takes the first ask level
    match()
    warm = market.market_book("ACME")

    market.market_cache_invalidate("ACME")
    cold = market.market_book("ACME")

    assert cold["bids"] == warm["bids"] and cold["asks"] == warm["asks"]
    assert cold["seq"] == warm["seq"] and cold["epoch"] == warm["epoch"]
    assert cold["asks"][0] == {"price": "101.00", "qty": "10", "count": 2}
    assert [level["price"] for level in cold["bids"]] == ["100.00", "99.00"]


@pytest.mark.django_db
def test_warm_snapshots_need_no_database(traders, django_assert_num_queries):
    seller, _ = traders
    place(seller, "sell", "5", "101.00")
    match()
    market.market_quote("ACME"), market.market_book("ACME"), market.market_trades("ACME")  # noqa: B018
    with django_assert_num_queries(0):
        market.market_quote("ACME")
        market.market_book("ACME")
        market.market_trades("ACME")


@pytest.mark.django_db(transaction=True)
def test_a_cold_snapshot_is_filled_once_however_many_readers(instrument, make_trader):
    seller = make_trader(shares={"ACME": "10"})
    place(seller, "sell", "5", "101.00")
    market.market_quote("ACME")  # instrument cached: readers below race only for the book
    before = market._fills
    barrier = threading.Barrier(8)
    results, errors = [], []

    def read():
        try:
            barrier.wait()
            results.append(market.market_book("ACME"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == [] and len(results) == 8
    assert market._fills - before == 1
    assert all(r["bids"] == results[0]["bids"] and r["asks"] == results[0]["asks"] for r in results)


@pytest.mark.django_db
def test_without_redis_snapshots_come_from_postgres(traders, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    seller, _ = traders
    place(seller, "sell", "5", "101.00")
    match()
    market.market_quote("ACME")

    def down():
        raise RedisConnectionError("down")

    monkeypatch.setattr(market, "_redis", down)
    book = market.market_book("ACME")
    assert book["asks"] == [{"price": "101.00", "qty": "5", "count": 1}] and book["seq"] == 0


@pytest.mark.django_db
def test_a_late_publish_of_an_older_batch_keeps_only_its_trades(instrument):
    grid = Grid(Decimal("0.01"), Decimal("1"))
    newer, older = OrderBook("ACME"), OrderBook("ACME")
    newer.submit(1, 1, "sell", "limit", "gtc", 5, 10100)
    older.submit(2, 1, "sell", "limit", "gtc", 9, 10200)
    market.market_record_trades(symbol="ACME", trades=[], version=7)
    market.market_publish(symbol="ACME", book=newer, grid=grid, trades=[])
    market.market_record_trades(symbol="ACME", trades=[], version=6)
    assert market.market_publish(symbol="ACME", book=older, grid=grid, trades=[]) == []
    assert market.market_book("ACME")["asks"] == [{"price": "101.00", "qty": "5", "count": 1}]


@pytest.mark.django_db
def test_book_increments_name_changed_and_removed_levels(instrument):
    grid = Grid(Decimal("0.01"), Decimal("1"))
    book = OrderBook("ACME")
    book.submit(1, 1, "sell", "limit", "gtc", 5, 10100)
    book.submit(2, 1, "buy", "limit", "gtc", 4, 9900)
    first = market.market_publish(symbol="ACME", book=book, grid=grid, trades=[])
    assert [m["type"] for m in first] == ["quote", "book"] and first[1]["snapshot"] is True

    book.cancel(2)
    book.submit(3, 1, "sell", "limit", "gtc", 2, 10100)
    second = market.market_publish(symbol="ACME", book=book, grid=grid, trades=[])
    increment = next(m for m in second if m["type"] == "book")
    assert increment["snapshot"] is False and increment["seq"] == 2
    assert increment["bids"] == [{"price": "99.00", "qty": "0", "count": 0}]
    assert increment["asks"] == [{"price": "101.00", "qty": "7", "count": 2}]
    assert market.market_publish(symbol="ACME", book=book, grid=grid, trades=[]) == []  # nothing changed


@pytest.mark.django_db
def test_rest_errors_use_the_error_shape(instrument, api_client):
    response = api_client.get("/api/v1/market/NOPE/quote")
    assert response.status_code == 404 and response.json()["code"] == "unknown_symbol"
    response = api_client.get("/api/v1/market/ACME/trades?limit=0")
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    response = api_client.get("/api/v1/market/ACME/bars?start=yesterday")
    assert response.status_code == 400 and response.json()["details"] == {"start": "yesterday"}


@pytest.mark.django_db
def test_trades_after_an_id_and_bars_in_a_range(traders, api_client):
    seller, buyer = traders
    for price in ("100.00", "100.50", "101.00"):
        place(seller, "sell", "1", price)
        place(buyer, "buy", "1", price)
        match()
    ids = list(Trade.objects.order_by("id").values_list("id", flat=True))
    after = api_client.get(f"/api/v1/market/ACME/trades?after={ids[0]}").json()["trades"]
    assert [t["id"] for t in after] == ids[1:]
    latest = api_client.get("/api/v1/market/ACME/trades?limit=2").json()["trades"]
    assert [t["id"] for t in latest] == ids[:0:-1]
    now = timezone.now()
    start = (now - timedelta(minutes=5)).isoformat()
    bars = api_client.get("/api/v1/market/ACME/bars", {"start": start}).json()["bars"]
    assert sum(Decimal(b["volume"]) for b in bars) == 3
    assert api_client.get("/api/v1/market/ACME/bars", {"end": start}).json()["bars"] == []
