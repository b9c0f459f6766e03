"""Public market data of a symbol: candles kept with its trades, snapshots cached in Redis, live pushes after commit.

Four streams per symbol, each numbered on its own (`seq`): `quote` (L1), `book` (L2 depth: a snapshot, then
increments), `trades` and `bars` (candles). Postgres is the record; Redis holds the last published
state of each symbol (for the increments and the sequence numbers) and versioned REST snapshots; the push is
a hint delivered at most once, so a client that sees a gap re-syncs over REST (ADR 005).

Only 1-minute bars are written, in the matching transaction. The other timeframes (5Min, 15Min, 1Hour, 1Day) are
aggregated from them when read, and pushed after the commit as the updated current candle: the minutes of its
period before the updated one (read once per minute, kept in Redis with the stream state) plus the updated minute.
"""
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_redis import get_redis_connection
from redis.exceptions import LockError, RedisError

from brokerx.push import group_publish
from orders.models import OPEN_STATUSES, Instrument, Order
from orders.selectors import instrument_get

from .models import Bar, Trade

logger = logging.getLogger(__name__)

STREAMS = ("quote", "book", "trades", "bars")
DEPTH_LEVELS = settings.MARKET_DEPTH_LEVELS
SNAPSHOT_TTL = settings.MARKET_SNAPSHOT_TTL_SECONDS
# A cold snapshot is filled by one request under this lock; the others wait for it at most FILL_WAIT.
FILL_LOCK_TIMEOUT = 5.0
FILL_WAIT = 2.0
PUBLISH_LOCK_TIMEOUT = 2.0
ZERO = Decimal("0")


class UnknownSymbol(Exception):
    pass


# Candle timeframes in Alpaca's market data spelling, each the length of its period. Days run UTC midnight to
# midnight, hours and minutes align to the UTC clock.
TIMEFRAMES = {"1Min": timedelta(minutes=1), "5Min": timedelta(minutes=5), "15Min": timedelta(minutes=15),
              "1Hour": timedelta(hours=1), "1Day": timedelta(days=1)}
# Alpaca's own short forms of the same timeframes; answers always name the long form.
TIMEFRAME_ALIASES = {"1T": "1Min", "5T": "5Min", "15T": "15Min", "1H": "1Hour", "1D": "1Day"}
MINUTE = "1Min"
HIGHER_TIMEFRAMES = tuple(name for name in TIMEFRAMES if name != MINUTE)
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # a UTC midnight: every period above starts on a multiple from it


class InvalidTimeframe(ValueError):
    def __init__(self, raw):
        super().__init__(f"timeframe must be one of {', '.join(TIMEFRAMES)} (or {', '.join(TIMEFRAME_ALIASES)}).")
        self.raw = raw


def timeframe_parse(raw) -> str:
    """The canonical name of a timeframe parameter (default 1Min); InvalidTimeframe for anything else."""
    if raw is None or raw == "":
        return MINUTE
    name = TIMEFRAME_ALIASES.get(raw, raw) if isinstance(raw, str) else None
    if name not in TIMEFRAMES:
        raise InvalidTimeframe(raw)
    return name


def period_start(moment: datetime, timeframe: str) -> datetime:
    """The start of the timeframe's period that holds `moment` (Postgres' date_bin with the same origin)."""
    step = TIMEFRAMES[timeframe]
    return moment - (moment - _ORIGIN) % step


def _period_ceil(moment: datetime, timeframe: str) -> datetime:
    """The first period start at or after `moment`."""
    start = period_start(moment, timeframe)
    return start if start == moment else start + TIMEFRAMES[timeframe]


def market_group(symbol: str) -> str:
    return f"market.{symbol}"


# --- formatting -------------------------------------------------------------------------------------

def _quantum(step) -> Decimal:
    """The display quantum of a tick or lot size: 0.0100 -> 0.01, 1.0000 -> 1, 10 -> 1."""
    exponent = Decimal(step).normalize().as_tuple().exponent
    return Decimal(1).scaleb(min(int(exponent), 0))


def _fmt(value, quantum: Decimal) -> str | None:
    return None if value is None else str(Decimal(value).quantize(quantum))


def _level(price, qty, count: int, px: Decimal, qx: Decimal) -> dict:
    return {"price": _fmt(price, px), "qty": _fmt(qty, qx), "count": count}


