"""Writes of the orders context: place, replace, cancel, expire, and the saga's compensation."""
import contextlib
import uuid
from dataclasses import dataclass, replace
from decimal import ROUND_UP, Decimal

from django.apps import apps
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from brokerx.db import retry_deadlocks
from notifications.services import ReportDraft, execution_reports_record
from outbox.services import EventDraft, kick_after_commit, kick_now, outbox_emit, outbox_emit_many
from portfolios import services as ledger
from portfolios.errors import InsufficientFunds

from . import checks
from .calendar import last_session_close
from .errors import OrderNotFound, OrderNotOpen, OrderRejected, StaleOrderVersion
from .fees import max_fee_for
from .locks import MATCHING_QUEUE, lock_book, lock_order
from .metrics import orders_rejected, saga_compensations, saga_completed, saga_started
from .models import (
    LIVE_STATUSES,
    OPEN_STATUSES,
    ORDER_STATE_FIELDS,
    Instrument,
    Order,
    OrderClass,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    OrderType,
    SagaState,
    Side,
    TimeInForce,
)
from .selectors import instrument_cache_invalidate, instrument_get, order_as_dict, order_state

MONEY = Decimal("0.0001")
# Plain strings, for the checks every order makes and the value it binds (an enum member costs more at both).
_SIMPLE, _TRAILING_STOP = OrderClass.SIMPLE.value, OrderType.TRAILING_STOP.value


def _record(order: Order, event_type: str, **extra) -> OrderEvent:
    return OrderEvent.objects.create(order=order, type=event_type, data={**order_state(order), **extra})


def _report(order: Order, exec_type: str, *, reason: str = "") -> None:
    """An execution report on the owner's private stream (numbered and pushed after commit)."""
    execution_reports_record([ReportDraft(
        user_id=order.user_id, order_id=order.pk, client_order_id=order.client_order_id, symbol=order.symbol,
        side=order.side, exec_type=exec_type, order_status=order.status, cum_qty=order.cum_qty,
        leaves_qty=order.leaves_qty, avg_px=order.avg_px, reason=reason)], orders={order.pk: order_as_dict(order)})


def _emit_to_matching(order: Order, topic: str, **extra) -> None:
    outbox_emit(topic=topic, payload={"order_id": order.pk, "symbol": order.symbol, "version": order.version, **extra},
                aggregate_type="order", aggregate_id=order.pk, partition_key=order.symbol, queue=MATCHING_QUEUE)


def buy_reservation(qty: Decimal, price: Decimal) -> Decimal:
    """Cash held for a buy: its worst-case notional plus the taker fee on it."""
    notional = qty * price
    return (notional + max_fee_for(notional)).quantize(MONEY)


