"""The durable matching worker: feeds a symbol's order events to its in-memory book and persists the outcome.

Runs inside the outbox drain of the symbol's partition (queue `critical`), which holds the symbol's
transaction-level advisory lock: one batch at a time per symbol, on any number of workers and machines.
One batch is one transaction: trades, order states and events, ledger settlement, execution reports,
saga completion or compensation and the book version all commit together, or none of them does (a
worker killed mid-batch leaves the events pending; the next drain replays them on a rebuilt book).
"""
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from brokerx.db import execute_bound, insert_rows
from notifications.models import ExecType
from notifications.services import ReportDraft, execution_reports_record
from orders import services as order_services
from orders.fees import fee_for
from orders.models import (
    LIVE_STATUSES,
    ORDER_CLASS_MATCHING_FIELDS,
    ORDER_MATCHING_FIELDS,
    Instrument,
    Order,
    OrderClass,
    OrderEventType,
    OrderStatus,
    OrderType,
    SagaState,
    TradingStatus,
)
from orders.selectors import instrument_cache_invalidate, order_as_dict, order_state
from outbox.services import outbox_emit_many
from portfolios import services as ledger
from portfolios import settlement

from . import engine
from .engine import events as ev
from .market import market_publish, market_record_trades
from .models import BookState, Trade

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
PX = Decimal("0.0001")
# Plain strings for the checks every order and fill of a batch makes (an enum member's lookup costs more).
SIMPLE, OCO, HELD, TRAILING_STOP = (OrderClass.SIMPLE.value, OrderClass.OCO.value, OrderStatus.HELD.value,
                                    OrderType.TRAILING_STOP.value)
ENTRY_CLASSES = (OrderClass.BRACKET.value, OrderClass.OTO.value)  # classes whose first order's fills size the legs


@dataclass
class CachedBook:
    book: engine.OrderBook
    grid: engine.Grid
    version: int
    dirty: bool = False


# One book per symbol in this worker process; trusted only while its version equals the database's.
_books: dict[str, CachedBook] = {}


def book_forget(symbol: str | None = None) -> None:
    if symbol is None:
        _books.clear()
    else:
        _books.pop(symbol, None)


def _ticks(grid: engine.Grid, price: Decimal | None) -> int | None:
    return None if price is None else grid.to_ticks(price)


def _trail(grid: engine.Grid, order: Order) -> dict:
    """A trailing stop's trail as the engine takes it: ticks, or basis points of a percentage."""
    if order.type != TRAILING_STOP:
        return {}
    return {"trail_price": _ticks(grid, order.trail_price),
            "trail_bp": None if order.trail_percent is None else int(order.trail_percent * 100)}


def _leg_spec(grid: engine.Grid, leg: Order) -> engine.Leg:
    return engine.Leg(leg.pk, leg.type, _ticks(grid, leg.limit_price), _ticks(grid, leg.stop_price),
                      _ticks(grid, leg.protection_price), **_trail(grid, leg))


def _rebuild(symbol: str, instrument: Instrument, version: int) -> CachedBook:
    grid = engine.Grid(instrument.tick_size, instrument.lot_size)
    book = engine.OrderBook()
    resting = (Order.objects.filter(symbol=symbol, status__in=[OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED],
                                    book_seq__isnull=False)
               .order_by("book_seq")
               .only("id", "user_id", "side", "type", "time_in_force", "qty", "cum_qty", "limit_price",
                     "stop_price", "protection_price", "book_seq", "stop_triggered", "order_class", "parent_id",
                     "trail_price", "trail_percent", "hwm"))
    classes: list[Order] = []
    for order in resting.iterator(chunk_size=5000):
        book.restore(order.pk, order.user_id, order.side, order.type, order.time_in_force, grid.to_lots(order.qty),
                     _ticks(grid, order.limit_price),
                     None if order.type == TRAILING_STOP else _ticks(grid, order.stop_price),
                     cum_qty=int(order.cum_qty / grid.lot_size), priority=order.book_seq,
                     triggered=order.stop_triggered, protection_price=_ticks(grid, order.protection_price),
                     water_mark=_ticks(grid, order.hwm), **_trail(grid, order))
        if order.order_class != SIMPLE:
            classes.append(order)
    if classes:
        _restore_classes(book, grid, symbol, classes)
    if instrument.last_price is not None:
        book.set_last_price(grid.to_ticks(instrument.last_price))
    return CachedBook(book=book, grid=grid, version=version)


