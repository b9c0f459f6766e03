"""Fee schedule: a rate on notional, lower for the resting (maker) side than for the aggressor (taker)."""
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from django.conf import settings

CENT = Decimal("0.01")


def maker_fee_rate() -> Decimal:
    return Decimal(str(getattr(settings, "BROKERX_MAKER_FEE_RATE", "0.0002")))


def taker_fee_rate() -> Decimal:
    return Decimal(str(getattr(settings, "BROKERX_TAKER_FEE_RATE", "0.0005")))


def fee_for(notional: Decimal, *, maker: bool) -> Decimal:
    """The fee charged on one fill, rounded down to the cent (never more than the exact rate)."""
    rate = maker_fee_rate() if maker else taker_fee_rate()
    return (notional * rate).quantize(CENT, rounding=ROUND_DOWN)


def max_fee_for(notional: Decimal) -> Decimal:
    """The most a buy can pay in fees on `notional`, rounded up: what its reservation holds.

    Per-fill fees round down and the reservation's rounds up, so the fills of an order never cost more
    than its reservation, however it is split.
    """
    return (notional * taker_fee_rate()).quantize(CENT, rounding=ROUND_UP)