@dataclass(frozen=True)
class OrderRequest:
    """An order as asked for: a quantity, or (market day orders on a fractionable instrument) an amount of money,
    `notional`, which the checks turn into the quantity (`order_check_against`)."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None
    notional: Decimal | None = None
    order_class: str = _SIMPLE
    # The legs of a bracket, oto or oco: take-profit limit, stop-loss stop (and limit: a stop-limit leg).
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    stop_loss_limit: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None

    def __post_init__(self):
        if self.limit_price is None and self.order_class == OrderClass.OCO:
            # An OCO pair's first order is its take-profit: the limit price may be given either way.
            object.__setattr__(self, "limit_price", self.take_profit)


def trail_start(instrument: dict, *, side: str, trail_price: Decimal | None, trail_percent: Decimal | None) -> Decimal:
    """Where a trailing stop's stop starts: the trail away from the last trade price, rounded away from it to the
    tick (the engine's rule, matching/engine/README.md)."""
    mark, tick = instrument["last_price"], instrument["tick_size"]
    offset = trail_price if trail_price is not None else (
        (mark * trail_percent / 100 / tick).to_integral_value(rounding=ROUND_UP) * tick)
    return mark - offset if side == Side.SELL else mark + offset


def _reservation_price(instrument: dict, request: OrderRequest) -> Decimal:
    if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return request.limit_price
    if request.type in (OrderType.STOP, OrderType.TRAILING_STOP):
        # Once triggered it trades like a market order bounded by a band around its stop price (a trailing buy's
        # stop only comes down from where it starts).
        stop = request.stop_price if request.type == OrderType.STOP else trail_start(
            instrument, side=request.side, trail_price=request.trail_price, trail_percent=request.trail_percent)
        width = instrument["reference_price"] * instrument["price_band_pct"]
        tick = instrument["tick_size"]
        edge = stop + width if request.side == Side.BUY else max(stop - width, tick)
        return (edge / tick).to_integral_value() * tick
    return checks.protection_price(instrument, request.side)


def order_check(*, request: OrderRequest) -> tuple[dict, Decimal, OrderRequest]:
    """Every pre-trade check that needs no lock; returns the instrument, the protection/reservation price and the
    request with its quantity (a notional order's, worked out here)."""
    return order_check_against(instrument_get(request.symbol), request=request)


def order_check_against(instrument: dict | None, *,
                        request: OrderRequest) -> tuple[dict, Decimal, OrderRequest]:
    """`order_check` with the instrument already read (None: unknown symbol)."""
    try:
        instrument = checks.check_instrument_tradable(instrument, request.symbol)
        checks.check_order_shape(type=request.type, time_in_force=request.time_in_force,
                                 limit_price=request.limit_price, stop_price=request.stop_price)
        if request.notional is not None:
            # The one place a notional becomes a quantity: sized at the price the market order's protection and
            # reservation use, so a buy's reservation covers its fill and it never spends more than the notional.
            checks.check_notional_order(instrument, type=request.type, time_in_force=request.time_in_force)
            request = replace(request, qty=checks.notional_qty(
                instrument, notional=request.notional, price=checks.protection_price(instrument, request.side)))
        if (request.order_class != _SIMPLE or request.take_profit is not None or request.stop_loss is not None
                or request.trail_price is not None or request.trail_percent is not None
                or request.type == _TRAILING_STOP or request.stop_loss_limit is not None):
            checks.check_order_class(
                instrument, order_class=request.order_class, side=request.side, type=request.type,
                time_in_force=request.time_in_force, limit_price=request.limit_price,
                take_profit=request.take_profit, stop_loss=request.stop_loss, stop_loss_limit=request.stop_loss_limit,
                trail_price=request.trail_price, trail_percent=request.trail_percent)
        prices = [p for p in (request.limit_price, request.stop_price, request.take_profit, request.stop_loss,
                              request.stop_loss_limit) if p is not None]
        checks.check_grid(instrument, qty=request.qty, prices=prices)
        checks.check_price_band(instrument, prices)
        price = _reservation_price(instrument, request)
        checks.check_notional(instrument, request.qty * price)
    except OrderRejected as exc:
        orders_rejected.labels(exc.code).inc()
        raise
    return instrument, price, request


@dataclass(frozen=True)
class Placement:
    """What orders_place is asked to write for one checked request (its parameters, and the order they make)."""

    user_id: int
    request: OrderRequest
    instrument: dict
    protection: Decimal | None
    reserve: Decimal
    asset: str
    now: object

    @classmethod
    def of(cls, *, user_id: int, request: OrderRequest, instrument: dict, price: Decimal) -> "Placement":
        protection = price if request.type in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP) else None
        if request.side == Side.BUY:
            reserve, asset = buy_reservation(request.qty, price), ledger.ledger_currency()
        else:
            reserve, asset = request.qty, instrument["symbol"]
        return cls(user_id=user_id, request=request, instrument=instrument, protection=protection, reserve=reserve,
                   asset=asset, now=timezone.now())

    def params(self) -> list:
        r = self.request
        return [self.user_id, self.instrument["id"], self.instrument["symbol"], r.client_order_id or None, r.side,
                r.type, r.time_in_force, r.qty, r.notional, r.limit_price, r.stop_price, self.protection, self.reserve,
                self.asset, MATCHING_QUEUE, self.now, r.order_class, r.trail_price, r.trail_percent]

    def refusal(self, exc: Exception) -> OrderRejected | None:
        """The rejection for orders_place's short-of-cash-or-shares error (SQLSTATE BX001); None for others."""
        if getattr(getattr(exc, "diag", None), "sqlstate", None) != "BX001":
            return None
        buy = self.request.side == Side.BUY
        code = "insufficient_buying_power" if buy else "insufficient_shares"
        orders_rejected.labels(code).inc()
        message = ("Not enough buying power for this order." if buy
                   else "Not enough unreserved shares to sell (no short selling).")
        return OrderRejected(message, code=code, details={"available": exc.diag.message_detail,
                                                          "required": str(self.reserve)})

    def submitted(self, *, committed: bool = False) -> None:
        """Wake the symbol's matching worker once the order is committed (now, if it already is); count the saga."""
        if committed:
            kick_now(MATCHING_QUEUE, self.instrument["symbol"])
        else:
            kick_matching(self.instrument["symbol"])
        saga_started.inc()