def _restore_classes(book: engine.OrderBook, grid: engine.Grid, symbol: str, live: list[Order]) -> None:
    """Held legs and the links of the open class orders (orders.models.OrderClass: an oco leg's parent is its
    sibling; a bracket's two legs are siblings of each other)."""
    open_ids = {o.pk for o in live}
    held = Order.objects.filter(symbol=symbol, status=OrderStatus.HELD, parent_id__in=open_ids).order_by("id")
    for leg in held:
        book.restore_held(leg.pk, leg.parent_id, leg.type, _ticks(grid, leg.limit_price), _ticks(grid, leg.stop_price),
                          _ticks(grid, leg.protection_price), **_trail(grid, leg))
    legs_by_parent: dict[int, list[int]] = {}
    for order in sorted(live, key=lambda o: o.pk):
        if order.parent_id is None:
            continue
        if order.order_class == OCO:
            if order.parent_id in open_ids:
                book.restore_link(order.pk, sibling_id=order.parent_id)
            continue
        legs_by_parent.setdefault(order.parent_id, []).append(order.pk)
        book.restore_link(order.pk, parent_id=order.parent_id)  # a closed entry's legs stay legs
    for legs in legs_by_parent.values():
        if len(legs) == 2:
            book.restore_link(legs[1], sibling_id=legs[0])


@dataclass(slots=True)
class OrderEventDraft:
    """An order event of the batch, written with the others in one INSERT."""

    order: Order
    type: str
    data: dict


@dataclass
class Batch:
    """What one batch changes, gathered while the book runs and written at the end."""

    symbol: str
    grid: engine.Grid
    orders: dict[int, Order] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    # Orders whose state as the client sees it changed (fills, cancels, triggers): their version moves.
    # Entering the book only sets book_seq and the saga state, which leaves the client's version valid.
    visible: set[int] = field(default_factory=set)
    events: list[OrderEventDraft] = field(default_factory=list)
    reports: list[ReportDraft] = field(default_factory=list)
    report_trades: list[Trade | None] = field(default_factory=list)  # the trade of each report, if any
    trades: list[tuple[Trade, Order, Order, Decimal]] = field(default_factory=list)
    outbox: list = field(default_factory=list)
    # The book's events, in order, applied after the book has run the whole batch (so the orders they
    # mention are read from the database in one statement, not one per fill).
    pending: list[list] = field(default_factory=list)
    last_price: Decimal | None = None
    # Shares of a trade that go straight to the reservation of the buying entry's legs, by trade index.
    leg_reserved: dict[int, Decimal] = field(default_factory=dict)
    leg_credit: int | None = None
    reshaped: set[int] = field(default_factory=set)  # orders whose ORDER_CLASS_MATCHING_FIELDS changed


def _report(batch: Batch, order: Order, exec_type: str, *, last_qty=None, last_px=None, fee=None, liquidity="",
            reason="", trade: Trade | None = None) -> None:
    if exec_type != ExecType.NEW:
        batch.visible.add(order.pk)
    batch.report_trades.append(trade)
    batch.reports.append(ReportDraft(
        user_id=order.user_id, order_id=order.pk, client_order_id=order.client_order_id, symbol=order.symbol,
        side=order.side, exec_type=exec_type, order_status=order.status, last_qty=last_qty, last_px=last_px,
        cum_qty=order.cum_qty, leaves_qty=order.leaves_qty, avg_px=order.avg_px, fee=fee, liquidity=liquidity,
        reason=reason))


def _event(batch: Batch, order: Order, event_type: str, **extra) -> None:
    data = {**order_state(order), **extra}
    batch.events.append(OrderEventDraft(order=order, type=event_type, data=data))


