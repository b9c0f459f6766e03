"""The order-book vocabulary: sides, order types, time in force, statuses and reasons, as plain strings."""

# Plain str constants rather than Enum members: the values go straight into events, match the Django
# TextChoices and Alpaca wire values, and compare on CPython's fast exact-str path in the hot loop.

BUY = "buy"
SELL = "sell"
SIDES = frozenset({BUY, SELL})

MARKET = "market"
LIMIT = "limit"
STOP = "stop"
STOP_LIMIT = "stop_limit"
TRAILING_STOP = "trailing_stop"
ORDER_TYPES = frozenset({MARKET, LIMIT, STOP, STOP_LIMIT, TRAILING_STOP})

DAY = "day"
GTC = "gtc"
IOC = "ioc"
FOK = "fok"
TIMES_IN_FORCE = frozenset({DAY, GTC, IOC, FOK})

# Order status as the book sees it; "new" covers both resting and parked (untriggered stop) orders.
NEW = "new"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELED = "canceled"


class CancelReason:
    """Why the book canceled (the remainder of) an order; carried by OrderUpdate.reason."""

    USER = "user"
    IOC = "ioc"
    FOK = "fok"
    SELF_TRADE = "self_trade"
    NO_LIQUIDITY = "market_no_liquidity"
    PROTECTION = "market_protection"
    EXPIRED = "expired"
    OCO = "oco"  # another order of its class closed it (sibling filled, leg closed, parent left unfilled)


class ResizeReason:
    """Why the book changed an open order's quantity; carried by Resized.reason."""

    OCO = "oco"  # its OCO sibling filled: the pair shrinks together
    PARENT_FILL = "parent_fill"  # its parent filled: the leg grows by the fill


class RejectReason:
    """Why the book refused a cancel or replace; carried by Rejected.reason."""

    UNKNOWN_ORDER = "unknown_order"
    TOO_LATE_TO_CANCEL = "too_late_to_cancel"
    INVALID_REPLACE = "invalid_replace"