def order_place(*, user, request: OrderRequest) -> tuple[Order, bool]:
    """Validate -> reserve -> create in one statement (one round trip); `submit` follows through the outbox.

    Returns (order, created): the row the statement wrote, or for a repeated client_order_id the existing
    order, unchanged. The database part is the function orders_place (orders/sql/orders_place.sql): replay
    check, order row, outbox event, reservation entry with the lock and check of available cash or shares.
    """
    instrument, price, request = order_check(request=request)
    placement = Placement.of(user_id=user.pk, request=request, instrument=instrument, price=price)
    simple = request.order_class == _SIMPLE
    try:
        with contextlib.nullcontext() if simple else transaction.atomic():
            created, order = _orders_place(placement.params())
            if created and not simple:
                _legs_create(order, request)
    except DatabaseError as exc:
        refusal = placement.refusal(exc.__cause__)
        if refusal is None:
            raise
        raise refusal from exc
    if created:
        placement.submitted()
    return order, created


def _legs_create(parent: Order, request: OrderRequest) -> list[Order]:
    """The legs of a class, written with its first order (their order.created is the first order's: matching
    submits the class as one). A bracket's or an OTO's legs are held, quantity 0, until the entry fills; an OCO
    pair's stop-loss is open at once for the same quantity, drawing on the first order's reservation."""
    held = request.order_class != OrderClass.OCO
    qty = Decimal("0") if held else request.qty
    specs = []
    if request.take_profit is not None and request.order_class != OrderClass.OCO:
        specs.append((OrderType.LIMIT, request.take_profit, None))
    if request.stop_loss is not None:
        specs.append((OrderType.STOP_LIMIT if request.stop_loss_limit is not None else OrderType.STOP,
                      request.stop_loss_limit, request.stop_loss))
    legs = [Order(user_id=parent.user_id, instrument_id=parent.instrument_id, symbol=parent.symbol,
                  client_order_id=str(uuid.uuid4()), side=Side.SELL, type=order_type,
                  time_in_force=parent.time_in_force, qty=qty, limit_price=limit, stop_price=stop,
                  status=OrderStatus.HELD if held else OrderStatus.NEW, leaves_qty=qty, order_class=parent.order_class,
                  parent=parent, created_at=parent.created_at, updated_at=parent.updated_at)
            for order_type, limit, stop in specs]
    Order.objects.bulk_create(legs)
    OrderEvent.objects.bulk_create([OrderEvent(order=leg, type=OrderEventType.ACCEPTED,
                                               data={**order_state(leg), "saga": "created"}) for leg in legs])
    return legs


def _accepted_event_data_sql(row: str) -> str:
    """jsonb of ORDER_STATE_FIELDS of `row` (an orders_order), as `order_state` writes them: decimals as text."""
    def value(name: str) -> str:
        field = Order._meta.get_field(name)
        column = f"({row}).{field.column}"
        return f"{column}::text" if field.get_internal_type() == "DecimalField" else column

    return "jsonb_build_object({}, 'saga', 'created')".format(
        ", ".join(f"'{name}', {value(name)}" for name in ORDER_STATE_FIELDS))


# The accept statement: orders_place, then the order's `accepted` event, from the row orders_place returns
# (the row it wrote, or the existing order of a repeated client_order_id); the columns in the model's order.
_ORDER_COLUMNS = [field.column for field in Order._meta.concrete_fields]
_ORDER_ATTNAMES = [field.attname for field in Order._meta.concrete_fields]
ACCEPT_SQL = f"""
WITH placed AS (SELECT * FROM orders_place({", ".join(["%s"] * 19)})),
accepted AS (
    INSERT INTO orders_orderevent (order_id, type, data, created_at)
    SELECT (p.placed).id, 'accepted', {_accepted_event_data_sql("p.placed")}, (p.placed).created_at
      FROM placed p WHERE p.created)
SELECT p.created, {", ".join(f"(p.placed).{column}" for column in _ORDER_COLUMNS)} FROM placed p
"""  # noqa: S608 (made of the model's own column names, no input)


