"""The double-entry ledger (accounts, journal entries, postings), positions, deposits and withdrawals."""
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Func, Q

# One scale for every ledger amount (cash and quantities): numeric(20, 4). Postgres enforces the
# ledger's invariants on these columns, see portfolios/sql/ and docs/adr/004-ledger.md.
AMOUNT_DIGITS = 20
AMOUNT_PLACES = 4
AMOUNT_QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)
ZERO = Decimal("0")


def amount_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs)


class LedgerAccount(models.Model):
    """One account per (owner, kind, asset); owner NULL means a house account."""

    class Kind(models.TextChoices):
        CASH_AVAILABLE = "cash_available", "Cash available"
        CASH_RESERVED = "cash_reserved", "Cash reserved for open orders"
        CASH_PENDING = "cash_pending", "Cash of deposits not yet settled"
        CASH_HELD = "cash_held", "Cash held for withdrawals under review"
        SECURITIES_AVAILABLE = "securities_available", "Securities available"
        SECURITIES_RESERVED = "securities_reserved", "Securities reserved for open orders"
        HOUSE_CLEARING = "house_clearing", "House clearing"
        HOUSE_FEES = "house_fees", "House fees"
        HOUSE_GATEWAY = "house_gateway", "House payment gateway"

    # Opened for every client with cash. CASH_HELD is opened on a client's first withdrawal under review.
    CLIENT_CASH_KINDS = (Kind.CASH_AVAILABLE, Kind.CASH_RESERVED, Kind.CASH_PENDING)
    CLIENT_SECURITIES_KINDS = (Kind.SECURITIES_AVAILABLE, Kind.SECURITIES_RESERVED)
    HOUSE_KINDS = (Kind.HOUSE_CLEARING, Kind.HOUSE_FEES, Kind.HOUSE_GATEWAY)
    # What a manual adjustment may credit or debit (against house clearing).
    ADJUSTABLE_KINDS = (Kind.CASH_AVAILABLE, Kind.SECURITIES_AVAILABLE)

    owner = models.ForeignKey(  # indexed by the unique (owner, kind, asset)
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts",
        db_index=False,
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # A currency code ("USD") for cash, the instrument symbol for securities.
    asset = models.CharField(max_length=16)
    # Maintained by the postings trigger for client accounts; NULL for house accounts, whose balance is
    # the sum of their postings, so that no single house row is locked by every deposit and trade.
    balance = amount_field(null=True, blank=True, default=ZERO)
    may_go_negative = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "kind", "asset"], name="portfolios_ledgeraccount_unique", nulls_distinct=False
            ),
            models.CheckConstraint(
                condition=Q(may_go_negative=True) | Q(balance__gte=0) | Q(balance__isnull=True),
                name="portfolios_ledgeraccount_balance_nonnegative",
            ),
            models.CheckConstraint(
                condition=Q(owner__isnull=True, balance__isnull=True) | Q(owner__isnull=False, balance__isnull=False),
                name="portfolios_ledgeraccount_balance_maintained_for_clients",
            ),
        ]

    def __str__(self) -> str:
        owner = self.owner_id if self.owner_id else "house"
        return f"{owner}:{self.kind}:{self.asset}"


class JournalEntry(models.Model):
    """A balanced movement: its postings sum to zero per asset (checked by Postgres at commit)."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit initiated"
        DEPOSIT_SETTLE = "deposit_settle", "Deposit settled"
        DEPOSIT_FAIL = "deposit_fail", "Deposit failed (reversal)"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        WITHDRAWAL_HOLD = "withdrawal_hold", "Withdrawal held for review"
        WITHDRAWAL_RELEASE = "withdrawal_release", "Withdrawal rejected (hold released)"
        CASH_RESERVE = "cash_reserve", "Cash reserved"
        CASH_RELEASE = "cash_release", "Cash released"
        SHARES_RESERVE = "shares_reserve", "Shares reserved"
        SHARES_RELEASE = "shares_release", "Shares released"
        TRADE = "trade", "Trade settlement"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    # Free text up to 32 characters: other contexts may post kinds of their own; the choices document ours.
    kind = models.CharField(max_length=32, choices=Kind.choices)
    reference = models.CharField(max_length=128)  # indexed in Meta: equality only (no pattern-ops copy)
    memo = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Staff member who posted a manual adjustment.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set by Postgres: postings may only be added to an entry by the transaction that created it.
    txid = models.BigIntegerField(db_default=Func(function="txid_current"), editable=False)

    class Meta:
        verbose_name_plural = "journal entries"
        # The balanced-entry check reads a transaction's entries at its commit
        # (sql/portfolios_entry_check_balanced.sql).
        indexes = [models.Index(fields=["txid", "id"], name="portfolios_entry_txid_id"),
                   models.Index(fields=["reference"], name="journal_reference_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.reference}"


class Posting(models.Model):
    """One leg of a journal entry; append-only (UPDATE and DELETE are refused by Postgres)."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings",
                                db_index=False)  # (account, id)
    amount = amount_field()

    class Meta:
        indexes = [models.Index(fields=["account", "id"], name="portfolios_posting_acct_id")]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="portfolios_posting_amount_nonzero")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount}"


