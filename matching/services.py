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

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from notifications.models import ExecType, ExecutionReport
from notifications.services import execution_reports_record
from orders import services as order_services
from orders.fees import fee_for
from orders.models import Instrument, Order, OrderEvent, OrderEventType, OrderStatus, SagaState, TradingStatus
from portfolios import services as ledger

from . import engine
from .engine import events as ev
from .models import BookState, Trade

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
PX = Decimal("0.0001")


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


def _rebuild(symbol: str, instrument: Instrument, version: int) -> CachedBook:
    grid = engine.Grid(instrument.tick_size, instrument.lot_size)
    book = engine.OrderBook()
    resting = (Order.objects.filter(symbol=symbol, status__in=[OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED],
                                    book_seq__isnull=False)
               .order_by("book_seq")
               .only("id", "user_id", "side", "type", "time_in_force", "qty", "cum_qty", "limit_price",
                     "stop_price", "protection_price", "book_seq", "stop_triggered"))
    for order in resting.iterator(chunk_size=5000):
        book.restore(order.pk, order.user_id, order.side, order.type, order.time_in_force, grid.to_lots(order.qty),
                     grid.to_ticks(order.limit_price) if order.limit_price is not None else None,
                     grid.to_ticks(order.stop_price) if order.stop_price is not None else None,
                     cum_qty=int(order.cum_qty / grid.lot_size), priority=order.book_seq,
                     triggered=order.stop_triggered,
                     protection_price=(grid.to_ticks(order.protection_price)
                                       if order.protection_price is not None else None))
    if instrument.last_price is not None:
        book.set_last_price(grid.to_ticks(instrument.last_price))
    return CachedBook(book=book, grid=grid, version=version)


@dataclass
class Batch:
    """What one batch changes, gathered while the book runs and written at the end."""

    symbol: str
    grid: engine.Grid
    orders: dict[int, Order] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    events: list[OrderEvent] = field(default_factory=list)
    reports: list[ExecutionReport] = field(default_factory=list)
    trades: list[tuple[Trade, Order, Order]] = field(default_factory=list)
    last_price: Decimal | None = None


def _report(batch: Batch, order: Order, exec_type: str, *, last_qty=None, last_px=None, fee=None, liquidity="",
            reason="") -> None:
    batch.reports.append(ExecutionReport(
        user_id=order.user_id, order_id=order.pk, client_order_id=order.client_order_id, symbol=order.symbol,
        side=order.side, exec_type=exec_type, order_status=order.status, last_qty=last_qty, last_px=last_px,
        cum_qty=order.cum_qty, leaves_qty=order.leaves_qty, avg_px=order.avg_px, fee=fee, liquidity=liquidity,
        reason=reason))


def _event(batch: Batch, order: Order, event_type: str, **extra) -> None:
    batch.events.append(OrderEvent(order=order, type=event_type, data={**order_services.order_state(order), **extra}))


def _load_orders(batch: Batch, ids) -> None:
    missing = sorted(set(ids) - batch.orders.keys())
    if missing:
        for order in Order.objects.select_for_update().filter(pk__in=missing).order_by("pk"):
            batch.orders[order.pk] = order


def _apply(batch: Batch, book: engine.OrderBook, events: list) -> None:
    """Turn the book's events into order states, trades, events and reports (not yet written)."""
    grid = batch.grid
    _load_orders(batch, [e[3] for e in events if e[0] == ev.TRADE] + [e[4] for e in events if e[0] == ev.TRADE])
    for e in events:
        kind = e[0]
        if kind == ev.ACCEPTED:
            order = batch.orders[e[1]]
            order.book_seq = e[2]
            order_services.order_saga_complete(order=order)
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
                else:
                    order.reserved_amount -= qty
                batch.touched.add(order.pk)
            batch.trades.append((trade, buy, sell, take))
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
                        last_px=last.price if last else None, fee=fee, liquidity="maker" if is_maker else "taker")
        elif kind == ev.STOP_TRIGGERED:
            order = batch.orders[e[1]]
            order.stop_triggered = True
            batch.touched.add(order.pk)
            _event(batch, order, OrderEventType.TRIGGERED, last_price=str(grid.to_price(e[3])))
            _report(batch, order, ExecType.TRIGGERED)
        # REPLACED and REJECTED: the database already holds the replace or cancel; the book only caught up.


def _settle(batch: Batch) -> None:
    """Ledger settlement of every trade, then release of what closed orders still hold."""
    if not batch.trades:
        return
    Trade.objects.bulk_create([t for t, _, _, _ in batch.trades])
    users = get_user_model().objects.in_bulk({o.user_id for _, b, s, _ in batch.trades for o in (b, s)})
    for trade, buy, sell, take in batch.trades:
        ledger.trade_settle(buyer=users[buy.user_id], seller=users[sell.user_id], symbol=batch.symbol,
                            qty=trade.qty, price=trade.price, buyer_fee=trade.buyer_fee, seller_fee=trade.seller_fee,
                            reference=f"trade:{trade.pk}", buyer_cash_from_reserved=take)


