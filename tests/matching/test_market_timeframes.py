"""Candles of every timeframe: aggregated from the 1-minute bars on REST, pushed as the current candle live."""
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from brokerx.asgi import application
from matching import market
from matching.engine import Grid, OrderBook
from matching.models import Trade
from orders.services import OrderRequest, order_place
from outbox.services import outbox_drain

SECONDS = {"1Min": 60, "5Min": 300, "15Min": 900, "1Hour": 3600, "1Day": 86400}
GRID = Grid(Decimal("0.01"), Decimal("1"))

# Trades around minute, quarter-hour, hour and day boundaries (UTC), deliberately not in price order.
T0 = datetime(2026, 3, 2, 9, 58, 10, tzinfo=UTC)
TRADES = [
    (datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC), "98.00", "4"),
    (T0, "100.00", "5"),
    (T0 + timedelta(seconds=40), "101.50", "2"),      # 09:58:50, same minute
    (datetime(2026, 3, 2, 9, 59, 59, tzinfo=UTC), "99.00", "1"),
    (datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC), "99.50", "3"),
    (datetime(2026, 3, 2, 10, 4, 59, tzinfo=UTC), "102.00", "7"),
    (datetime(2026, 3, 2, 10, 5, 0, tzinfo=UTC), "97.25", "1"),
    (datetime(2026, 3, 2, 10, 14, 30, tzinfo=UTC), "100.75", "6"),
    (datetime(2026, 3, 2, 10, 15, 0, tzinfo=UTC), "100.25", "2"),
    (datetime(2026, 3, 2, 10, 59, 59, tzinfo=UTC), "103.00", "1"),
    (datetime(2026, 3, 2, 11, 0, 1, tzinfo=UTC), "102.50", "9"),
    (datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC), "104.00", "2"),
]


def trade_rows(rows, first_id=1):
    return [Trade(id=first_id + i, symbol="ACME", price=Decimal(p), qty=Decimal(q), executed_at=at)
            for i, (at, p, q) in enumerate(rows)]


def record(trades, version=None):
    """What the matching transaction does with a batch's trades (one statement), without the rest of the batch."""
    bars = market.market_record_trades(symbol="ACME", trades=trades, version=version)
    return bars