class Position(models.Model):
    """A client's holding of one symbol: qty equals securities available + reserved in the ledger."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="positions")
    symbol = models.CharField(max_length=16)
    qty = amount_field(default=ZERO)
    # Cost per share including buy fees; unchanged by sells, which realize P&L against it.
    avg_cost = models.DecimalField(max_digits=24, decimal_places=8, default=ZERO)
    realized_pnl = amount_field(default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "symbol"], name="portfolios_position_unique"),
            models.CheckConstraint(condition=Q(qty__gte=0), name="portfolios_position_qty_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.symbol} {self.qty}"


class Deposit(models.Model):
    """Cash coming in through the payment gateway: pending until the provider settles it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SETTLED = "settled", "Settled"
        FAILED = "failed", "Failed"

    class Simulate(models.TextChoices):
        SETTLE = "settle", "Settle"
        FAIL = "fail", "Fail"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    amount = amount_field()
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=32)
    provider_ref = models.CharField(max_length=64, blank=True, default="")
    simulate = models.CharField(max_length=16, choices=Simulate.choices, default=Simulate.SETTLE)
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="portfolios_deposit_user_ts")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="portfolios_deposit_amount_positive")]

    def __str__(self) -> str:
        return f"deposit #{self.pk} {self.amount} {self.currency} {self.status}"

    @property
    def reference(self) -> str:
        return f"deposit:{self.pk}"


class Withdrawal(models.Model):
    """Cash paid out to the client, from available cash only.

    Above settings.WITHDRAWAL_APPROVAL_THRESHOLD it waits for a member of staff other than the client
    (`pending_review`): its cash is held (cash_available -> cash_held) until approved (paid out of the hold)
    or rejected (the hold released). Below it, it is paid at once (`completed`).
    """

    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review", "Pending review"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    amount = amount_field()
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETED)
    provider = models.CharField(max_length=32)
    provider_ref = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", help_text="Staff member who approved or rejected it.")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="portfolios_withdrawal_user_ts"),
                   models.Index(fields=["id"], name="portfolios_withdrawal_review",
                                condition=Q(status="pending_review"))]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="portfolios_withdrawal_amount_positive"),
            # Four eyes, kept by Postgres too: nobody reviews their own withdrawal.
            models.CheckConstraint(condition=~Q(reviewed_by=models.F("user")),
                                   name="portfolios_withdrawal_not_self_reviewed"),
            models.CheckConstraint(
                condition=Q(status="pending_review", reviewed_by__isnull=True, reviewed_at__isnull=True)
                | ~Q(status="pending_review"),
                name="portfolios_withdrawal_pending_unreviewed"),
        ]

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} {self.amount} {self.currency} {self.status}"

    @property
    def reference(self) -> str:
        return f"withdrawal:{self.pk}"


class WithdrawalUnderReview(Withdrawal):
    """The back office's review queue: withdrawals above the approval threshold (same rows)."""

    class Meta:
        proxy = True
        verbose_name = "withdrawal review"
        verbose_name_plural = "withdrawal reviews"
        permissions = [("review_withdrawal", "Can approve or reject a withdrawal under review")]


class AdjustmentRequest(models.Model):
    """A manual adjustment asked for by one member of staff, posted only when another approves it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved (posted)"
        REJECTED = "rejected", "Rejected"

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32, choices=[(k.value, k.label) for k in LedgerAccount.ADJUSTABLE_KINDS])
    asset = models.CharField(max_length=16)
    amount = amount_field(help_text="Signed: positive credits the client, negative debits.")
    unit_cost = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    entry = models.OneToOneField(JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 help_text="The journal entry the approval posted.")

    class Meta:
        indexes = [models.Index(fields=["id"], name="portfolios_adjreq_pending", condition=Q(status="pending"))]
        permissions = [("approve_adjustmentrequest", "Can approve or reject an adjustment request")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="portfolios_adjreq_amount_nonzero"),
            # Four eyes, kept by Postgres too: the requester never decides their own request.
            models.CheckConstraint(condition=~Q(decided_by=models.F("requested_by")),
                                   name="portfolios_adjreq_not_self_decided"),
            models.CheckConstraint(
                condition=Q(status="pending", decided_by__isnull=True, entry__isnull=True)
                | Q(status="approved", decided_by__isnull=False, entry__isnull=False)
                | Q(status="rejected", decided_by__isnull=False, entry__isnull=True),
                name="portfolios_adjreq_decision_consistent"),
        ]

    def __str__(self) -> str:
        return f"adjustment request #{self.pk} {self.amount} {self.asset} ({self.status})"

    @property
    def reference(self) -> str:
        return f"adjustment_request:{self.pk}"
