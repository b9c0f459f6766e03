"""Writes behind the Alpaca-compatible API that are more than one native call: cancel all, close positions."""
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.db.models import Q

from orders.errors import OrderError
from orders.models import LIVE_STATUSES, Order, OrderClass, OrderType, Side, TimeInForce
from orders.selectors import instrument_get
from orders.services import OrderRequest, order_cancel, order_place
from portfolios.selectors import balances_for_user

from .errors import AlpacaError, from_order_error, invalid, not_found


@dataclass(frozen=True)
class Outcome:
    """One order of a bulk request, with the HTTP status Alpaca reports for it (207 multi-status)."""

    order_id: int | None
    symbol: str
    status: int
    order: Order | None = None
    error: AlpacaError | None = None


def orders_cancel_all(*, user) -> list[Outcome]:
    """Cancel every open order of the user, held legs included. Each cancel is its own transaction, as each has its
    own outcome; a cancel takes the order's whole class, so the other orders of a class it canceled are reported
    canceled (200) without a cancel of their own."""
    outcomes = []
    open_orders = Order.objects.filter(user=user, status__in=LIVE_STATUSES).order_by("id").values_list(
        "id", "symbol", "parent_id")
    canceled_with_class: dict[int, Order] = {}
    for order_id, symbol, parent_id in open_orders:
        if order_id in canceled_with_class:
            outcomes.append(Outcome(order_id, symbol, 200, order=canceled_with_class[order_id]))
            continue
        try:
            order = order_cancel(user=user, order_id=order_id, version=None, reason="user")
        except OrderError as exc:
            error = from_order_error(exc)
            outcomes.append(Outcome(order_id, symbol, error.status, error=error))
            continue
        outcomes.append(Outcome(order_id, symbol, 200, order=order))
        if order.order_class != OrderClass.SIMPLE:
            first = parent_id or order_id
            canceled_with_class.update(
                (member.pk, member) for member in Order.objects.filter(Q(pk=first) | Q(parent_id=first), user=user))
    return outcomes


def _close_qty(*, available: Decimal, lot_size: Decimal, qty: Decimal | None, percentage: Decimal | None) -> Decimal:
    if qty is not None and percentage is not None:
        raise invalid("only one of qty or percentage may be given")
    if qty is not None:
        if qty <= 0:
            raise invalid("qty must be > 0")
        if qty > available:
            raise AlpacaError(f"insufficient qty available for order (requested: {qty}, available: {available})",
                              status=403)
        return qty
    if percentage is not None:
        if not 0 < percentage <= 100:
            raise invalid("percentage must be > 0 and <= 100")
        wanted = available * percentage / 100
        return (wanted / lot_size).to_integral_value(rounding=ROUND_DOWN) * lot_size
    return available


def position_close(*, user, symbol: str, qty: Decimal | None = None, percentage: Decimal | None = None) -> Order:
    """Sell (part of) a long position with a market day order; shares held by open sell orders are not sold."""
    symbol = symbol.upper()
    holding = balances_for_user(user)["securities"].get(symbol)
    if holding is None or holding["available"] + holding["reserved"] <= 0:
        raise not_found("position does not exist")
    instrument = instrument_get(symbol)
    lot_size = instrument["lot_size"] if instrument else Decimal("1")
    sell_qty = _close_qty(available=holding["available"], lot_size=lot_size, qty=qty, percentage=percentage)
    if sell_qty <= 0:
        raise AlpacaError(f"insufficient qty available for order (requested: 0, available: {holding['available']})",
                          status=403)
    try:
        order, _ = order_place(user=user, request=OrderRequest(
            symbol=symbol, side=Side.SELL, type=OrderType.MARKET, time_in_force=TimeInForce.DAY, qty=sell_qty))
    except OrderError as exc:
        raise from_order_error(exc) from exc
    return order


def positions_close_all(*, user, cancel_orders: bool = False) -> list[Outcome]:
    """Close every position (after cancelling open orders if asked); one outcome per symbol."""
    if cancel_orders:
        orders_cancel_all(user=user)
    outcomes = []
    holdings = balances_for_user(user)["securities"]
    for symbol in sorted(holdings):
        if holdings[symbol]["available"] + holdings[symbol]["reserved"] <= 0:
            continue
        try:
            order = position_close(user=user, symbol=symbol)
        except AlpacaError as exc:
            outcomes.append(Outcome(None, symbol, exc.status, error=exc))
        else:
            outcomes.append(Outcome(order.pk, symbol, 200, order=order))
    return outcomes
