"""Back office for money: client ledgers and balances, journal entries, deposits, reconciliation, and the four-eyes
queues: adjustment requests and withdrawals under review, approved or rejected by another member of staff."""
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_audit import AuditedAdminMixin, ReadOnlyAdminMixin, writes_own_audit
from brokerx.ratelimit import client_ip

from . import selectors, services
from .errors import LedgerError
from .models import (
    AdjustmentRequest,
    Deposit,
    JournalEntry,
    LedgerAccount,
    Position,
    Posting,
    Withdrawal,
    WithdrawalUnderReview,
)

Kind = LedgerAccount.Kind


class PostingInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Posting
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "reference", "memo", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("reference", "memo", "postings__account__owner__email")
    readonly_fields = ("kind", "reference", "memo", "created_by", "created_at")
    inlines = [PostingInline]
    list_select_related = ("created_by",)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "owner_link", "kind", "asset", "balance", "may_go_negative")
    list_filter = ("kind", ("owner", admin.EmptyFieldListFilter))
    search_fields = ("owner__email", "asset")
    list_select_related = ("owner",)
    change_list_template = "portfolios/admin/ledgeraccount_changelist.html"

    @admin.display(description="owner", ordering="owner__email")
    def owner_link(self, obj: LedgerAccount):
        if obj.owner_id is None:
            return "house"
        url = reverse("admin:portfolios_client_ledger", args=[obj.owner_id])
        return format_html('<a href="{}">{}</a>', url, obj.owner.email)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("client/<int:user_id>/", view(self.client_ledger_view), name="portfolios_client_ledger"),
            path("adjust/", view(self.adjustment_view), name="portfolios_adjustment"),
            path("reconcile/", view(self.reconcile_view), name="portfolios_reconcile"),
            *super().get_urls(),
        ]

    def _context(self, request, title: str, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def client_ledger_view(self, request, user_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        client = get_object_or_404(get_user_model(), pk=user_id)
        context = self._context(
            request, f"Ledger of {client.email}", client=client,
            portfolio=selectors.portfolio_for_user(client),
            postings=selectors.activities_for_user(client)[:200],
            deposits=selectors.deposits_for_user(client)[:50],
            withdrawals=selectors.withdrawals_for_user(client)[:50],
        )
        return TemplateResponse(request, "portfolios/admin/client_ledger.html", context)

    def adjustment_view(self, request):
        """Ask for a manual adjustment; another member of staff approves it in the adjustment request queue."""
        if not request.user.has_perm("portfolios.add_adjustmentrequest"):
            raise PermissionDenied
        form = AdjustmentForm(request.POST or None, initial={"client_email": request.GET.get("email", "")})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                adjustment = services.adjustment_request_create(
                    staff_user=request.user, user=data["client"], kind=data["account"], asset=data["asset"],
                    amount=data["amount"], reason=data["reason"], unit_cost=data.get("unit_cost"),
                    ip=client_ip(request))
            except LedgerError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Adjustment request #{adjustment.pk} waits for another member of staff "
                                           f"to approve it; nothing is posted yet.", messages.SUCCESS)
                return redirect("admin:portfolios_adjustmentrequest_changelist")
        return TemplateResponse(request, "portfolios/admin/adjustment.html",
                                self._context(request, "Manual adjustment request", form=form))

    def reconcile_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        books = selectors.books_balance()
        context = self._context(
            request, "Ledger reconciliation",
            drifts=[d.as_dict() for d in selectors.ledger_reconcile()],
            books=[{"asset": asset, "total": total, "ok": total == 0} for asset, total in books.items()],
            house=selectors.house_balances(),
        )
        return TemplateResponse(request, "portfolios/admin/reconcile.html", context)


class AdjustmentForm(forms.Form):
    client_email = forms.EmailField(label="Client e-mail")
    account = forms.ChoiceField(choices=[(k.value, k.label) for k in services.ADJUSTABLE_KINDS])
    asset = forms.CharField(max_length=16, initial="USD", help_text="USD for cash, the symbol for shares.")
    amount = forms.DecimalField(max_digits=20, decimal_places=4,
                                help_text="Signed: positive credits the client, negative debits.")
    unit_cost = forms.DecimalField(max_digits=24, decimal_places=8, required=False, min_value=Decimal(0),
                                   help_text="Shares credited only: their cost per share (default: average cost).")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; kept on the entry.")

    def clean(self):
        data = super().clean()
        email = data.get("client_email")
        if email:
            client = get_user_model().objects.filter(email__iexact=email).first()
            if client is None:
                self.add_error("client_email", "No client with this e-mail address.")
            data["client"] = client
        if data.get("asset"):
            data["asset"] = data["asset"].strip().upper()
        if data.get("amount") == 0:
            self.add_error("amount", "An adjustment cannot be zero.")
        if not (data.get("reason") or "").strip():
            self.add_error("reason", "A reason is required.")
        return data


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "user", "amount", "currency", "status", "provider_ref", "created_at", "settled_at",
                    "failed_at")
    list_filter = ("status", "provider")
    search_fields = ("user__email", "provider_ref")
    list_select_related = ("user",)


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "user", "amount", "currency", "status", "provider_ref", "created_at", "reviewed_by")
    list_filter = ("status",)
    search_fields = ("user__email", "provider_ref")
    list_select_related = ("user", "reviewed_by")


