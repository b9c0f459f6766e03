"""BrokerX objects in the JSON shapes of the Alpaca Trading API v2 (numbers as strings, ISO 8601 times, UUID ids)."""
from datetime import UTC, date, datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from orders.models import OrderClass
from orders.selectors import order_as_dict

from .. import ids

ASSET_CLASS = "us_equity"
# BrokerX matches orders on its own book, not on a listed exchange: Alpaca's vocabulary calls that OTC.
EXCHANGE = "OTC"
ZERO = Decimal("0")


def num(value) -> str | None:
    """A decimal as Alpaca writes it: a plain string without exponent or trailing zeros ("10", "100.5")."""
    if value is None or value == "":
        return None
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def timestamp(value) -> str | None:
    """RFC 3339 in UTC with a `Z`, as Alpaca writes timestamps."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(str(value))
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def order_json(order: dict, *, asset_id: int | None, legs: list[dict] | None = None) -> dict:
    """An order, from the native fields (a model's attributes or the native JSON of an execution report), with
    `legs` (native fields too) under the first order of a class when they are asked for, as Alpaca nests them.

    Timestamps of the terminal states come from `updated_at`, the order's last change, which is when it reached them.
    A held leg keeps BrokerX's quantity 0 (it grows with the entry's fills) and Alpaca's status `held`.
    """
    status = order["status"]
    updated_at = timestamp(order["updated_at"])
    return {
        "id": ids.encode_str(ids.Kind.ORDER, int(order["id"])),
        "client_order_id": order["client_order_id"],
        "created_at": timestamp(order["created_at"]),
        "updated_at": updated_at,
        "submitted_at": timestamp(order["created_at"]),
        "filled_at": updated_at if status == "filled" else None,
        "expired_at": updated_at if status == "expired" else None,
        "canceled_at": updated_at if status == "canceled" else None,
        "failed_at": updated_at if status == "rejected" else None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": ids.encode_str(ids.Kind.ASSET, asset_id) if asset_id else None,
        "symbol": order["symbol"],
        "asset_class": ASSET_CLASS,
        "notional": num(order.get("notional")),
        "qty": num(order["qty"]),
        "filled_qty": num(order["cum_qty"]) or "0",
        "filled_avg_price": num(order.get("avg_px")),
        "order_class": order.get("order_class") or "simple",
        "order_type": order["type"],
        "type": order["type"],
        "side": order["side"],
        "position_intent": ("buy_to_open" if order["side"] == "buy" else "sell_to_close"),
        "time_in_force": order["time_in_force"],
        "limit_price": num(order.get("limit_price")),
        "stop_price": num(order.get("stop_price")),
        "status": status,
        "extended_hours": False,
        "legs": None if legs is None else [order_json(leg, asset_id=asset_id) for leg in legs],
        "trail_percent": num(order.get("trail_percent")),
        "trail_price": num(order.get("trail_price")),
        "hwm": num(order.get("hwm")),
        "subtag": None,
        "source": None,
        "expires_at": None,
    }


def order_from_model(order, *, with_legs: bool = False) -> dict:
    """An Order; `with_legs`: the first order of a class shows its legs (read through `legs`, so a prefetch of them
    costs no query per order), oldest first."""
    legs = None
    if with_legs and order.order_class != OrderClass.SIMPLE and order.parent_id is None:
        legs = [order_as_dict(leg) for leg in sorted(order.legs.all(), key=lambda leg: leg.pk)]
    return order_json(order_as_dict(order), asset_id=order.instrument_id, legs=legs)


def asset_json(instrument) -> dict:
    """An instrument (model or `orders.selectors.instrument_get` snapshot) as an Alpaca asset."""
    get = instrument.get if isinstance(instrument, dict) else lambda name: getattr(instrument, name)
    tradable = bool(get("is_tradable")) and get("trading_status") != "halted"
    lot = get("lot_size")
    return {
        "id": ids.encode_str(ids.Kind.ASSET, get("id")),
        "class": ASSET_CLASS,
        "exchange": EXCHANGE,
        "symbol": get("symbol"),
        "name": get("name") or get("symbol"),
        "status": "active" if get("is_tradable") else "inactive",
        "tradable": tradable,
        "marginable": False,
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": lot < 1,
        "min_order_size": num(lot),
        "min_trade_increment": num(lot),
        "price_increment": num(get("tick_size")),
        "maintenance_margin_requirement": 100,
        "attributes": [],
    }


def _plpc(pnl: Decimal, basis: Decimal) -> str:
    return num((pnl / basis).quantize(Decimal("0.0000000001"))) if basis else "0"


def position_json(row: dict, *, asset_id: int | None, lastday_price: Decimal | None) -> dict:
    """A row of `portfolios.selectors.portfolio_for_user()["positions"]` as an Alpaca (long) position."""
    price = row["market_price"]
    market_value, cost_basis = row["market_value"], row["cost_basis"]
    unrealized = row["unrealized_pnl"]
    result = {
        "asset_id": ids.encode_str(ids.Kind.ASSET, asset_id) if asset_id else None,
        "symbol": row["symbol"],
        "exchange": EXCHANGE,
        "asset_class": ASSET_CLASS,
        "asset_marginable": False,
        "avg_entry_price": num(row["avg_cost"]),
        "qty": num(row["qty"]),
        "qty_available": num(row["qty_available"]),
        "side": "long",
        "market_value": num(market_value),
        "cost_basis": num(cost_basis),
        "unrealized_pl": num(unrealized),
        "unrealized_plpc": _plpc(unrealized, cost_basis),
        "current_price": num(price),
        "lastday_price": None,
        "change_today": None,
        "unrealized_intraday_pl": None,
        "unrealized_intraday_plpc": None,
    }
    if lastday_price:
        lastday_value = row["qty"] * lastday_price
        result.update({
            "lastday_price": num(lastday_price),
            "change_today": num(((price - lastday_price) / lastday_price).quantize(Decimal("0.0000000001"))),
            "unrealized_intraday_pl": num(market_value - lastday_value),
            "unrealized_intraday_plpc": _plpc(market_value - lastday_value, lastday_value),
        })
    return result


def account_json(user, portfolio: dict) -> dict:
    """The user's trading account: cash is available plus reserved, buying power only what is available."""
    cash = portfolio["cash"] + portfolio["cash_reserved"]
    buying_power = num(portfolio["buying_power"])
    equity = num(portfolio["equity"])
    blocked = user.locked_at is not None or not user.is_active
    return {
        "id": ids.encode_str(ids.Kind.ACCOUNT, user.pk),
        "account_number": f"BX{user.pk:010d}",
        "status": "ACTIVE" if not blocked else "ACCOUNT_CLOSED" if not user.is_active else "DISABLED",
        "crypto_status": None,
        "currency": portfolio["currency"],
        "buying_power": buying_power,
        "regt_buying_power": buying_power,
        "non_marginable_buying_power": buying_power,
        "options_buying_power": "0",
        "cash": num(cash),
        "accrued_fees": "0",
        "pending_transfer_in": num(portfolio["cash_pending"]),
        "pending_transfer_out": "0",
        "portfolio_value": equity,
        "equity": equity,
        "last_equity": equity,
        "long_market_value": num(portfolio["market_value"]),
        "short_market_value": "0",
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "multiplier": "1",
        "shorting_enabled": False,
        "pattern_day_trader": False,
        "daytrade_count": 0,
        "trading_blocked": blocked or user.email_verified_at is None,
        "transfers_blocked": blocked or user.email_verified_at is None,
        "account_blocked": blocked,
        "trade_suspended_by_user": False,
        "created_at": timestamp(user.date_joined),
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def clock_json(*, now: datetime, is_open: bool, next_open: datetime, next_close: datetime) -> dict:
    return {"timestamp": timestamp(now), "is_open": is_open, "next_open": timestamp(next_open),
            "next_close": timestamp(next_close)}


def calendar_day_json(day: date, opens_at: datetime, closes_at: datetime) -> dict:
    """Alpaca writes the day's hours as "HH:MM" (the SDK parses them with the date); times here are UTC."""
    opens_at, closes_at = opens_at.astimezone(UTC), closes_at.astimezone(UTC)
    return {"date": day.isoformat(), "open": f"{opens_at:%H:%M}", "close": f"{closes_at:%H:%M}",
            "session_open": f"{opens_at:%H%M}", "session_close": f"{closes_at:%H%M}",
            "settlement_date": day.isoformat()}


def watchlist_json(watchlist, instruments) -> dict:
    """A watchlist (watchlists.models.Watchlist) with its instruments, in order, as Alpaca assets."""
    return {
        "id": ids.encode_str(ids.Kind.WATCHLIST, watchlist.pk),
        "account_id": ids.encode_str(ids.Kind.ACCOUNT, watchlist.user_id),
        "name": watchlist.name,
        "created_at": timestamp(watchlist.created_at),
        "updated_at": timestamp(watchlist.updated_at),
        "assets": [asset_json(instrument) for instrument in instruments],
    }


def activity_json(activity_id: str, fields: dict, *, account_pk: int) -> dict:
    """An activity of `alpaca_compat.activities` as Alpaca writes it: a FILL with its execution, else a non-trade
    activity (CSD, CSW, FEE, JNLC, JNLS) with its date and net amount."""
    head = {"id": activity_id, "account_id": ids.encode_str(ids.Kind.ACCOUNT, account_pk),
            "activity_type": fields["activity_type"]}
    if fields["activity_type"] == "FILL":
        return {**head, "transaction_time": timestamp(fields["transaction_time"]), "type": fields["type"],
                "price": num(fields["price"]), "qty": num(fields["qty"]), "side": fields["side"],
                "symbol": fields["symbol"], "leaves_qty": num(fields["leaves_qty"]), "cum_qty": num(fields["cum_qty"]),
                "order_id": fields["order_id"], "order_status": fields["order_status"]}
    return {**head, "date": fields["date"].astimezone(UTC).date().isoformat(), "net_amount": num(fields["net_amount"]),
            "description": fields["description"], "status": fields["status"], "symbol": fields.get("symbol"),
            "qty": num(fields.get("qty")), "price": num(fields.get("price")), "per_share_amount": None}


def error_json(code: int, message: str) -> dict:
    return {"code": code, "message": message}