def _load_orders(batch: Batch, ids) -> None:
    """Read (and lock, in primary-key order) the orders a batch changes. Every other writer of an open order
    of this symbol takes the symbol's lock first, so the row locks never wait; they guard against a writer
    that forgot to."""
    missing = sorted(set(ids) - batch.orders.keys())
    if missing:
        for order in Order.objects.select_for_update().filter(pk__in=missing).order_by("pk"):
            batch.orders[order.pk] = order


def _sibling(batch: Batch, order: Order) -> Order | None:
    """The other exit of the order's oco pair in this batch (an oco leg's parent; a bracket's other leg)."""
    for other in batch.orders.values():
        if other.pk == order.pk or other.order_class != order.order_class or other.side != order.side:
            continue
        if (other.pk == order.parent_id or other.parent_id == order.pk
                or (order.parent_id is not None and other.parent_id == order.parent_id)):
            return other
    return None


def _apply(batch: Batch, book: engine.OrderBook, events: list) -> None:
    """Turn the book's events into order states, trades, events and reports (not yet written)."""
    grid = batch.grid
    for e in events:
        kind = e[0]
        if kind == ev.ACCEPTED:
            order = batch.orders[e[1]]
            order.book_seq = e[2]
            if order.status == HELD:
                order.status = OrderStatus.NEW  # a leg its entry's first fill made live
            order_services.order_saga_complete(order=order, events=batch.outbox)
            batch.touched.add(order.pk)
            _report(batch, order, ExecType.NEW)
        elif kind == ev.RESTED:
            order = batch.orders[e[1]]
            order.book_seq = e[5]
            batch.touched.add(order.pk)
        elif kind == ev.TRADE:
            _, price_ticks, lots, maker_id, taker_id, _maker_acct, _taker_acct, aggressor = e
            maker, taker = batch.orders[maker_id], batch.orders[taker_id]
            price, qty = grid.to_price(price_ticks), grid.to_qty(lots)
            buy, sell = (taker, maker) if aggressor == engine.BUY else (maker, taker)
            notional = ledger.trade_notional(qty=qty, price=price)
            buyer_fee = fee_for(notional, maker=buy is maker)
            seller_fee = fee_for(notional, maker=sell is maker)
            trade = Trade(symbol=batch.symbol, price=price, qty=qty, buy_order=buy, sell_order=sell,
                          aggressor_side=aggressor, buyer_fee=buyer_fee, seller_fee=seller_fee)
            take = ZERO
            for order, fee in ((buy, buyer_fee), (sell, seller_fee)):
                before = order.cum_qty
                order.cum_qty = before + qty
                order.avg_px = (((order.avg_px or ZERO) * before + price * qty) / order.cum_qty).quantize(PX)
                order.fees_paid += fee
                if order.side == engine.BUY:
                    # Reserved cash pays the fill; a shortfall (never expected, see orders.fees) comes from
                    # available cash inside the same ledger entry.
                    take = min(notional + fee, order.reserved_amount)
                    order.reserved_amount -= take
                elif order.order_class == SIMPLE or order.reserved_amount >= qty:
                    order.reserved_amount -= qty
                else:
                    # An oco pair's two exits draw on the one reservation, which either of them may hold.
                    holder = _sibling(batch, order)
                    holder.reserved_amount -= qty
                    batch.touched.add(holder.pk)
                batch.touched.add(order.pk)
            batch.trades.append((trade, buy, sell, take))
            # The entry of a bracket or OTO: the first of its legs to grow holds the shares bought (Resized next).
            batch.leg_credit = len(batch.trades) - 1 if buy.order_class in ENTRY_CLASSES \
                and buy.parent_id is None else None
            batch.last_price = price
        elif kind == ev.ORDER_UPDATE:
            _, order_id, status, _qty, cum_lots, leaves_lots, reason = e
            order = batch.orders[order_id]
            order.leaves_qty = grid.to_qty(leaves_lots) if leaves_lots else ZERO
            batch.touched.add(order.pk)
            if status == engine.CANCELED:
                if order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                    continue  # already closed in the database (user cancel): the book only caught up
                order.status = OrderStatus.CANCELED
                order.reason = reason or ""
                order.leaves_qty = ZERO
                if order.saga_state == SagaState.CREATED:
                    # A leg its class closed before it entered the book: its saga ends with the class.
                    order_services.order_saga_complete(order=order, events=batch.outbox)
                _event(batch, order, OrderEventType.CANCELED, reason=reason)
                _report(batch, order, ExecType.CANCELED, reason=reason or "")
            else:
                order.status = status
                last = batch.trades[-1][0] if batch.trades else None
                event_type = OrderEventType.FILLED if status == engine.FILLED else OrderEventType.PARTIALLY_FILLED
                is_maker = last is not None and (last.aggressor_side != order.side)
                fee = (last.buyer_fee if order.side == engine.BUY else last.seller_fee) if last else None
                _event(batch, order, event_type, last_qty=str(last.qty) if last else None,
                       last_px=str(last.price) if last else None)
                _report(batch, order, ExecType.TRADE, last_qty=last.qty if last else None,
                        last_px=last.price if last else None, fee=fee, liquidity="maker" if is_maker else "taker",
                        trade=last)
        elif kind == ev.STOP_TRIGGERED:
            order = batch.orders[e[1]]
            order.stop_triggered = True
            batch.touched.add(order.pk)
            _event(batch, order, OrderEventType.TRIGGERED, last_price=str(grid.to_price(e[3])))
            _report(batch, order, ExecType.TRIGGERED)
        elif kind == ev.REPLACED:
            # The database already holds the replace; the book gives the order's place in the queue (and a
            # trailing stop's stop price for its new trail).
            order = batch.orders[e[1]]
            order.book_seq = e[8]
            if order.type == TRAILING_STOP:
                order.stop_price = grid.to_price(e[6])
                batch.reshaped.add(order.pk)
            batch.touched.add(order.pk)
        elif kind == ev.RESIZED:
            _, order_id, qty_lots, _cum, leaves_lots, reason = e
            order = batch.orders[order_id]
            delta = grid.to_qty(qty_lots) - order.qty
            order.qty = grid.to_qty(qty_lots)
            order.leaves_qty = grid.to_qty(leaves_lots) if leaves_lots else ZERO
            if reason == engine.ResizeReason.PARENT_FILL and batch.leg_credit is not None:
                trade_index, batch.leg_credit = batch.leg_credit, None
                order.reserved_amount += delta
                batch.leg_reserved[trade_index] = batch.leg_reserved.get(trade_index, ZERO) + delta
            batch.touched.add(order.pk)
            batch.reshaped.add(order.pk)
            _event(batch, order, OrderEventType.RESIZED, reason=reason)
            _report(batch, order, ExecType.REPLACED, reason=reason)
        elif kind == ev.TRAIL_MOVED:
            order = batch.orders[e[1]]
            order.stop_price, order.hwm = grid.to_price(e[2]), grid.to_price(e[3])
            batch.reshaped.add(order.pk)
        # REJECTED: the database already holds the cancel or replace; the book only caught up.


