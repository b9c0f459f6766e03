"""Fee schedule: a rate on notional, lower for the resting (maker) side than for the aggressor (taker)."""
from decimal import ROUND_UP, Decimal

from django.conf import settings

CENT = Decimal("0.01")


def maker_fee_rate() -> Decimal:
    return Decimal(str(getattr(settings, "BROKERX_MAKER_FEE_RATE", "0.0002")))


def taker_fee_rate() -> Decimal:
    return Decimal(str(getattr(settings, "BROKERX_TAKER_FEE_RATE", "0.0005")))


def fee_for(notional: Decimal, *, maker: bool) -> Decimal:
    """Fees are rounded up to the cent, so reserving at the taker rate always covers them."""
    rate = maker_fee_rate() if maker else taker_fee_rate()
    return (notional * rate).quantize(CENT, rounding=ROUND_UP)


def max_fee_for(notional: Decimal) -> Decimal:
    return fee_for(notional, maker=False)
