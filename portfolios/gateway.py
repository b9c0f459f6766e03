"""The payment gateway port (deposits in, withdrawals out) and the simulated provider used in development and tests."""
import uuid
from decimal import Decimal
from functools import cache
from typing import Literal, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

DepositOutcome = Literal["pending", "settled", "failed"]


class PaymentGateway(Protocol):
    """What the portfolios context needs from a payment provider."""

    name: str

    def deposit_initiate(self, *, deposit_id: int, amount: Decimal, currency: str, simulate: str) -> str:
        """Ask the provider to collect `amount`; returns the provider's reference."""

    def deposit_status(self, *, provider_ref: str) -> DepositOutcome:
        """Where the collection stands at the provider."""

    def payout(self, *, withdrawal_id: int, amount: Decimal, currency: str) -> str:
        """Pay `amount` out to the client; returns the provider's reference."""


class SimulatedGateway:
    """Settles every deposit after a short delay, except those asked to fail.

    A deposit fails when the client asks for it (`simulate: "fail"`) or its amount ends in .13, so that
    demos and tests can show the reversal of a pending deposit.
    """

    name = "simulated"

    def deposit_initiate(self, *, deposit_id: int, amount: Decimal, currency: str, simulate: str) -> str:
        outcome = "fail" if simulate == "fail" else "ok"
        return f"sim-{outcome}-{deposit_id}-{uuid.uuid4().hex[:12]}"

    def deposit_status(self, *, provider_ref: str) -> DepositOutcome:
        if provider_ref.startswith("sim-fail-"):
            return "failed"
        if provider_ref.startswith("sim-ok-"):
            return "settled"
        return "pending"

    def payout(self, *, withdrawal_id: int, amount: Decimal, currency: str) -> str:
        return f"sim-payout-{withdrawal_id}-{uuid.uuid4().hex[:12]}"


def simulated_outcome(*, amount: Decimal, simulate: str | None) -> str:
    """The outcome the simulated provider will report: asked for explicitly, or "fail" for amounts ending in .13."""
    if simulate:
        return simulate
    cents = (amount * 100) % 100
    return "fail" if cents == 13 else "settle"


@cache
def payment_gateway() -> PaymentGateway:
    return import_string(getattr(settings, "PAYMENT_GATEWAY", "portfolios.gateway.SimulatedGateway"))()
