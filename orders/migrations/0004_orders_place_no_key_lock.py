"""orders_place() locks the client's accounts FOR NO KEY UPDATE, as the ledger's own trigger does.

The function lives in `orders/sql/orders_place.sql` (ADR 008). Kept, empty, for the migration history.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_orders_place_function")]

    operations = []