def _quote(book: dict, last, px: Decimal) -> dict:
    bid = book["bids"][0] if book["bids"] else None
    ask = book["asks"][0] if book["asks"] else None
    return {"bid": bid and bid["price"], "bid_size": bid and bid["qty"],
            "ask": ask and ask["price"], "ask_size": ask and ask["qty"], "last": _fmt(last, px)}


def _trade_json(trade: Trade, px: Decimal, qx: Decimal) -> dict:
    return {"id": trade.pk, "price": _fmt(trade.price, px), "qty": _fmt(trade.qty, qx),
            "aggressor_side": trade.aggressor_side, "executed_at": trade.executed_at.isoformat()}


def _bar_json(bar: Bar, px: Decimal, qx: Decimal) -> dict:
    vwap = (bar.notional / bar.volume) if bar.volume else None
    return {"start": bar.start.isoformat(), "open": _fmt(bar.open, px), "high": _fmt(bar.high, px),
            "low": _fmt(bar.low, px), "close": _fmt(bar.close, px), "volume": _fmt(bar.volume, qx),
            "vwap": _fmt(vwap, Decimal("0.0001")), "trade_count": bar.trade_count}


def _grid_of(symbol: str) -> tuple[Decimal, Decimal]:
    instrument = instrument_get(symbol)
    if instrument is None:
        raise UnknownSymbol(symbol)
    return _quantum(instrument["tick_size"]), _quantum(instrument["lot_size"])


# --- Redis keys -------------------------------------------------------------------------------------
# Made with the cache's key prefix so each environment (and each test suite) has its own.

def _key(symbol: str, name: str) -> str:
    return cache.make_key(f"md:{symbol}:{name}")


def _redis():
    return get_redis_connection("default")


def _live(r, symbol: str) -> dict:
    raw = r.get(_key(symbol, "live"))
    return json.loads(raw) if raw else {}


def _seq_of(live: dict, stream: str) -> int:
    return int(live.get("seq", {}).get(stream, 0))


def _position(live: dict, stream: str) -> dict:
    """Where a stream stands: its seq, and the epoch that numbering belongs to (a new one if Redis lost it)."""
    return {"epoch": live.get("epoch"), "seq": _seq_of(live, stream)}


# --- candles, in the matching transaction ------------------------------------------------------------

_pending = threading.local()

_BAR_UPSERT = """
INSERT INTO matching_bar AS b (symbol, start, open, high, low, close, volume, notional, trade_count)
VALUES {rows}
ON CONFLICT (symbol, start) DO UPDATE SET
    high = GREATEST(b.high, EXCLUDED.high), low = LEAST(b.low, EXCLUDED.low), close = EXCLUDED.close,
    volume = b.volume + EXCLUDED.volume, notional = b.notional + EXCLUDED.notional,
    trade_count = b.trade_count + EXCLUDED.trade_count
RETURNING id, symbol, start, open, high, low, close, volume, notional, trade_count
"""


# --- candles of any timeframe, aggregated from the 1-minute bars ------------------------------------------

_BAR_COLUMNS = """(array_agg(open ORDER BY start))[1], max(high), min(low), (array_agg(close ORDER BY start DESC))[1],
    sum(volume), sum(notional), sum(trade_count)"""

# The latest `limit` periods that have bars: walk back one period at a time (one index probe each), then aggregate
# the minutes from the oldest of them. Without the walk, "the latest 100 days" would aggregate a symbol's history.
_LATEST_SQL = """
WITH RECURSIVE periods(period, n) AS (
    SELECT date_bin(%(step)s, max(start), %(origin)s), 1 FROM matching_bar WHERE {range}
  UNION ALL
    SELECT date_bin(%(step)s, (SELECT max(start) FROM matching_bar WHERE {range} AND start < p.period), %(origin)s),
           p.n + 1
    FROM periods p WHERE p.period IS NOT NULL AND p.n < %(limit)s
)
SELECT date_bin(%(step)s, start, %(origin)s) AS period, {columns}
FROM matching_bar WHERE {range} AND start >= (SELECT min(period) FROM periods)
GROUP BY 1 ORDER BY 1
"""

# The first `limit` periods with bars from the lower bound on: the same walk, forwards.
_FIRST_SQL = """
WITH RECURSIVE periods(period, n) AS (
    SELECT date_bin(%(step)s, min(start), %(origin)s), 1 FROM matching_bar WHERE {range}
  UNION ALL
    SELECT date_bin(%(step)s, (SELECT min(start) FROM matching_bar WHERE {range} AND start >= p.period + %(step)s),
                    %(origin)s), p.n + 1
    FROM periods p WHERE p.period IS NOT NULL AND p.n < %(limit)s
)
SELECT date_bin(%(step)s, start, %(origin)s) AS period, {columns}
FROM matching_bar WHERE {range} AND start < (SELECT max(period) FROM periods) + %(step)s
GROUP BY 1 ORDER BY 1
"""

