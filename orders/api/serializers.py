"""Request parsing and response shapes of the orders API."""
from rest_framework import serializers

from ..models import ORDER_API_FIELDS, Instrument, Order, OrderClass, OrderEvent, OrderType, Side, TimeInForce

PRICE = {"max_digits": 18, "decimal_places": 4}


class TakeProfitSerializer(serializers.Serializer):
    limit_price = serializers.DecimalField(min_value=0, **PRICE)


class StopLossSerializer(serializers.Serializer):
    stop_price = serializers.DecimalField(min_value=0, **PRICE)
    limit_price = serializers.DecimalField(required=False, min_value=0, help_text="Makes the leg a stop-limit.",
                                           **PRICE)


class OrderCreateSerializer(serializers.Serializer):
    """The body of POST /api/v1/orders as the OpenAPI document shows it (order entry parses it: entry.py)."""

    symbol = serializers.CharField(max_length=16)
    side = serializers.ChoiceField(choices=Side.choices)
    type = serializers.ChoiceField(choices=OrderType.choices)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)
    qty = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0, required=False,
                                   help_text="The quantity, a multiple of the lot size. Give qty or notional.")
    notional = serializers.DecimalField(
        max_digits=18, decimal_places=2, min_value=0, required=False,
        help_text="An amount of money instead of qty: market day orders on a fractionable instrument only. The "
                  "quantity is the notional over the order's protection price (the edge of the price band on its "
                  "side), rounded down to the lot size; the answer shows both.")
    limit_price = serializers.DecimalField(required=False, allow_null=True, min_value=0, **PRICE)
    stop_price = serializers.DecimalField(required=False, allow_null=True, min_value=0, **PRICE)
    client_order_id = serializers.RegexField(r"^[A-Za-z0-9._:-]{1,64}$", required=False, allow_blank=False)
    order_class = serializers.ChoiceField(
        choices=OrderClass.choices, default=OrderClass.SIMPLE,
        help_text="bracket and oto: a market or limit buy whose legs (take_profit, stop_loss; oto: one of them) are "
                  "held until it fills and then sell what it bought, as an OCO pair; oco: a limit sell at "
                  "take_profit.limit_price with a stop_loss sibling for the same quantity.")
    take_profit = TakeProfitSerializer(required=False)
    stop_loss = StopLossSerializer(required=False)
    trail_price = serializers.DecimalField(required=False, min_value=0, help_text="trailing_stop: the trail in money.",
                                           **PRICE)
    trail_percent = serializers.DecimalField(required=False, min_value=0, max_digits=5, decimal_places=2,
                                             help_text="trailing_stop: the trail in percent.")


class OrderReplaceSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    qty = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0, required=False)
    limit_price = serializers.DecimalField(required=False, min_value=0, **PRICE)
    stop_price = serializers.DecimalField(required=False, min_value=0, **PRICE)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, required=False)
    trail_price = serializers.DecimalField(required=False, min_value=0, **PRICE)
    trail_percent = serializers.DecimalField(required=False, min_value=0, max_digits=5, decimal_places=2)

    def validate(self, attrs):
        if not {"qty", "limit_price", "stop_price", "time_in_force", "trail_price", "trail_percent"} & attrs.keys():
            raise serializers.ValidationError("Give at least one of qty, limit_price, stop_price, time_in_force, "
                                              "trail_price, trail_percent.")
        return attrs


class OrderCancelSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)


class OrderSerializer(serializers.ModelSerializer):
    parent_id = serializers.IntegerField(read_only=True, allow_null=True,
                                         help_text="A leg's entry (bracket, oto) or its oco pair's first order.")

    class Meta:
        model = Order
        fields = ORDER_API_FIELDS
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    """An order with its legs (for the first order of a class; empty otherwise)."""

    legs = OrderSerializer(many=True, read_only=True, source="legs_in_order")

    class Meta(OrderSerializer.Meta):
        fields = (*ORDER_API_FIELDS, "legs")
        read_only_fields = fields


class OrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ("id", "type", "data", "created_at")
        read_only_fields = fields


class InstrumentSerializer(serializers.ModelSerializer):
    fractionable = serializers.BooleanField(read_only=True,
                                            help_text="The lot size is below 1: fractional and notional orders.")

    class Meta:
        model = Instrument
        fields = ("symbol", "name", "currency", "tick_size", "lot_size", "fractionable", "reference_price",
                  "last_price", "previous_close", "price_band_pct", "max_order_notional", "max_order_qty",
                  "trading_status", "is_tradable")
        read_only_fields = fields
