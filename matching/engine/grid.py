"""Converts Decimal prices and quantities to the book's integer ticks and lots and back, at the edge."""

from decimal import Decimal, InvalidOperation

from .errors import OffGridError


class Grid:
    """A symbol's tick size and lot size; every price and quantity entering the book goes through one."""

    __slots__ = ("tick_size", "lot_size")

    def __init__(self, tick_size: Decimal | str | int, lot_size: Decimal | str | int = 1) -> None:
        self.tick_size = _positive_decimal(tick_size, "tick_size")
        self.lot_size = _positive_decimal(lot_size, "lot_size")

    def __repr__(self) -> str:
        return f"Grid(tick_size={self.tick_size}, lot_size={self.lot_size})"

    def to_ticks(self, price: Decimal | int) -> int:
        """Price -> ticks; raises OffGridError unless price is a positive multiple of tick_size."""
        return _steps(price, self.tick_size, "price")

    def to_price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def to_lots(self, qty: Decimal | int) -> int:
        """Quantity -> lots; raises OffGridError unless qty is a positive multiple of lot_size."""
        return _steps(qty, self.lot_size, "qty")

    def to_qty(self, lots: int) -> Decimal:
        return lots * self.lot_size


def _positive_decimal(value: Decimal | str | int, name: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, str or int, not float")
    try:
        step = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise OffGridError(f"{name} {value!r} is not a number") from exc
    if not step.is_finite() or step <= 0:
        raise OffGridError(f"{name} must be positive, got {value!r}")
    return step


def _steps(value: Decimal | int, step: Decimal, name: str) -> int:
    # Floats are refused outright: 0.1 + 0.2 style values would pass or fail the grid check by accident.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal or int, got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise OffGridError(f"{name} {value} is not finite")
    if value <= 0:
        raise OffGridError(f"{name} {value} must be positive")
    try:
        count, remainder = divmod(Decimal(value), step)
    except InvalidOperation as exc:  # more digits than the Decimal context holds
        raise OffGridError(f"{name} {value} is too large for a step of {step}") from exc
    if remainder:
        raise OffGridError(f"{name} {value} is not a multiple of {step}")
    return int(count)