# The minutes of one period before a given minute, as one candle (None when there are none).
_PRIOR_SQL = """
SELECT {columns} FROM matching_bar WHERE symbol = %(symbol)s AND start >= %(lo)s AND start < %(hi)s
HAVING count(*) > 0
"""


def _bar_of(symbol: str, start: datetime, row) -> Bar:
    o, h, low, c, v, n, k = row
    return Bar(symbol=symbol, start=start, open=o, high=h, low=low, close=c, volume=v, notional=n, trade_count=k)


def bars_aggregate(symbol: str, timeframe: str, *, limit: int, start: datetime | None = None,
                   end: datetime | None = None) -> list[Bar]:
    """Candles of a timeframe, oldest first: the latest `limit`, or the first `limit` from `start`; only candles
    whose period starts in [start, end). Open is the first minute's open, close the last minute's close."""
    params = {"symbol": symbol, "step": TIMEFRAMES[timeframe], "origin": _ORIGIN, "limit": limit}
    conditions = ["symbol = %(symbol)s"]
    if start is not None:
        params["lo"] = _period_ceil(start, timeframe)
        conditions.append("start >= %(lo)s")
    if end is not None:
        params["hi"] = _period_ceil(end, timeframe)
        conditions.append("start < %(hi)s")
    sql = (_FIRST_SQL if start is not None else _LATEST_SQL).format(range=" AND ".join(conditions),
                                                                    columns=_BAR_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_bar_of(symbol, row[0], row[1:]) for row in cursor.fetchall()]


def _prior_of(symbol: str, timeframe: str, minute: datetime) -> list | None:
    """The minutes of `minute`'s period before it, as [open, high, low, close, volume, notional, count] strings."""
    period = period_start(minute, timeframe)
    if period == minute:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_PRIOR_SQL.format(columns=_BAR_COLUMNS), {"symbol": symbol, "lo": period, "hi": minute})
        row = cursor.fetchone()
    return None if row is None else [str(value) for value in row]


def _candle(bar: Bar, timeframe: str, prior: list | None) -> Bar:
    """The current candle of the timeframe: the period's earlier minutes (`prior`) and the updated minute `bar`."""
    start = period_start(bar.start, timeframe)
    if prior is None:
        return Bar(symbol=bar.symbol, start=start, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
                   volume=bar.volume, notional=bar.notional, trade_count=bar.trade_count)
    o, h, low, _, v, n, k = prior
    return Bar(symbol=bar.symbol, start=start, open=Decimal(o), high=max(Decimal(h), bar.high),
               low=min(Decimal(low), bar.low), close=bar.close, volume=Decimal(v) + bar.volume,
               notional=Decimal(n) + bar.notional, trade_count=int(k) + bar.trade_count)


def _higher_candles(symbol: str, bar: Bar, priors: dict) -> list[tuple[str, Bar]]:
    """The candle of every higher timeframe that a 1-minute bar update changes. `priors` ({timeframe: [minute,
    prior]}) caches each timeframe's earlier minutes for the minute last updated: they are read from Postgres once per
    minute, and they cannot change afterwards (a symbol's batches commit one after the other, in time order)."""
    minute = bar.start.isoformat()
    candles = []
    for timeframe in HIGHER_TIMEFRAMES:
        cached = priors.get(timeframe)
        if cached is None or cached[0] != minute:
            cached = priors[timeframe] = [minute, _prior_of(symbol, timeframe, bar.start)]
        candles.append((timeframe, _candle(bar, timeframe, cached[1])))
    return candles


