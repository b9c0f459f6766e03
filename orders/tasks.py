"""Periodic jobs of the orders context."""
from celery import shared_task

from .services import orders_expire_day


@shared_task(name="orders.expire_day_orders", ignore_result=True)
def expire_day_orders() -> int:
    return orders_expire_day()
