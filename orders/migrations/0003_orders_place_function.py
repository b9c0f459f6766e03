"""orders_place(): the whole accept step of an order in one statement, so the ACK costs one database round trip.

It re-checks nothing the application checked (instrument, grid, band, notional): it does what needs the
database, in order — the client_order_id replay, the lock and check of available cash or shares, the order
row, the reservation as a balanced journal entry (the ledger's own triggers maintain balances and check
the entry at commit), the `accepted` order event and the `order.created` outbox event.
Errors: SQLSTATE BX001 'insufficient funds' with the available amount as DETAIL.

The function lives in `orders/sql/orders_place.sql` (applied after migrate, ADR 008). Kept, empty, for the
migration history and the dependencies below.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_order_stop_triggered"),
        ("portfolios", "0002_ledger_invariants"),
        ("outbox", "0001_initial"),
    ]

    operations = []