def market_record_trades(*, symbol: str, trades: Iterable[Trade], version: int | None = None) -> list[Bar]:
    """Fold a matching batch's saved trades into their 1-minute bars (one statement, in the caller's transaction).

    `version` is the symbol's book version after the batch: the publish that follows the commit carries it,
    so a late publish of an older batch cannot overwrite a newer snapshot.
    """
    minutes: dict = {}
    for trade in sorted(trades, key=lambda t: t.pk):
        start = trade.executed_at.replace(second=0, microsecond=0)
        bar = minutes.get(start)
        if bar is None:
            minutes[start] = [trade.price, trade.price, trade.price, trade.price, trade.qty, trade.price * trade.qty, 1]
        else:
            bar[1] = max(bar[1], trade.price)
            bar[2] = min(bar[2], trade.price)
            bar[3] = trade.price
            bar[4] += trade.qty
            bar[5] += trade.price * trade.qty
            bar[6] += 1
    bars: list[Bar] = []
    if minutes:
        params: list = []
        for start, (o, h, low, c, v, n, k) in sorted(minutes.items()):
            params += [symbol, start, o, h, low, c, v, n, k]
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(minutes))
        with connection.cursor() as cursor:
            cursor.execute(_BAR_UPSERT.format(rows=rows), params)
            bars = [Bar(id=row[0], symbol=row[1], start=row[2], open=row[3], high=row[4], low=row[5], close=row[6],
                        volume=row[7], notional=row[8], trade_count=row[9]) for row in cursor.fetchall()]
    if not hasattr(_pending, "by_symbol"):
        _pending.by_symbol = {}
    _pending.by_symbol[symbol] = (version, bars)
    return bars


def _pending_take(symbol: str) -> tuple[int | None, list[Bar]]:
    return getattr(_pending, "by_symbol", {}).pop(symbol, (None, []))


# --- publishing, after the matching commit ------------------------------------------------------------

def _depth_changes(before: list[dict], after: list[dict]) -> list[dict]:
    """Levels that differ inside the top-N window; a level that left it comes with qty 0 (remove it)."""
    old = {level["price"]: level for level in before}
    new = {level["price"]: level for level in after}
    changes = [level for price, level in new.items() if old.get(price) != level]
    changes += [{"price": price, "qty": "0", "count": 0} for price in old if price not in new]
    return changes


def market_publish(*, symbol: str, book, grid, trades: list[Trade]) -> list[dict]:
    """Called once per committed matching batch: number what changed, refresh the cache, push it to subscribers.

    Under a short per-symbol Redis lock: read the last published state, diff it, write the new state and the
    snapshots under a new cache version in one MULTI. Returns the messages pushed (none if nothing changed).
    """
    version, bars = _pending_take(symbol)
    px, qx = _quantum(grid.tick_size), _quantum(grid.lot_size)
    depth = book.depth(DEPTH_LEVELS)
    levels = {
        "bids": [_level(grid.to_price(lv.price), grid.to_qty(lv.qty), lv.count, px, qx) for lv in depth.bids],
        "asks": [_level(grid.to_price(lv.price), grid.to_qty(lv.qty), lv.count, px, qx) for lv in depth.asks],
    }
    last = grid.to_price(book.last_price) if book.last_price is not None else None
    quote = _quote(levels, last, px)
    now = timezone.now().isoformat()
    messages: list[dict] = []
    try:
        r = _redis()
        lock = r.lock(_key(symbol, "publish-lock"), timeout=PUBLISH_LOCK_TIMEOUT, blocking_timeout=PUBLISH_LOCK_TIMEOUT)
        if not lock.acquire():
            logger.warning("market publish lock busy; update skipped", extra={"symbol": symbol})
            return []
        try:
            live = _live(r, symbol)
            # Sequence numbers live in Redis; if it lost them they restart at 1 under a new epoch.
            epoch = live.get("epoch") or secrets.token_hex(4)
            seq = {stream: _seq_of(live, stream) for stream in STREAMS}
            priors = dict(live.get("priors") or {})
            # A publish that lost the race to a newer batch's publish keeps only its trades.
            stale = version is not None and version <= int(live.get("book_version") or 0)
            if not stale:
                if live.get("quote") != quote:
                    seq["quote"] += 1
                    messages.append({"type": "quote", "symbol": symbol, "seq": seq["quote"], **quote,
                                     "timestamp": now})
                if "book" not in live:
                    seq["book"] += 1
                    messages.append({"type": "book", "symbol": symbol, "seq": seq["book"], "snapshot": True,
                                     **levels, "timestamp": now})
                else:
                    bids = _depth_changes(live["book"]["bids"], levels["bids"])
                    asks = _depth_changes(live["book"]["asks"], levels["asks"])
                    if bids or asks:
                        seq["book"] += 1
                        messages.append({"type": "book", "symbol": symbol, "seq": seq["book"], "snapshot": False,
                                         "bids": bids, "asks": asks, "timestamp": now})
                for bar in bars:
                    # One number per minute update: each timeframe's candle of it carries the same seq, so a
                    # subscriber to any one timeframe sees 1, 2, 3... and a gap means the same as on 1Min.
                    seq["bars"] += 1
                    messages.append({"type": "bar", "symbol": symbol, "seq": seq["bars"], "timeframe": MINUTE,
                                     **_bar_json(bar, px, qx)})
                    try:
                        candles = _higher_candles(symbol, bar, priors)
                    except DatabaseError:
                        logger.warning("higher-timeframe candles not pushed; clients re-sync over REST", exc_info=True)
                        priors.clear()
                        candles = []
                    for timeframe, candle in candles:
                        messages.append({"type": "bar", "symbol": symbol, "seq": seq["bars"], "timeframe": timeframe,
                                         **_bar_json(candle, px, qx)})
            if trades:
                seq["trades"] += 1
                messages.append({"type": "trades", "symbol": symbol, "seq": seq["trades"],
                                 "trades": [_trade_json(t, px, qx) for t in trades]})
            if not messages:
                return []
            for message in messages:
                message["epoch"] = epoch
            state = {"epoch": epoch, "seq": seq, "book_version": max(version or 0, int(live.get("book_version") or 0)),
                     "quote": live.get("quote") if stale else quote, "book": live.get("book") if stale else levels,
                     "priors": priors}
            cache_version = int(r.get(_key(symbol, "ver")) or 0) + 1
            pipe = r.pipeline(transaction=True)
            pipe.set(_key(symbol, "live"), json.dumps(state))
            if not stale:
                # Write-through: the worker's book is the freshest source of depth; the web process cannot see it.
                pipe.set(_key(symbol, f"v{cache_version}:quote"),
                         json.dumps({"symbol": symbol, "epoch": epoch, "seq": seq["quote"], **quote, "timestamp": now}),
                         ex=SNAPSHOT_TTL)
                pipe.set(_key(symbol, f"v{cache_version}:book"),
                         json.dumps({"symbol": symbol, "epoch": epoch, "seq": seq["book"], **levels, "timestamp": now}),
                         ex=SNAPSHOT_TTL)
            pipe.set(_key(symbol, "ver"), cache_version)  # every older snapshot (trades, bars) is now unreachable
            pipe.execute()
        finally:
            try:
                lock.release()
            except LockError:
                logger.warning("market publish lock expired before release", extra={"symbol": symbol})
    except RedisError:
        logger.warning("market data not published (Redis unavailable); clients re-sync over REST", exc_info=True)
        return []
    market_push(symbol, messages)
    return messages


