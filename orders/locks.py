"""Row and book locks of the orders context, always taken in one order: book (symbol) -> order -> ledger accounts."""
from django.db import connection

from outbox.services import partition_lock_key

from .models import Order

MATCHING_QUEUE = "critical"


def lock_book(symbol: str) -> None:
    """Serialise with the symbol's matching worker (same transaction-level advisory lock as its outbox drain)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [partition_lock_key(MATCHING_QUEUE, symbol)])


def lock_order(order_id: int, *, user=None) -> Order | None:
    qs = Order.objects.select_for_update().filter(pk=order_id)
    if user is not None:
        qs = qs.filter(user=user)
    return qs.first()