def _settlement(batch: Batch) -> tuple[list[settlement.Fill], list[settlement.Release]]:
    """The batch's trades (inserted, for their ids) and the ledger entries they and the closed orders need.

    Closed orders give their reservation back here (`reserved_amount` 0), so the order rows written next
    carry it; the entries themselves are posted last (`_persist`).
    """
    if batch.trades:
        now = timezone.now()
        ids = insert_rows("matching_trade", TRADE_COLUMNS, [
            (t.symbol, t.price, t.qty, b.pk, s.pk, t.aggressor_side, t.buyer_fee, t.seller_fee, now)
            for t, b, s, _ in batch.trades], returning="id")
        for (trade, _, _, _), trade_id in zip(batch.trades, ids, strict=True):
            trade.pk, trade.executed_at = trade_id, now
    fills = [settlement.Fill(reference=f"trade:{trade.pk}", buyer_id=buy.user_id, seller_id=sell.user_id,
                             qty=trade.qty, price=trade.price, buyer_fee=trade.buyer_fee, seller_fee=trade.seller_fee,
                             from_reserved=take, to_reserved=batch.leg_reserved.get(index, ZERO))
             for index, (trade, buy, sell, take) in enumerate(batch.trades)]
    releases = []
    currency = ledger.ledger_currency()
    for order in batch.orders.values():
        # An order that left the book (filled, or canceled by the book) gives back what it still holds.
        if order.pk not in batch.touched or order.status not in (OrderStatus.FILLED, OrderStatus.CANCELED):
            continue
        if order.reserved_amount > 0 and order.side == engine.SELL and order.order_class != SIMPLE:
            # An oco exit that closed hands the pair's reservation to the other one if it is still open.
            sibling = _sibling(batch, order)
            if sibling is not None and sibling.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
                sibling.reserved_amount += order.reserved_amount
                order.reserved_amount = ZERO
                batch.touched.add(sibling.pk)
                continue
        if order.reserved_amount > 0 and order.saga_state != SagaState.COMPENSATED:
            cash = order.side == engine.BUY
            releases.append(settlement.Release(reference=f"order:{order.pk}:{order.status}", user_id=order.user_id,
                                               asset=currency if cash else order.symbol,
                                               amount=order.reserved_amount, cash=cash))
            order.reserved_amount = ZERO
    return fills, releases