def market_push(symbol: str, messages: list[dict]) -> None:
    """At most once, to every subscriber of the symbol in every web process (Redis pub/sub)."""
    if not messages:
        return
    try:
        # Each message travels with its JSON text, encoded once here rather than once per subscriber.
        envelopes = [{"symbol": m["symbol"], "type": m["type"], "seq": m["seq"], "epoch": m.get("epoch"),
                      "timeframe": m.get("timeframe"), "text": json.dumps(m, separators=(",", ":"))}
                     for m in messages]
        group_publish([(market_group(symbol), {"type": "market.update", "messages": envelopes})])
    except Exception:
        logger.warning("market data push failed; clients re-sync over REST", exc_info=True)


def market_cache_invalidate(symbol: str) -> None:
    """Make every cached REST snapshot of the symbol unreachable (after a commit that the worker did not publish)."""
    try:
        _redis().incr(_key(symbol, "ver"))
    except RedisError:
        logger.warning("market cache not invalidated", extra={"symbol": symbol}, exc_info=True)


# --- REST snapshots: read-through, one filler per cold key -----------------------------------------------

_fills = 0  # cold fills by this process (tests and the lock-health log read it)


def _read_through(symbol: str, name: str, compute: Callable[[dict], dict]) -> dict:
    """The snapshot `name` of the symbol at the current cache version, computed from Postgres once when cold.

    The version is read before the database, so a snapshot filled from older data lands under an older key.
    Concurrent readers of a cold key wait (at most FILL_WAIT) for the one holding the fill lock; if it is slow
    or died, they compute for themselves without caching. Without Redis every read goes to Postgres.
    """
    global _fills
    try:
        r = _redis()
        version = int(r.get(_key(symbol, "ver")) or 0)
        key = _key(symbol, f"v{version}:{name}")
        raw = r.get(key)
        if raw is not None:
            return json.loads(raw)
        lock = r.lock(key + ":fill", timeout=FILL_LOCK_TIMEOUT, blocking=False)
        if lock.acquire():
            try:
                raw = r.get(key)
                if raw is not None:
                    return json.loads(raw)
                value = compute(_live(r, symbol))
                _fills += 1
                r.set(key, json.dumps(value), ex=SNAPSHOT_TTL)
                return value
            finally:
                try:
                    lock.release()
                except LockError:
                    logger.warning("market cache fill outlived its lock", extra={"key": key})
        deadline = time.monotonic() + FILL_WAIT
        delay = 0.005
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            raw = r.get(key)
            if raw is not None:
                return json.loads(raw)
        logger.warning("market cache fill timed out; answering from the database", extra={"key": key})
        return compute(_live(r, symbol))
    except RedisError:
        logger.warning("market cache unavailable; answering from the database", exc_info=True)
        return compute({})


