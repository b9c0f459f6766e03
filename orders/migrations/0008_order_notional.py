"""Orders given as an amount of money: the amount asked for, beside the quantity it became."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0007_instrument_previous_close"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="notional",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=18, null=True),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(condition=models.Q(("notional__isnull", True), ("notional__gt", 0),
                                                                 _connector="OR"),
                                              name="order_notional_positive"),
        ),
    ]
