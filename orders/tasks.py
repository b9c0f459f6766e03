"""Periodic jobs of the orders context."""
from celery import shared_task

from .services import instruments_record_close, orders_expire_day


@shared_task(name="orders.expire_day_orders", ignore_result=True)
def expire_day_orders() -> int:
    """After a session close: expire its day orders and record each instrument's closing price."""
    expired = orders_expire_day()
    instruments_record_close()
    return expired
