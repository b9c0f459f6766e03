"""Request validation and response shapes of the portfolios API (money as decimal strings)."""
from decimal import Decimal

from rest_framework import serializers

from ..models import Deposit, JournalEntry, LedgerAccount, Posting, Withdrawal


class DepositCreateSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"),
                                      help_text="Amount in the account currency (USD), up to 2 decimals.")
    simulate = serializers.ChoiceField(
        choices=Deposit.Simulate.choices, required=False,
        help_text="Simulated payment provider only: `fail` makes the provider decline the deposit, which "
                  "reverses the pending cash. Without it, amounts ending in .13 fail and all others settle "
                  "after a short delay.",
    )


class DepositSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        model = Deposit
        fields = ["id", "amount", "currency", "status", "simulate", "failure_reason", "created_at", "settled_at",
                  "failed_at"]
        read_only_fields = fields


class WithdrawalCreateSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"),
                                      help_text="Amount in the account currency (USD), paid from available cash.")


class WithdrawalSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        model = Withdrawal
        fields = ["id", "amount", "currency", "status", "created_at", "reviewed_at"]
        read_only_fields = fields


class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    qty = serializers.DecimalField(max_digits=20, decimal_places=4)
    qty_available = serializers.DecimalField(max_digits=20, decimal_places=4)
    qty_reserved = serializers.DecimalField(max_digits=20, decimal_places=4)
    avg_cost = serializers.DecimalField(max_digits=24, decimal_places=8)
    cost_basis = serializers.DecimalField(max_digits=20, decimal_places=4)
    market_price = serializers.DecimalField(max_digits=24, decimal_places=8)
    market_price_source = serializers.ChoiceField(choices=["market", "avg_cost"])
    market_value = serializers.DecimalField(max_digits=20, decimal_places=4)
    unrealized_pnl = serializers.DecimalField(max_digits=20, decimal_places=4)
    realized_pnl = serializers.DecimalField(max_digits=20, decimal_places=4)
    lastday_price = serializers.DecimalField(max_digits=18, decimal_places=4, allow_null=True,
                                             help_text="Price at the last session close; null until one is recorded.")
    change_today = serializers.DecimalField(max_digits=20, decimal_places=10, allow_null=True,
                                            help_text="Change of market_price since lastday_price, as a fraction "
                                                      "(0.01 is +1%).")


class PortfolioSerializer(serializers.Serializer):
    currency = serializers.CharField()
    cash = serializers.DecimalField(max_digits=20, decimal_places=4, help_text="Available cash.")
    cash_reserved = serializers.DecimalField(max_digits=20, decimal_places=4, help_text="Held for open buy orders.")
    cash_pending = serializers.DecimalField(max_digits=20, decimal_places=4,
                                            help_text="Deposits not yet settled; not buying power.")
    cash_held = serializers.DecimalField(max_digits=20, decimal_places=4,
                                         help_text="Held for withdrawals under review; not buying power.")
    buying_power = serializers.DecimalField(max_digits=20, decimal_places=4)
    market_value = serializers.DecimalField(max_digits=20, decimal_places=4)
    equity = serializers.DecimalField(max_digits=20, decimal_places=4,
                                      help_text="cash + cash_reserved + cash_held + market value of positions.")
    unrealized_pnl = serializers.DecimalField(max_digits=20, decimal_places=4)
    realized_pnl = serializers.DecimalField(max_digits=20, decimal_places=4)
    positions = PositionSerializer(many=True)


class ActivitySerializer(serializers.ModelSerializer):
    entry_id = serializers.IntegerField()
    type = serializers.ChoiceField(source="entry.kind", choices=JournalEntry.Kind.choices)
    account = serializers.ChoiceField(source="account.kind", choices=LedgerAccount.Kind.choices)
    asset = serializers.CharField(source="account.asset")
    reference = serializers.CharField(source="entry.reference")
    memo = serializers.CharField(source="entry.memo")
    created_at = serializers.DateTimeField(source="entry.created_at")

    class Meta:
        model = Posting
        fields = ["id", "entry_id", "type", "account", "asset", "amount", "reference", "memo", "created_at"]
        read_only_fields = fields


class ActivityFilterSerializer(serializers.Serializer):
    type = serializers.CharField(required=False, help_text="Entry types, comma separated (e.g. deposit,trade).")
    since = serializers.DateTimeField(required=False, help_text="Entries at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Entries before this time (ISO 8601).")

    def validate_type(self, value: str) -> list[str]:
        types = [t.strip() for t in value.split(",") if t.strip()]
        unknown = sorted(set(types) - set(JournalEntry.Kind.values))
        if unknown:
            raise serializers.ValidationError(f"Unknown type(s): {', '.join(unknown)}.")
        return types


class PortfolioHistorySerializer(serializers.Serializer):
    """portfolios.history.portfolio_history's answer (the same as Alpaca's /v2/account/portfolio/history)."""

    timestamp = serializers.ListField(child=serializers.IntegerField(),
                                      help_text="Each point's window start, UTC epoch seconds, oldest first.")
    equity = serializers.ListField(child=serializers.FloatField(),
                                   help_text="Equity at the end of each window (now, for the last).")
    profit_loss = serializers.ListField(child=serializers.FloatField(),
                                        help_text="Change since base_value, deposits and withdrawals excluded.")
    profit_loss_pct = serializers.ListField(child=serializers.FloatField(allow_null=True),
                                            help_text="profit_loss over base_value plus the money moved in.")
    base_value = serializers.FloatField(help_text="Equity at the first window's start.")
    timeframe = serializers.CharField()
    cashflow = serializers.DictField(help_text="Always empty.")