def reference(trades, timeframe):
    """Brute force from the trades themselves: group by the period's epoch multiple, in execution order."""
    step = SECONDS[timeframe]
    groups = defaultdict(list)
    for t in sorted(trades, key=lambda t: (t.executed_at, t.pk)):
        groups[int(t.executed_at.timestamp()) // step * step].append(t)
    candles = []
    for start, ts in sorted(groups.items()):
        volume = sum(t.qty for t in ts)
        notional = sum(t.price * t.qty for t in ts)
        candles.append({
            "start": datetime.fromtimestamp(start, UTC).isoformat(),
            "open": f"{ts[0].price:.2f}", "high": f"{max(t.price for t in ts):.2f}",
            "low": f"{min(t.price for t in ts):.2f}", "close": f"{ts[-1].price:.2f}", "volume": str(int(volume)),
            "vwap": f"{notional / volume:.4f}", "trade_count": len(ts)})
    return candles


@pytest.mark.django_db
@pytest.mark.parametrize("timeframe", list(SECONDS))
def test_each_timeframe_aggregates_the_trades(instrument, api_client, timeframe):
    trades = trade_rows(TRADES)
    record(trades[:5])  # two batches, as two matching transactions
    record(trades[5:])
    expected = reference(trades, timeframe)

    answer = api_client.get("/api/v1/market/ACME/bars", {"timeframe": timeframe, "limit": 1000})
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["timeframe"] == timeframe and body["symbol"] == "ACME"
    assert body["bars"] == expected
    # Sanity of the fixture: each timeframe crosses at least one of its boundaries.
    assert len(expected) >= 3


@pytest.mark.django_db
def test_known_candles_across_boundaries(instrument, api_client):
    record(trade_rows(TRADES))
    five = api_client.get("/api/v1/market/ACME/bars?timeframe=5Min&limit=1000").json()["bars"]
    by_start = {b["start"]: b for b in five}
    # 09:55-10:00: 100 (open, 09:58:10), 101.50 high, 99 low and close (09:59:59); 10:00:00 starts the next one.
    assert by_start["2026-03-02T09:55:00+00:00"] == {
        "start": "2026-03-02T09:55:00+00:00", "open": "100.00", "high": "101.50", "low": "99.00", "close": "99.00",
        "volume": "8", "vwap": "100.2500", "trade_count": 3}
    assert (by_start["2026-03-02T10:00:00+00:00"]["open"], by_start["2026-03-02T10:00:00+00:00"]["close"],
            by_start["2026-03-02T10:00:00+00:00"]["volume"]) == ("99.50", "102.00", "10")
    day = api_client.get("/api/v1/market/ACME/bars?timeframe=1Day").json()["bars"]
    assert [(b["start"], b["open"], b["high"], b["low"], b["close"], b["volume"], b["trade_count"]) for b in day] == [
        ("2026-03-01T00:00:00+00:00", "98.00", "98.00", "98.00", "98.00", "4", 1),
        ("2026-03-02T00:00:00+00:00", "100.00", "103.00", "97.25", "102.50", "37", 10),
        ("2026-03-03T00:00:00+00:00", "104.00", "104.00", "104.00", "104.00", "2", 1)]


@pytest.mark.django_db
def test_limit_start_and_end_count_periods_of_the_timeframe(instrument, api_client):
    record(trade_rows(TRADES))
    latest = api_client.get("/api/v1/market/ACME/bars?timeframe=1Hour&limit=2").json()["bars"]
    assert [b["start"] for b in latest] == ["2026-03-02T11:00:00+00:00", "2026-03-03T00:00:00+00:00"]
    # From 10:03: the first 5-minute period starting at or after it is 10:05 (10:00-10:05 began before).
    first = api_client.get("/api/v1/market/ACME/bars", {"timeframe": "5Min", "limit": 2,
                                                        "start": "2026-03-02T10:03:00+00:00"}).json()["bars"]
    assert [(b["start"], b["open"], b["close"]) for b in first] == [
        ("2026-03-02T10:05:00+00:00", "97.25", "97.25"), ("2026-03-02T10:10:00+00:00", "100.75", "100.75")]
    window = api_client.get("/api/v1/market/ACME/bars", {
        "timeframe": "15Min", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:30:00Z"}).json()["bars"]
    assert [(b["start"], b["volume"]) for b in window] == [("2026-03-02T10:00:00+00:00", "17"),
                                                           ("2026-03-02T10:15:00+00:00", "2")]


@pytest.mark.django_db
def test_alpaca_short_forms_and_invalid_timeframes(instrument, api_client):
    record(trade_rows(TRADES))
    assert api_client.get("/api/v1/market/ACME/bars?timeframe=1H").json()["timeframe"] == "1Hour"
    assert api_client.get("/api/v1/market/ACME/bars?timeframe=5T").json()["bars"] == api_client.get(
        "/api/v1/market/ACME/bars?timeframe=5Min").json()["bars"]
    assert api_client.get("/api/v1/market/ACME/bars").json()["timeframe"] == "1Min"
    for bad in ("1m", "2Min", "1Week", "day", "1min"):
        answer = api_client.get("/api/v1/market/ACME/bars", {"timeframe": bad})
        assert answer.status_code == 400
        body = answer.json()
        assert body["code"] == "invalid_timeframe" and body["details"] == {"timeframe": bad}
        assert "1Min, 5Min, 15Min, 1Hour, 1Day" in body["message"]


@pytest.mark.django_db
def test_a_minute_update_pushes_the_current_candle_of_every_timeframe(instrument):
    book = OrderBook("ACME")
    # Earlier minutes of the same periods are already committed: 10:00 and 10:01.
    record(trade_rows([(datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC), "100.00", "5"),
                       (datetime(2026, 3, 2, 10, 1, 5, tzinfo=UTC), "103.00", "1")]), version=1)
    market.market_publish(symbol="ACME", book=book, grid=GRID, trades=[])
    later = trade_rows([(datetime(2026, 3, 2, 10, 2, 30, tzinfo=UTC), "99.00", "2"),
                        (datetime(2026, 3, 2, 10, 2, 40, tzinfo=UTC), "101.00", "3")], first_id=10)
    record(later, version=2)
    messages = market.market_publish(symbol="ACME", book=book, grid=GRID, trades=later)

    bars = {m["timeframe"]: m for m in messages if m["type"] == "bar"}
    assert set(bars) == set(SECONDS)
    assert len({m["seq"] for m in bars.values()}) == 1  # one number for the update, whatever the timeframe
    minute = bars["1Min"]
    assert (minute["start"], minute["open"], minute["close"], minute["volume"]) == (
        "2026-03-02T10:02:00+00:00", "99.00", "101.00", "5")
    five = bars["5Min"]
    assert (five["start"], five["open"], five["high"], five["low"], five["close"], five["volume"],
            five["trade_count"]) == ("2026-03-02T10:00:00+00:00", "100.00", "103.00", "99.00", "101.00", "11", 4)
    assert five["vwap"] == f"{(Decimal('500') + 103 + 198 + 303) / 11:.4f}"
    assert bars["1Day"]["start"] == "2026-03-02T00:00:00+00:00" and bars["1Day"]["volume"] == "11"
    # The push equals what REST answers for the same period.
    for timeframe, pushed in bars.items():
        rest = market.market_bars("ACME", timeframe=timeframe, limit=1)["bars"][-1]
        assert {k: pushed[k] for k in rest} == rest, timeframe


@pytest.mark.django_db
def test_the_period_before_the_minute_is_read_once_per_minute(instrument, django_assert_num_queries):
    book = OrderBook("ACME")
    record(trade_rows([(datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC), "100.00", "5")]), version=1)
    market.market_publish(symbol="ACME", book=book, grid=GRID, trades=[])
    record(trade_rows([(datetime(2026, 3, 2, 10, 1, 5, tzinfo=UTC), "101.00", "1")], first_id=5), version=2)
    with django_assert_num_queries(4):  # 10:01 is new: its 5Min, 15Min, 1Hour and 1Day periods began earlier
        market.market_publish(symbol="ACME", book=book, grid=GRID, trades=[])
    record(trade_rows([(datetime(2026, 3, 2, 10, 1, 9, tzinfo=UTC), "102.00", "1")], first_id=6), version=3)
    with django_assert_num_queries(0):  # the same minute again: from the stream state
        messages = market.market_publish(symbol="ACME", book=book, grid=GRID, trades=[])
    five = next(m for m in messages if m.get("timeframe") == "5Min")
    assert (five["open"], five["close"], five["volume"], five["trade_count"]) == ("100.00", "102.00", "7", 3)


# --- the WebSocket -----------------------------------------------------------------------------------------


async def _connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/market/")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["timeframes"] == list(SECONDS)
    return communicator


async def _subscribe_bars(communicator, timeframe):
    await communicator.send_json_to({"action": "subscribe", "symbols": ["ACME"], "streams": ["bars"],
                                     "timeframe": timeframe})
    subscribed = await communicator.receive_json_from(timeout=5)
    assert subscribed["type"] == "subscribed" and subscribed["timeframe"] == market.timeframe_parse(timeframe)
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "bars" and snapshot["timeframe"] == market.timeframe_parse(timeframe)
    return snapshot


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_books_async")
async def test_a_subscriber_to_5min_gets_the_5min_candle_live(instrument):
    book = OrderBook("ACME")
    earlier = trade_rows([(datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC), "100.00", "5")])
    await sync_to_async(record)(earlier, version=1)
    await sync_to_async(market.market_publish)(symbol="ACME", book=book, grid=GRID, trades=earlier)
    communicator = await _connect()
    snapshot = await _subscribe_bars(communicator, "5Min")
    assert [(b["start"], b["volume"]) for b in snapshot["bars"]] == [("2026-03-02T10:00:00+00:00", "5")]

    later = trade_rows([(datetime(2026, 3, 2, 10, 3, 0, tzinfo=UTC), "104.00", "2")], first_id=3)
    await sync_to_async(record)(later, version=2)
    await sync_to_async(market.market_publish)(symbol="ACME", book=book, grid=GRID, trades=later)
    update = await communicator.receive_json_from(timeout=5)
    assert update["type"] == "bar" and update["timeframe"] == "5Min" and update["seq"] == snapshot["seq"] + 1
    assert (update["start"], update["open"], update["high"], update["close"], update["volume"]) == (
        "2026-03-02T10:00:00+00:00", "100.00", "104.00", "104.00", "7")
    assert await communicator.receive_nothing(timeout=0.3)  # the 1Min and other candles are not sent to it

    # Switching the same symbol to 1Day: a new snapshot, then daily candles.
    snapshot = await _subscribe_bars(communicator, "1D")
    assert [(b["start"], b["volume"]) for b in snapshot["bars"]] == [("2026-03-02T00:00:00+00:00", "7")]
    await communicator.send_json_to({"action": "subscribe", "symbols": ["ACME"], "streams": ["bars"],
                                     "timeframe": "7Min"})
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid_timeframe"
    assert error["details"] == {"timeframe": "7Min"}
    await communicator.disconnect()


