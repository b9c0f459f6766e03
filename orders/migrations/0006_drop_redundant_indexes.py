"""Drop the single-column foreign-key indexes that composite indexes already lead with (each accepted order
wrote both): order.user is led by (user, -id), (user, updated_at) and the unique (user, client_order_id);
orderevent.order by (order, id)."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_orders_place_lock_last"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="order", name="user",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="orders",
                                    to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="orderevent", name="order",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="events",
                                    to="orders.order"),
        ),
    ]