TRADE_COLUMNS = {"symbol": "text", "price": "numeric", "qty": "numeric", "buy_order_id": "bigint",
                 "sell_order_id": "bigint", "aggressor_side": "text", "buyer_fee": "numeric", "seller_fee": "numeric",
                 "executed_at": "timestamptz"}
ORDER_EVENT_COLUMNS = {"order_id": "bigint", "type": "text", "data": "jsonb", "created_at": "timestamptz"}

def _array_type(name: str) -> str:
    """The SQL array type of an order column, for binding one array of values per column."""
    internal = Order._meta.get_field(name).get_internal_type()
    return {"DecimalField": "numeric", "BigIntegerField": "bigint", "BooleanField": "boolean",
            "PositiveIntegerField": "integer"}.get(internal, "text") + "[]"


def _order_update_sql(fields: tuple[str, ...]) -> str:
    return """
UPDATE orders_order AS o
   SET {assignments}, updated_at = %s
  FROM unnest(%s::bigint[], {arrays}) AS v(id, {columns})
 WHERE o.id = v.id
""".format(assignments=", ".join(f"{name} = v.{name}" for name in fields),
           arrays=", ".join(f"%s::{_array_type(name)}" for name in fields), columns=", ".join(fields))


# What matching changes on an order (ORDER_MATCHING_FIELDS), for every changed order of a batch in one statement; and
# on the few orders of a class or trailing stops it resized or trailed (ORDER_CLASS_MATCHING_FIELDS), in another.
_ORDER_UPDATE_SQL = _order_update_sql(ORDER_MATCHING_FIELDS)
_ORDER_CLASS_UPDATE_SQL = _order_update_sql(ORDER_CLASS_MATCHING_FIELDS)


def _orders_write(orders: list[Order], now, *, fields=ORDER_MATCHING_FIELDS, sql=_ORDER_UPDATE_SQL) -> None:
    """Every changed order of the batch in one statement."""
    execute_bound(sql, [now, [o.pk for o in orders], *([getattr(o, name) for o in orders] for name in fields)])


def _compensate(batch: Batch, order: Order, reason: str) -> None:
    """Saga compensation: the order cannot reach the book (symbol halted, book refused it); its legs neither."""
    for member in [order, *_legs(batch, order)]:
        if member.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.HELD):
            order_services.order_compensate(order=member, reason=reason)
            _report(batch, member, ExecType.REJECTED, reason=reason)


def _legs(batch: Batch, order: Order) -> list[Order]:
    return sorted((o for o in batch.orders.values() if o.parent_id == order.pk), key=lambda o: o.pk)


