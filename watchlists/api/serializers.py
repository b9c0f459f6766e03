"""Request validation and response shape of the watchlists API."""
from rest_framework import serializers

from ..models import MAX_NAME_LENGTH
from ..services import MAX_SYMBOLS_PER_WATCHLIST

SYMBOL = {"max_length": 16, "help_text": "An instrument symbol (market/symbols)."}


class WatchlistSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    symbols = serializers.ListField(child=serializers.CharField(), help_text="In the list's order.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance):
        return super().to_representation({
            "id": instance.pk, "name": instance.name, "created_at": instance.created_at,
            "updated_at": instance.updated_at,
            "symbols": [item.instrument.symbol for item in instance.items.all()]})


class WatchlistCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME_LENGTH, help_text="Unique among your watchlists.")
    symbols = serializers.ListField(child=serializers.CharField(**SYMBOL), required=False, default=list,
                                    max_length=MAX_SYMBOLS_PER_WATCHLIST)


class WatchlistUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False)
    symbols = serializers.ListField(child=serializers.CharField(**SYMBOL), required=False,
                                    max_length=MAX_SYMBOLS_PER_WATCHLIST,
                                    help_text="Replaces the list's symbols, in this order.")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give name or symbols.")
        return attrs


class WatchlistSymbolSerializer(serializers.Serializer):
    symbol = serializers.CharField(**SYMBOL)
