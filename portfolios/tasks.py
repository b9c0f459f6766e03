"""Celery tasks of the portfolios context: settling deposits once the payment provider answers."""
from celery import shared_task
from django.conf import settings

from .gateway import payment_gateway
from .models import Deposit
from .services import deposit_fail, deposit_settle


@shared_task(name="portfolios.deposit_settle", bind=True, ignore_result=True, max_retries=None)
def deposit_settle_task(self, deposit_id: int) -> str:
    """Ask the provider how the deposit stands and settle or reverse it; a repeated delivery is a no-op.

    Idempotent: the services lock the deposit and do nothing unless it is still pending.
    """
    deposit = Deposit.objects.filter(pk=deposit_id).only("status", "provider_ref").first()
    if deposit is None or deposit.status != Deposit.Status.PENDING:
        return "skipped"
    outcome = payment_gateway().deposit_status(provider_ref=deposit.provider_ref)
    if outcome == "settled":
        return deposit_settle(deposit_id=deposit_id).status
    if outcome == "failed":
        return deposit_fail(deposit_id=deposit_id).status
    raise self.retry(countdown=max(1.0, float(settings.DEPOSIT_SETTLE_DELAY_SECONDS)))
