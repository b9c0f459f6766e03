"""How quantities, prices and cash amounts read in notifications and e-mails (one place, used by both)."""
from decimal import Decimal

CENTS = Decimal("0.01")


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def format_qty(value) -> str:
    """A quantity without trailing zeros: 4.0000 -> "4", 2.5000 -> "2.5"."""
    number = _decimal(value)
    if number is None:
        return ""
    return f"{number.normalize():f}"  # :f, or 100 would read 1E+2


def format_price(value) -> str:
    """A price or cash amount (fee, deposit) with at least 2 decimals: 100.0000 -> "100.00", 100.1250 -> "100.125"."""
    number = _decimal(value)
    if number is None:
        return ""
    number = number.normalize()
    if number.as_tuple().exponent > -2:
        number = number.quantize(CENTS)
    return f"{number:f}"