@admin.register(Position)
class PositionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "symbol", "qty", "avg_cost", "realized_pnl", "updated_at")
    search_fields = ("user__email", "symbol")
    list_select_related = ("user",)


# --- four eyes: the queues -------------------------------------------------------------------------

class PendingFirstFilter(admin.SimpleListFilter):
    """A decision queue's status filter: the list opens on what waits for a decision."""

    title = "status"
    parameter_name = "status"
    pending = ""
    statuses: list[tuple[str, str]] = []

    def lookups(self, request, model_admin):
        return [*self.statuses, ("all", "All")]

    def value(self):
        return super().value() or self.pending

    def queryset(self, request, queryset):
        return queryset if self.value() == "all" else queryset.filter(status=self.value())

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {"selected": self.value() == lookup, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}


class AdjustmentStatusFilter(PendingFirstFilter):
    pending = AdjustmentRequest.Status.PENDING
    statuses = AdjustmentRequest.Status.choices


class WithdrawalReviewStatusFilter(PendingFirstFilter):
    pending = Withdrawal.Status.PENDING_REVIEW
    statuses = Withdrawal.Status.choices


class DecisionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class DecisionQueueAdmin(AuditedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Approve or reject the selected rows, with a reason asked on a page of its own (required to reject).

    The service decides each row under its row lock and refuses the requester's own (four eyes); a row refused
    is named in a warning, the others are decided.
    """

    approve_permission = ""
    what = ""

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(self.approve_permission)

    def _decide(self, request, queryset, *, decision: str, decide):
        form = DecisionForm(request.POST if "confirm" in request.POST else None)
        if not form.is_valid() or (decision == "reject" and not form.cleaned_data["reason"].strip()):
            if form.is_bound:
                form.add_error("reason", "A reason is required to reject.")
            context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                       "objects": queryset, "decision": decision, "action": request.POST.get("action"),
                       "title": f"{decision.capitalize()} {self.what}"}
            return TemplateResponse(request, "portfolios/admin/decision.html", context)
        done = 0
        for obj in queryset:
            try:
                decide(obj.pk, form.cleaned_data["reason"])
            except LedgerError as exc:
                self.message_user(request, f"#{obj.pk}: {exc.message}", messages.WARNING)
            else:
                done += 1
        verb = "Approved" if decision == "approve" else "Rejected"
        self.message_user(request, f"{verb} {done} {self.what}.", messages.SUCCESS if done else messages.WARNING)
        return None


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(DecisionQueueAdmin):
    list_display = ("id", "client", "kind", "asset", "amount", "reason", "status", "requested_by", "requested_at",
                    "decided_by", "decided_at", "entry")
    list_filter = (AdjustmentStatusFilter, "kind")
    search_fields = ("client__email", "requested_by__email", "reason")
    list_select_related = ("client", "requested_by", "decided_by")
    actions = ("approve_requests", "reject_requests")
    approve_permission = "portfolios.approve_adjustmentrequest"
    what = "adjustment request(s)"
    change_list_template = "portfolios/admin/adjustmentrequest_changelist.html"

    @admin.action(description="Approve and post the selected requests", permissions=["approve"])
    @writes_own_audit
    def approve_requests(self, request, queryset):
        return self._decide(request, queryset, decision="approve", decide=lambda pk, reason: (
            services.adjustment_request_approve(request_id=pk, staff_user=request.user, reason=reason,
                                                ip=client_ip(request))))

    @admin.action(description="Reject the selected requests", permissions=["approve"])
    @writes_own_audit
    def reject_requests(self, request, queryset):
        return self._decide(request, queryset, decision="reject", decide=lambda pk, reason: (
            services.adjustment_request_reject(request_id=pk, staff_user=request.user, reason=reason,
                                               ip=client_ip(request))))


@admin.register(WithdrawalUnderReview)
class WithdrawalReviewAdmin(DecisionQueueAdmin):
    list_display = ("id", "user", "amount", "currency", "status", "created_at", "reviewed_by", "reviewed_at",
                    "review_reason")
    list_filter = (WithdrawalReviewStatusFilter,)
    search_fields = ("user__email",)
    list_select_related = ("user", "reviewed_by")
    actions = ("approve_withdrawals", "reject_withdrawals")
    approve_permission = "portfolios.review_withdrawal"
    what = "withdrawal(s)"

    def get_queryset(self, request):
        # Those above the threshold: under review, or decided by a member of staff.
        return super().get_queryset(request).filter(
            Q(status=Withdrawal.Status.PENDING_REVIEW) | Q(reviewed_by__isnull=False))

    @admin.action(description="Approve and pay out the selected withdrawals", permissions=["approve"])
    @writes_own_audit
    def approve_withdrawals(self, request, queryset):
        return self._decide(request, queryset, decision="approve", decide=lambda pk, reason: (
            services.withdrawal_approve(withdrawal_id=pk, staff_user=request.user, reason=reason,
                                        ip=client_ip(request))))

    @admin.action(description="Reject the selected withdrawals (releases the held cash)", permissions=["approve"])
    @writes_own_audit
    def reject_withdrawals(self, request, queryset):
        return self._decide(request, queryset, decision="reject", decide=lambda pk, reason: (
            services.withdrawal_reject(withdrawal_id=pk, staff_user=request.user, reason=reason,
                                       ip=client_ip(request))))
