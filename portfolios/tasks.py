"""Celery tasks of the portfolios context: settling deposits once the payment provider answers."""
import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .gateway import payment_gateway
from .models import Deposit
from .services import DEPOSIT_SETTLE_TASK, deposit_fail, deposit_settle


# Asks the provider again every DEPOSIT_SETTLE_DELAY_SECONDS while it says "pending"; the sweep below
# takes over after that (and after a lost message: a broker restart, a worker killed before it acked).
@shared_task(name=DEPOSIT_SETTLE_TASK, bind=True, ignore_result=True, max_retries=100)
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


@shared_task(name="portfolios.deposits_pending_sweep", ignore_result=True)
def deposits_pending_sweep_task(limit: int = 500) -> int:
    """Enqueue settlement again for deposits still pending well after the provider's delay (beat, every minute)."""
    overdue = timezone.now() - dt.timedelta(seconds=float(settings.DEPOSIT_SETTLE_DELAY_SECONDS) + 30)
    ids = list(Deposit.objects.filter(status=Deposit.Status.PENDING, created_at__lt=overdue)
               .order_by("id").values_list("id", flat=True)[:limit])
    for deposit_id in ids:
        deposit_settle_task.delay(deposit_id)
    return len(ids)