def _submit(batch: Batch, book: engine.OrderBook, order: Order, *, filled: Decimal = ZERO) -> None:
    grid = batch.grid
    extra = {}
    if order.order_class != SIMPLE and order.parent_id is None:
        legs = tuple(_leg_spec(grid, leg) for leg in _legs(batch, order))
        extra = {"oco": legs[0]} if order.order_class == OCO else {"legs": legs}
    trailing = order.type == TRAILING_STOP
    if trailing:
        extra.update(_trail(grid, order))
    if filled:
        extra["filled"] = grid.to_lots(filled)
    try:
        events = book.submit(
            order.pk, order.user_id, order.side, order.type, order.time_in_force, grid.to_lots(order.qty),
            _ticks(grid, order.limit_price), None if trailing else _ticks(grid, order.stop_price),
            _ticks(grid, order.protection_price), **extra)
    except engine.EngineError as exc:
        logger.warning("book refused order", extra={"order_id": order.pk, "error": str(exc)})
        _compensate(batch, order, "rejected_by_book")
        return
    batch.pending.append(events)


def _session(symbol: str) -> tuple[CachedBook, Instrument, BookState]:
    instrument = Instrument.objects.get(symbol=symbol)
    state, _ = BookState.objects.select_for_update().get_or_create(symbol=symbol)
    cached = _books.get(symbol)
    if (cached is None or cached.dirty or cached.version != state.version
            or (cached.grid.tick_size, cached.grid.lot_size) != (instrument.tick_size, instrument.lot_size)):
        # A grid changed by staff or the demo seed: the resting orders are read again on the new one.
        cached = _rebuild(symbol, instrument, state.version)
        _books[symbol] = cached
    return cached, instrument, state


