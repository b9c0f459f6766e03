"""Request parsing and response shapes of the orders API."""
from rest_framework import serializers

from ..models import ORDER_API_FIELDS, Instrument, Order, OrderEvent, OrderType, Side, TimeInForce

PRICE = {"max_digits": 18, "decimal_places": 4}


class OrderCreateSerializer(serializers.Serializer):
    """The body of POST /api/v1/orders as the OpenAPI document shows it (order entry parses it: entry.py)."""

    symbol = serializers.CharField(max_length=16)
    side = serializers.ChoiceField(choices=Side.choices)
    type = serializers.ChoiceField(choices=OrderType.choices)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)
    qty = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0)
    limit_price = serializers.DecimalField(required=False, allow_null=True, min_value=0, **PRICE)
    stop_price = serializers.DecimalField(required=False, allow_null=True, min_value=0, **PRICE)
    client_order_id = serializers.RegexField(r"^[A-Za-z0-9._:-]{1,64}$", required=False, allow_blank=False)


class OrderReplaceSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    qty = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0, required=False)
    limit_price = serializers.DecimalField(required=False, min_value=0, **PRICE)
    stop_price = serializers.DecimalField(required=False, min_value=0, **PRICE)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, required=False)

    def validate(self, attrs):
        if not {"qty", "limit_price", "stop_price", "time_in_force"} & attrs.keys():
            raise serializers.ValidationError("Give at least one of qty, limit_price, stop_price, time_in_force.")
        return attrs


class OrderCancelSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ORDER_API_FIELDS
        read_only_fields = fields


class OrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ("id", "type", "data", "created_at")
        read_only_fields = fields


class InstrumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instrument
        fields = ("symbol", "name", "currency", "tick_size", "lot_size", "reference_price", "last_price",
                  "previous_close", "price_band_pct", "max_order_notional", "max_order_qty", "trading_status",
                  "is_tradable")
        read_only_fields = fields