def _book_from_db(symbol: str, levels: int, px: Decimal, qx: Decimal) -> dict:
    """Aggregate resting orders: what the matching worker's book holds, as of the last commit."""
    resting = (Order.objects.filter(symbol=symbol, status__in=OPEN_STATUSES, book_seq__isnull=False,
                                    limit_price__isnull=False)
               .filter(Q(type="limit") | Q(stop_triggered=True)))  # a parked stop is not in the book yet

    def side(name: str, ordering: str) -> list[dict]:
        rows = (resting.filter(side=name).values("limit_price").annotate(qty=Sum("leaves_qty"), count=Count("id"))
                .order_by(ordering)[:levels])
        return [_level(row["limit_price"], row["qty"], row["count"], px, qx) for row in rows]

    return {"bids": side("buy", "-limit_price"), "asks": side("sell", "limit_price")}


def market_book(symbol: str) -> dict:
    """L2 snapshot (top MARKET_DEPTH_LEVELS per side) with the `book` stream's seq it is current to."""
    px, qx = _grid_of(symbol)

    def compute(live: dict) -> dict:
        return {"symbol": symbol, **_position(live, "book"), **_book_from_db(symbol, DEPTH_LEVELS, px, qx),
                "timestamp": timezone.now().isoformat()}

    return _read_through(symbol, "book", compute)


def market_quote(symbol: str) -> dict:
    """L1 snapshot: best bid and ask with their sizes, and the last trade price."""
    px, qx = _grid_of(symbol)

    def compute(live: dict) -> dict:
        last = Instrument.objects.filter(symbol=symbol).values_list("last_price", flat=True).first()
        quote = _quote(_book_from_db(symbol, 1, px, qx), last, px)
        return {"symbol": symbol, **_position(live, "quote"), **quote, "timestamp": timezone.now().isoformat()}

    return _read_through(symbol, "quote", compute)


def market_trades(symbol: str, *, limit: int = 50, after: int | None = None) -> dict:
    """The latest trades, newest first; with `after` (a trade id), the trades after it, oldest first."""
    px, qx = _grid_of(symbol)

    def compute(live: dict) -> dict:
        qs = Trade.objects.filter(symbol=symbol).only("id", "price", "qty", "aggressor_side", "executed_at")
        qs = qs.filter(pk__gt=after).order_by("id") if after is not None else qs.order_by("-id")
        return {"symbol": symbol, **_position(live, "trades"),
                "trades": [_trade_json(t, px, qx) for t in qs[:limit]]}

    return _read_through(symbol, f"trades:{limit}:{after}", compute)


def market_bars(symbol: str, *, timeframe: str = MINUTE, limit: int = 120, start=None, end=None) -> dict:
    """Candles of a timeframe, oldest first: the latest `limit`, or those whose period starts in [start, end)."""
    px, qx = _grid_of(symbol)

    def compute(live: dict) -> dict:
        rows = bars_aggregate(symbol, timeframe, limit=limit, start=start, end=end)
        return {"symbol": symbol, **_position(live, "bars"), "timeframe": timeframe,
                "bars": [_bar_json(bar, px, qx) for bar in rows]}

    variant = f"bars:{timeframe}:{limit}:{start.isoformat() if start else ''}:{end.isoformat() if end else ''}"
    return _read_through(symbol, variant, compute)


def market_snapshot(symbol: str, stream: str, *, timeframe: str = MINUTE) -> dict:
    """What a new WebSocket subscriber gets first on a stream (trades: the latest few; bars: the current candle)."""
    return {"quote": market_quote, "book": market_book, "bars": lambda s: market_bars(s, timeframe=timeframe, limit=1),
            "trades": lambda s: market_trades(s, limit=20)}[stream](symbol)