def _place_and_match(orders) -> None:
    for user, side, qty, price in orders:
        order_place(user=user, request=OrderRequest(symbol="ACME", side=side, type="limit", time_in_force="gtc",
                                                    qty=Decimal(qty), limit_price=Decimal(price)))
    outbox_drain(queue="critical", partition_key="ACME")  # commits: the publish runs after it, as in a worker


@pytest.fixture
def traders(instrument, make_trader):
    return make_trader(shares={"ACME": "50"}), make_trader(cash="20000")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_books_async")
async def test_real_trades_push_the_chosen_timeframe_as_rest_answers_it(traders):
    seller, buyer = traders
    communicator = await _connect()
    await _subscribe_bars(communicator, "15Min")
    await sync_to_async(_place_and_match, thread_sensitive=True)(
        [(seller, "sell", "3", "100.00"), (buyer, "buy", "3", "100.00")])
    update = await communicator.receive_json_from(timeout=5)
    assert update["type"] == "bar" and update["timeframe"] == "15Min"
    rest = await sync_to_async(market.market_bars)("ACME", timeframe="15Min", limit=1)
    assert rest["seq"] == update["seq"]
    assert {k: update[k] for k in rest["bars"][-1]} == rest["bars"][-1]
    assert (update["close"], update["volume"], update["trade_count"]) == ("100.00", "3", 1)
    await communicator.disconnect()