def _release_closed(batch: Batch) -> None:
    """An order that left the book (filled, canceled by the book) gives back what its reservation still holds."""
    for order in batch.orders.values():
        if order.pk not in batch.touched or order.status not in (OrderStatus.FILLED, OrderStatus.CANCELED):
            continue
        if order.reserved_amount > 0:
            reference = f"order:{order.pk}:{order.status}"
            if order.side == engine.BUY:
                ledger.cash_release(user=order.user, amount=order.reserved_amount, reference=reference)
            else:
                ledger.shares_release(user=order.user, symbol=order.symbol, qty=order.reserved_amount,
                                      reference=reference)
            order.reserved_amount = ZERO


def _compensate(batch: Batch, order: Order, reason: str) -> None:
    """Saga compensation: the order cannot reach the book (symbol halted, book refused it)."""
    order_services.order_compensate(order=order, reason=reason)
    _report(batch, order, ExecType.REJECTED, reason=reason)


def _submit(batch: Batch, book: engine.OrderBook, order: Order, *, qty: Decimal | None = None) -> None:
    grid = batch.grid
    try:
        events = book.submit(
            order.pk, order.user_id, order.side, order.type, order.time_in_force, grid.to_lots(qty or order.qty),
            grid.to_ticks(order.limit_price) if order.limit_price is not None else None,
            grid.to_ticks(order.stop_price) if order.stop_price is not None else None,
            grid.to_ticks(order.protection_price) if order.protection_price is not None else None)
    except engine.EngineError as exc:
        logger.warning("book refused order", extra={"order_id": order.pk, "error": str(exc)})
        _compensate(batch, order, "rejected_by_book")
        return
    _apply(batch, book, events)


def _session(symbol: str) -> tuple[CachedBook, Instrument, BookState]:
    instrument = Instrument.objects.get(symbol=symbol)
    state, _ = BookState.objects.select_for_update().get_or_create(symbol=symbol)
    cached = _books.get(symbol)
    if cached is None or cached.dirty or cached.version != state.version:
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

    for event in outbox_events:
        order = batch.orders.get(int(event.payload["order_id"]))
        if order is None:
            continue
        if event.topic == "order.canceled":
            book.cancel(order.pk)
        elif (event.topic == "order.replaced" and order.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
              and order.saga_state != SagaState.CREATED):
            replace_events = book.replace(
                order.pk, grid.to_lots(order.qty),
                grid.to_ticks(order.limit_price) if order.limit_price is not None else None,
                grid.to_ticks(order.stop_price) if order.stop_price is not None and not order.stop_triggered
                else None)
            if replace_events[0][0] == ev.REJECTED and order.book_seq is None:
                # A book rebuilt from the database does not hold an order whose replace lost its priority:
                # it enters again now, for what is left of it, at the back of the queue.
                _submit(batch, book, order, qty=order.leaves_qty)
            else:
                _apply(batch, book, replace_events)

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

    _persist(batch, state, instrument)
    new_version = state.version

    def _committed() -> None:
        cached.version = new_version
        cached.dirty = False
        _after_commit(symbol, book, grid, batch)

    transaction.on_commit(_committed)


def _persist(batch: Batch, state: BookState, instrument: Instrument) -> None:
    _settle(batch)
    _release_closed(batch)
    touched = [batch.orders[i] for i in sorted(batch.touched) if batch.orders[i].saga_state != SagaState.COMPENSATED]
    now = timezone.now()
    for order in touched:
        order.version += 1
        order.updated_at = now
    if touched:
        Order.objects.bulk_update(touched, ["status", "cum_qty", "leaves_qty", "avg_px", "reserved_amount",
                                            "fees_paid", "book_seq", "stop_triggered", "saga_state", "reason",
                                            "version", "updated_at"])
    # Order events and reports carry the state after the whole batch's change for their order.
    for event in batch.events:
        event.data["version"] = event.order.version
        event.data["reserved_amount"] = str(event.order.reserved_amount)
    OrderEvent.objects.bulk_create(batch.events)
    trade_ids = iter(t.pk for t, _, _, _ in batch.trades)
    for report in batch.reports:
        if report.exec_type == ExecType.TRADE:
            report.trade_id = next(trade_ids, None)
    execution_reports_record(batch.reports)
    state.version += 1
    if batch.last_price is not None:
        state.last_price = batch.last_price
        Instrument.objects.filter(pk=instrument.pk).update(last_price=batch.last_price)
    state.save()
    from .market import market_record_trades  # 1-minute bars commit with their trades

    market_record_trades(symbol=batch.symbol, trades=[t for t, _, _, _ in batch.trades], version=state.version)


def _after_commit(symbol: str, book: engine.OrderBook, grid: engine.Grid, batch: Batch) -> None:
    """Market data hint for live subscribers (at most once; the database is the record)."""
    if batch.last_price is not None:
        from orders.selectors import instrument_cache_invalidate

        instrument_cache_invalidate(symbol)
    try:
        from .market import market_publish

        market_publish(symbol=symbol, book=book, grid=grid, trades=[t for t, _, _, _ in batch.trades])
    except ImportError:
        pass
    except Exception:
        logger.warning("market data push failed", exc_info=True)

