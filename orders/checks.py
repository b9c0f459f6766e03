"""Pre-trade checks: each refuses an order with its own code before anything is written."""
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from .errors import OrderRejected
from .models import OrderType, Side, TimeInForce, TradingStatus

CENT = Decimal("0.01")


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return (value / step) == (value / step).to_integral_value()


def check_instrument_tradable(instrument: dict | None, symbol: str) -> dict:
    if instrument is None:
        raise OrderRejected(f"Unknown symbol {symbol}.", code="unknown_symbol", details={"symbol": symbol})
    if not instrument["is_tradable"]:
        raise OrderRejected(f"{symbol} is not tradable.", code="symbol_not_tradable", details={"symbol": symbol})
    if instrument["trading_status"] == TradingStatus.HALTED:
        raise OrderRejected(f"Trading in {symbol} is halted.", code="symbol_halted", details={"symbol": symbol})
    return instrument


def check_order_shape(*, type: str, time_in_force: str, limit_price: Decimal | None,
                      stop_price: Decimal | None) -> None:
    needs_limit = type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_limit and limit_price is None:
        raise OrderRejected("limit_price is required for this order type.", code="missing_limit_price")
    if not needs_limit and limit_price is not None:
        raise OrderRejected("limit_price is only allowed on limit and stop_limit orders.",
                            code="unexpected_limit_price")
    if needs_stop and stop_price is None:
        raise OrderRejected("stop_price is required for this order type.", code="missing_stop_price")
    if not needs_stop and stop_price is not None:
        raise OrderRejected("stop_price is only allowed on stop and stop_limit orders.", code="unexpected_stop_price")
    if type == OrderType.MARKET and time_in_force == TimeInForce.GTC:
        raise OrderRejected("Market orders cannot be good-till-canceled.", code="invalid_time_in_force")


def check_grid(instrument: dict, *, qty: Decimal, prices: list[Decimal]) -> None:
    if qty <= 0:
        raise OrderRejected("qty must be positive.", code="invalid_qty")
    if not _on_grid(qty, instrument["lot_size"]):
        raise OrderRejected(f"qty must be a multiple of the lot size {instrument['lot_size']}.",
                            code="invalid_lot_size", details={"lot_size": str(instrument["lot_size"])})
    if qty > instrument["max_order_qty"]:
        raise OrderRejected("qty exceeds the maximum order size.", code="max_qty_exceeded",
                            details={"max_order_qty": str(instrument["max_order_qty"])})
    for price in prices:
        if price <= 0:
            raise OrderRejected("Prices must be positive.", code="invalid_price")
        if not _on_grid(price, instrument["tick_size"]):
            raise OrderRejected(f"Prices must be multiples of the tick size {instrument['tick_size']}.",
                                code="invalid_tick_size", details={"tick_size": str(instrument["tick_size"])})


def price_band(instrument: dict) -> tuple[Decimal, Decimal]:
    reference = instrument["reference_price"]
    width = reference * instrument["price_band_pct"]
    tick = instrument["tick_size"]
    low = ((reference - width) / tick).to_integral_value(rounding=ROUND_UP) * tick
    high = ((reference + width) / tick).to_integral_value(rounding=ROUND_DOWN) * tick
    return max(low, tick), high


def check_price_band(instrument: dict, prices: list[Decimal]) -> None:
    low, high = price_band(instrument)
    for price in prices:
        if not low <= price <= high:
            raise OrderRejected(f"Price {price} is outside the band {low}-{high}.", code="price_out_of_band",
                                details={"band_low": str(low), "band_high": str(high)})


def protection_price(instrument: dict, side: str) -> Decimal:
    """How far a market order may walk the book: the edge of the price band on its side."""
    low, high = price_band(instrument)
    return high if side == Side.BUY else low


def check_notional_order(instrument: dict, *, type: str, time_in_force: str) -> None:
    """An order given as an amount of money: a market day order, on an instrument traded in fractions of a share."""
    if type != OrderType.MARKET or time_in_force != TimeInForce.DAY:
        raise OrderRejected("Notional orders must be market orders with time in force day; give qty otherwise.",
                            code="notional_not_supported", details={"type": type, "time_in_force": time_in_force})
    if instrument["lot_size"] >= 1:
        raise OrderRejected(f"{instrument['symbol']} trades in whole lots of {instrument['lot_size']}: give qty, "
                            f"not notional.", code="not_fractionable",
                            details={"lot_size": str(instrument["lot_size"])})


def notional_qty(instrument: dict, *, notional: Decimal, price: Decimal) -> Decimal:
    """The quantity `notional` pays for at `price`, rounded down to the lot size (never more than it pays for)."""
    lot = instrument["lot_size"]
    qty = (notional // (price * lot)) * lot  # Decimal // is exact: no rounding up at a lot boundary
    if qty <= 0:
        smallest = (price * lot).quantize(CENT, rounding=ROUND_UP)
        raise OrderRejected(f"{notional} is less than one lot ({lot}) at {price}; the smallest notional is "
                            f"{smallest}.", code="notional_too_small",
                            details={"notional": str(notional), "min_notional": str(smallest), "price": str(price),
                                     "lot_size": str(lot)})
    return qty


def check_notional(instrument: dict, notional: Decimal) -> None:
    if notional > instrument["max_order_notional"]:
        raise OrderRejected("Order value exceeds the maximum notional.", code="max_notional_exceeded",
                            details={"max_order_notional": str(instrument["max_order_notional"]),
                                     "notional": str(notional)})
