"""orders_place() locks the client's accounts last, just before the reservation's postings.

Every order of an account takes that account's row lock and keeps it until commit, so two orders of one
account (or an order and the matching worker's settlement of the account's earlier orders) run one after
the other for that span. The order row, its `accepted` event, its outbox event and the journal entry do not
need the lock: they are written first, and the lock covers only the balance check, the postings and the
commit. A refusal (BX001) still writes nothing: the statement, or the caller's savepoint, is undone whole.

The function lives in `orders/sql/orders_place.sql` (ADR 008). Kept, empty, for the migration history.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_orders_place_no_key_lock")]

    operations = []