@retry_deadlocks
def _orders_place(params: list) -> tuple[bool, Order]:
    """Run the accept statement: in autocommit it is its own transaction (run again if Postgres picks it to break
    a deadlock); inside a caller's transaction a savepoint keeps a refusal from aborting it."""
    scope = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with scope, connection.cursor() as cursor:
        cursor.execute(ACCEPT_SQL, params)
        created, *values = cursor.fetchone()
    return created, Order.from_db(connection.alias, _ORDER_ATTNAMES, values)


def kick_matching(symbol: str) -> None:
    """Ask the symbol's matching worker to drain, after the current transaction commits."""
    kick_after_commit(MATCHING_QUEUE, symbol)


def _release_reservation(order: Order, *, reason: str) -> None:
    if order.reserved_amount > 0:
        reference = f"order:{order.pk}:{reason}"
        if order.side == Side.BUY:
            ledger.cash_release(user=order.user, amount=order.reserved_amount, reference=reference)
        else:
            ledger.shares_release(user=order.user, symbol=order.symbol, qty=order.reserved_amount, reference=reference)
        order.reserved_amount = Decimal("0")


def _locked_open_order(*, user, order_id: int, version: int | None, statuses=OPEN_STATUSES) -> Order:
    order = Order.objects.filter(user=user, pk=order_id).only("symbol").first()
    if order is None:
        raise OrderNotFound("Order not found.")
    lock_book(order.symbol)
    order = lock_order(order_id, user=user)
    if order.status not in statuses:
        raise OrderNotOpen(f"The order is {order.status}; it can no longer change.", current=order)
    if version is not None and version != order.version:
        raise StaleOrderVersion("The order changed since you read it.", current=order)
    return order


@retry_deadlocks
def order_cancel(*, user, order_id: int, version: int | None, reason: str = "user") -> Order:
    """Cancel the unfilled part and release exactly its reservation; an order of a class takes its class along
    (every open order and held leg of it, as the book does)."""
    with transaction.atomic():
        order = _locked_open_order(user=user, order_id=order_id, version=version, statuses=LIVE_STATUSES)
        for member in [order, *class_others(order)]:
            _close(member, status=OrderStatus.CANCELED, reason=reason, event_type=OrderEventType.CANCELED)
    return order


def class_others(order: Order) -> list[Order]:
    """The other open orders and held legs of the order's class, locked (the caller holds the book's lock)."""
    if order.order_class == OrderClass.SIMPLE:
        return []
    root = order.parent_id or order.pk
    return list(Order.objects.select_for_update().filter(Q(pk=root) | Q(parent_id=root), status__in=LIVE_STATUSES)
                .exclude(pk=order.pk).order_by("pk"))


def _close(order: Order, *, status: str, reason: str, event_type: str) -> None:
    _release_reservation(order, reason=reason)
    order.status = status
    order.reason = reason
    order.leaves_qty = Decimal("0")
    order.version += 1
    if order.saga_state == SagaState.CREATED:
        # Closed before matching took it (its order.created still pending): the saga ends here, completed by
        # the close, not compensated (nothing failed); matching then skips the order.created of a closed order.
        order_saga_complete(order=order)
    order.save(update_fields=["status", "reason", "leaves_qty", "reserved_amount", "version", "saga_state",
                              "updated_at"])
    _record(order, event_type)
    _report(order, "expired" if status == OrderStatus.EXPIRED else "canceled", reason=reason)
    _emit_to_matching(order, "order.canceled")