def matching_process(*, symbol: str, outbox_events: list) -> None:
    """Apply a batch of order.created / order.replaced / order.canceled events of one symbol, in one transaction.

    Cancels and replaces are already final in the database (made under this symbol's lock), so the book
    takes them first; then new orders are matched in arrival order, each read from the database as it is now.
    """
    cached, instrument, state = _session(symbol)
    cached.dirty = True  # until this transaction commits, the book is ahead of the database
    book, grid = cached.book, cached.grid
    batch = Batch(symbol=symbol, grid=grid)
    order_ids = sorted({int(e.payload["order_id"]) for e in outbox_events})
    _load_orders(batch, order_ids)
    classes = [o.pk for o in batch.orders.values() if o.order_class != SIMPLE and o.parent_id is None]
    if classes:
        # A class enters the book as one: its legs with its first order.
        _load_orders(batch, Order.objects.filter(parent_id__in=classes).values_list("pk", flat=True))

    replaced: set[int] = set()
    for event in outbox_events:
        order = batch.orders.get(int(event.payload["order_id"]))
        if order is None:
            continue
        if event.topic == "order.canceled":
            book.cancel(order.pk)
        elif (event.topic == "order.replaced" and order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
              and order.saga_state != SagaState.CREATED and order.pk not in replaced):
            # The order as it is now stands for every replace of it in this batch: the book takes it once (a
            # second time it could put back an order the first one had the book cancel).
            replaced.add(order.pk)
            trailing = order.type == TRAILING_STOP
            replace_events = book.replace(
                order.pk, grid.to_lots(order.qty), _ticks(grid, order.limit_price),
                None if trailing or order.stop_triggered else _ticks(grid, order.stop_price), **_trail(grid, order))
            if (replace_events[0][0] == ev.REJECTED and order.book_seq is None
                    and replace_events[0][2] != engine.RejectReason.INVALID_REPLACE):  # missing, not refused
                # A book rebuilt from the database does not hold an order whose replace lost its priority:
                # it enters again now, at the back of the queue, with what it already filled.
                _submit(batch, book, order, filled=order.cum_qty)
            else:
                batch.pending.append(replace_events)

    halted = instrument.trading_status == TradingStatus.HALTED or not instrument.is_tradable
    for event in outbox_events:
        if event.topic != "order.created":
            continue
        order = batch.orders.get(int(event.payload["order_id"]))
        # Redelivered or already closed (canceled before it reached the book): nothing to do.
        if order is None or order.saga_state != SagaState.CREATED or order.status not in (
                OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
            continue
        order.saga_state = SagaState.SUBMITTED
        if halted:
            _compensate(batch, order, "symbol_halted")
            continue
        _submit(batch, book, order)

    mentioned = set()
    for events in batch.pending:
        for e in events:
            if e[0] == ev.TRADE:
                mentioned.update((e[3], e[4]))
            elif e[0] != ev.REJECTED:
                mentioned.add(e[1])
    _load_orders(batch, mentioned)
    roots = {o.parent_id or o.pk for o in batch.orders.values() if o.order_class != SIMPLE}
    if roots:
        # Every open order of a class in play, so a closing exit can hand the pair's reservation to the other.
        _load_orders(batch, Order.objects.filter(Q(pk__in=roots) | Q(parent_id__in=roots),
                                                 status__in=LIVE_STATUSES).values_list("pk", flat=True))
    for events in batch.pending:
        _apply(batch, book, events)
    _persist(batch, state, instrument)
    new_version = state.version

    def _committed() -> None:
        cached.version = new_version
        cached.dirty = False
        _after_commit(symbol, book, grid, batch)

    transaction.on_commit(_committed)


def _persist(batch: Batch, state: BookState, instrument: Instrument) -> None:
    fills, releases = _settlement(batch)
    touched = [batch.orders[i] for i in sorted(batch.touched) if batch.orders[i].saga_state != SagaState.COMPENSATED]
    now = timezone.now()
    for order in touched:
        if order.pk in batch.visible:
            order.version += 1
            order.updated_at = now
    if touched:
        _orders_write(touched, now)
    reshaped = [batch.orders[i] for i in sorted(batch.reshaped)]
    if reshaped:
        _orders_write(reshaped, now, fields=ORDER_CLASS_MATCHING_FIELDS, sql=_ORDER_CLASS_UPDATE_SQL)
    # Order events and reports carry the state after the whole batch's change for their order.
    for event in batch.events:
        event.data["version"] = event.order.version
        event.data["reserved_amount"] = str(event.order.reserved_amount)
    insert_rows("orders_orderevent", ORDER_EVENT_COLUMNS,
                [(e.order.pk, e.type, Jsonb(e.data), now) for e in batch.events])
    outbox_emit_many(batch.outbox)
    order_services.saga_completed_count(sum(1 for e in batch.outbox if e.topic == "saga.completed"))
    state.version += 1
    if batch.last_price is not None:
        state.last_price = batch.last_price
    state.save()
    market_record_trades(symbol=batch.symbol, trades=[t for t, _, _, _ in batch.trades], version=state.version)
    # Late: posting the entries locks the traders' cash and share accounts (portfolios_posting_apply) until
    # commit, and each of their new orders waits for those rows (orders_place). The rest is written by now, so
    # the accounts stay locked only for these last statements, the outbox's mark and the commit. The lock order
    # is every writer's: accounts, then report counters (cancels too), then the instrument row, whose update
    # a new order's foreign-key check waits for at its commit, holding its accounts.
    settlement.settle_batch(symbol=batch.symbol, fills=fills, releases=releases)
    for report, trade in zip(batch.reports, batch.report_trades, strict=True):
        if trade is not None:
            report.trade_id = trade.pk
    execution_reports_record(batch.reports, orders={o.pk: order_as_dict(o) for o in touched})
    if batch.last_price is not None:
        Instrument.objects.filter(pk=instrument.pk).update(last_price=batch.last_price)


def _after_commit(symbol: str, book: engine.OrderBook, grid: engine.Grid, batch: Batch) -> None:
    """Market data hint for live subscribers (at most once; the database is the record)."""
    if batch.last_price is not None:
        instrument_cache_invalidate(symbol)
    try:
        market_publish(symbol=symbol, book=book, grid=grid, trades=[t for t, _, _, _ in batch.trades])
    except Exception:
        logger.warning("market data push failed", exc_info=True)

