"""Pre-trade checks: each refuses an order with its own code before anything is written."""
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from .errors import OrderRejected
from .models import OrderClass, OrderType, Side, TimeInForce, TradingStatus

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


def check_order_class(instrument: dict, *, order_class: str, side: str, type: str, time_in_force: str,
                      limit_price: Decimal | None, take_profit: Decimal | None, stop_loss: Decimal | None,
                      stop_loss_limit: Decimal | None, trail_price: Decimal | None,
                      trail_percent: Decimal | None) -> None:
    """An order class's and a trailing stop's own rules (matching/engine/README.md, "Contingent orders").

    Exits are sells of a long position, as there is no short selling: a bracket's or an OTO's entry buys, an OCO
    pair sells. Take-profit above stop-loss, and around a limit entry's price.
    """
    trailing = type == OrderType.TRAILING_STOP
    if trailing != (trail_price is not None or trail_percent is not None):
        raise OrderRejected("trail_price or trail_percent go with a trailing_stop order, which needs one.",
                            code="invalid_trail")
    if trailing:
        if (trail_price is None) == (trail_percent is None):
            raise OrderRejected("Give one of trail_price and trail_percent.", code="invalid_trail")
        if trail_percent is not None and not (0 < trail_percent < 100 and _on_grid(trail_percent, Decimal("0.01"))):
            raise OrderRejected("trail_percent is a percentage above 0 and below 100, to 0.01.", code="invalid_trail")
        if trail_price is not None and not _on_grid(trail_price, instrument["tick_size"]):
            raise OrderRejected(f"trail_price must be a multiple of the tick size {instrument['tick_size']}.",
                                code="invalid_tick_size", details={"tick_size": str(instrument["tick_size"])})
        if instrument["last_price"] is None:
            raise OrderRejected("A trailing stop starts from the last trade price; this symbol has not traded yet.",
                                code="no_last_price")
        if trail_price is not None and side == Side.SELL and trail_price >= instrument["last_price"]:
            raise OrderRejected("trail_price must be below the last trade price.", code="invalid_trail")
    has_legs = take_profit is not None or stop_loss is not None
    if order_class == OrderClass.SIMPLE:
        if has_legs or stop_loss_limit is not None:
            raise OrderRejected("take_profit and stop_loss go with order_class bracket, oco or oto.",
                                code="unexpected_legs")
        return
    if trailing:
        raise OrderRejected("A trailing stop is a simple order.", code="invalid_order_class")
    if time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        raise OrderRejected("Orders with legs are day or gtc.", code="invalid_time_in_force")
    if stop_loss_limit is not None and stop_loss is None:
        raise OrderRejected("stop_loss.limit_price needs stop_loss.stop_price.", code="missing_stop_price")
    if order_class == OrderClass.OCO:
        if side != Side.SELL or type != OrderType.LIMIT:
            raise OrderRejected("An OCO pair is a limit sell (take-profit) with a stop-loss: the two exits of a "
                                "position.", code="invalid_order_class")
        if take_profit is not None and limit_price != take_profit:
            raise OrderRejected("An OCO order's limit_price is its take_profit.limit_price.", code="invalid_legs")
    else:
        if side != Side.BUY or type not in (OrderType.MARKET, OrderType.LIMIT):
            raise OrderRejected(f"A {order_class} entry is a market or limit buy; its legs sell (no short selling).",
                                code="invalid_order_class")
    if order_class == OrderClass.OTO:
        if take_profit is not None and stop_loss is not None:
            raise OrderRejected("An OTO has one leg: take_profit or stop_loss.", code="invalid_order_class")
        if not has_legs:
            raise OrderRejected("An OTO needs take_profit or stop_loss.", code="missing_legs")
    elif take_profit is None or stop_loss is None:
        raise OrderRejected(f"A {order_class} order needs take_profit.limit_price and stop_loss.stop_price.",
                            code="missing_legs")
    if take_profit is not None and stop_loss is not None and not take_profit > stop_loss:
        raise OrderRejected("take_profit.limit_price must be above stop_loss.stop_price.", code="invalid_legs")
    if order_class != OrderClass.OCO and limit_price is not None:
        if take_profit is not None and not take_profit > limit_price:
            raise OrderRejected("take_profit.limit_price must be above the entry's limit_price.", code="invalid_legs")
        if stop_loss is not None and not stop_loss < limit_price:
            raise OrderRejected("stop_loss.stop_price must be below the entry's limit_price.", code="invalid_legs")