@retry_deadlocks
def order_replace(*, user, order_id: int, version: int | None, qty: Decimal | None = None,
                  limit_price: Decimal | None = None, stop_price: Decimal | None = None,
                  time_in_force: str | None = None, trail_price: Decimal | None = None,
                  trail_percent: Decimal | None = None) -> Order:
    """Replace quantity (the new total), prices, a trailing stop's trail or time in force; the reservation follows
    the remaining quantity. The legs of a class keep the quantity and the reservation the class gives them."""
    with transaction.atomic():
        order = _locked_open_order(user=user, order_id=order_id, version=version, statuses=LIVE_STATUSES)
        if order.status == OrderStatus.HELD:
            raise OrderRejected("A leg can be changed once its entry has filled.", code="leg_held")
        if order.type == OrderType.MARKET:
            raise OrderRejected("Market orders cannot be replaced.", code="not_replaceable")
        class_leg = order.order_class != OrderClass.SIMPLE and order.side == Side.SELL
        if class_leg and qty is not None and qty != order.qty:
            raise OrderRejected("The quantity of a leg follows its class.", code="class_qty")
        if class_leg and time_in_force is not None and time_in_force != order.time_in_force:
            raise OrderRejected("The legs of a class keep its time in force.", code="not_replaceable")
        new_qty = order.qty if qty is None else qty
        new_limit = order.limit_price if limit_price is None else limit_price
        new_stop = order.stop_price if stop_price is None else stop_price
        new_tif = time_in_force or order.time_in_force
        if limit_price is not None and order.type not in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            raise OrderRejected("limit_price applies to limit and stop_limit orders.", code="unexpected_limit_price")
        if stop_price is not None and order.type not in (OrderType.STOP, OrderType.STOP_LIMIT):
            raise OrderRejected("stop_price applies to stop and stop_limit orders.", code="unexpected_stop_price")
        trail = trail_price is not None or trail_percent is not None
        if trail and order.type != OrderType.TRAILING_STOP:
            raise OrderRejected("trail_price and trail_percent apply to trailing_stop orders.", code="invalid_trail")
        new_trail_price, new_trail_percent = (trail_price, trail_percent) if trail else (
            order.trail_price, order.trail_percent)
        if new_qty <= order.cum_qty:
            raise OrderRejected("The new quantity must exceed the quantity already filled.", code="qty_below_filled",
                                details={"cum_qty": str(order.cum_qty)})
        if new_tif in (TimeInForce.IOC, TimeInForce.FOK) or order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            raise OrderRejected("Immediate orders cannot be replaced.", code="not_replaceable")
        trailing = order.type == OrderType.TRAILING_STOP
        request = OrderRequest(symbol=order.symbol, side=order.side, type=order.type, time_in_force=new_tif,
                               qty=new_qty, limit_price=new_limit, stop_price=None if trailing else new_stop,
                               trail_price=new_trail_price, trail_percent=new_trail_percent)
        instrument, price, _ = order_check(request=request)
        new_leaves = new_qty - order.cum_qty
        if class_leg:
            required = order.reserved_amount
        else:
            required = buy_reservation(new_leaves, price) if order.side == Side.BUY else new_leaves
        delta = required - order.reserved_amount
        reference = f"order:{order.pk}:replace:{order.version + 1}"
        try:
            if delta > 0:
                if order.side == Side.BUY:
                    ledger.cash_reserve(user=user, amount=delta, reference=reference)
                else:
                    ledger.shares_reserve(user=user, symbol=order.symbol, qty=delta, reference=reference)
            elif delta < 0:
                if order.side == Side.BUY:
                    ledger.cash_release(user=user, amount=-delta, reference=reference)
                else:
                    ledger.shares_release(user=user, symbol=order.symbol, qty=-delta, reference=reference)
        except InsufficientFunds as exc:
            code = "insufficient_buying_power" if order.side == Side.BUY else "insufficient_shares"
            raise OrderRejected("Not enough buying power or shares for the larger order.", code=code,
                                details=exc.details) from exc
        priority_lost = (new_qty > order.qty or new_limit != order.limit_price or new_stop != order.stop_price
                         or (new_trail_price, new_trail_percent) != (order.trail_price, order.trail_percent))
        order.qty, order.leaves_qty = new_qty, new_leaves
        order.limit_price, order.stop_price, order.time_in_force = new_limit, new_stop, new_tif
        order.trail_price, order.trail_percent = new_trail_price, new_trail_percent
        if order.type in (OrderType.STOP, OrderType.TRAILING_STOP):
            order.protection_price = price
        order.reserved_amount = required
        if priority_lost:
            # Its old place in the queue is gone; matching gives it a new one when it takes the replace.
            order.book_seq = None
        order.version += 1
        order.save(update_fields=["qty", "leaves_qty", "limit_price", "stop_price", "time_in_force",
                                  "protection_price", "trail_price", "trail_percent", "reserved_amount", "book_seq",
                                  "version", "updated_at"])
        _record(order, OrderEventType.REPLACED, priority_lost=priority_lost)
        _report(order, "replaced")
        _emit_to_matching(order, "order.replaced", priority_lost=priority_lost)
    return order


def order_compensate(*, order: Order, reason: str) -> None:
    """Saga compensation, called by matching inside its transaction with the order locked: release and cancel."""
    _release_reservation(order, reason=reason)
    order.status = OrderStatus.CANCELED if order.cum_qty > 0 else OrderStatus.REJECTED
    order.reason = reason
    order.leaves_qty = Decimal("0")
    order.saga_state = SagaState.COMPENSATED
    order.version += 1
    order.save(update_fields=["status", "reason", "leaves_qty", "reserved_amount", "saga_state", "version",
                              "updated_at"])
    _record(order, OrderEventType.REJECTED if order.status == OrderStatus.REJECTED else OrderEventType.CANCELED,
            saga="compensated")
    outbox_emit(topic="saga.compensated", payload={"order_id": order.pk, "reason": reason},
                aggregate_type="order", aggregate_id=order.pk)
    transaction.on_commit(lambda: (saga_compensations.inc(), saga_completed.labels("compensated").inc()))


def order_saga_complete(*, order: Order, events: list | None = None) -> None:
    """The order reached the book (or finished there): the saga is done. Called by matching in its transaction.

    A batch writer passes `events` to collect the `saga.completed` outbox events and insert them together (and
    counts its completions itself, once per batch, with `saga_completed_count`).
    """
    if order.saga_state in (SagaState.COMPLETED, SagaState.COMPENSATED):
        return
    order.saga_state = SagaState.COMPLETED
    event = EventDraft(topic="saga.completed", payload={"order_id": order.pk}, aggregate_type="order",
                       aggregate_id=order.pk)
    if events is None:
        outbox_emit_many([event])
        saga_completed_count(1)
    else:
        events.append(event)


def saga_completed_count(count: int) -> None:
    """Count `count` completed sagas once the transaction that completed them commits."""
    if count:
        transaction.on_commit(lambda: saga_completed.labels("completed").inc(count))


def orders_expire_day(*, now=None, session_close=None) -> int:
    """Expire open day orders created before the last session close, releasing their reservations."""
    now = now or timezone.now()
    close = session_close or last_session_close(now)
    if close is None:
        return 0
    expired = 0
    candidates = list(Order.objects.filter(time_in_force=TimeInForce.DAY, status__in=LIVE_STATUSES,
                                           created_at__lt=close).values_list("pk", "user_id", "symbol"))
    for order_id, _user_id, symbol in candidates:
        with transaction.atomic():
            lock_book(symbol)
            order = lock_order(order_id)
            if order is None or order.status not in LIVE_STATUSES:
                continue
            _close(order, status=OrderStatus.EXPIRED, reason="day_order_expired", event_type=OrderEventType.EXPIRED)
            expired += 1
    return expired


def instruments_record_close(*, now=None) -> int:
    """Record each instrument's price at the last session close as its `previous_close`, once per session.

    The closing price is the symbol's last trade at or before the close (trading may go on after it), else its last
    or reference price. Run by the session task every minute; an instrument already closed for that session is
    skipped, so repeated runs write nothing. Each instrument is its own statement, so no matching batch waits on
    a lock of another symbol's row. Trades are read through the app registry: matching depends on orders.
    """
    now = now or timezone.now()
    close = last_session_close(now)
    if close is None:
        return 0
    day = timezone.localtime(close).date()
    trades = apps.get_model("matching", "Trade").objects
    recorded = 0
    due = Instrument.objects.filter(Q(previous_close_date__isnull=True) | Q(previous_close_date__lt=day))
    for pk, symbol, last, reference in due.values_list("pk", "symbol", "last_price", "reference_price"):
        traded = (trades.filter(symbol=symbol, executed_at__lte=close).order_by("-id")
                  .values_list("price", flat=True).first())
        price = traded if traded is not None else last if last is not None else reference
        recorded += Instrument.objects.filter(pk=pk).filter(
            Q(previous_close_date__isnull=True) | Q(previous_close_date__lt=day)).update(
            previous_close=price, previous_close_date=day)
    return recorded


def instrument_set_status(*, symbol: str, status: str, staff=None) -> None:
    """Halt or resume a symbol; caches are invalidated after commit and matching compensates halted orders."""
    with transaction.atomic():
        updated = Instrument.objects.filter(symbol=symbol).update(trading_status=status, updated_at=timezone.now())
        if not updated:
            raise OrderNotFound(f"Unknown symbol {symbol}.")
        outbox_emit(topic="instrument.status_changed", payload={"symbol": symbol, "status": status,
                                                                "staff_id": getattr(staff, "pk", None)},
                    aggregate_type="instrument", aggregate_id=symbol)
        transaction.on_commit(lambda: instrument_cache_invalidate(symbol))
