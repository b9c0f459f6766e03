"""Back office for accounts: find a client, lock/unlock, see verification, MFA state, sign-ins and the staff audit."""
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils.html import format_html
from django_otp.plugins.otp_totp.models import TOTPDevice

from brokerx.ratelimit import client_ip

from . import services
from .admin_audit import AuditedAdminMixin, ReadOnlyAdminMixin, writes_own_audit
from .models import ApiKey, LoginEvent, StaffAuditLog, User


class LoginEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LoginEvent
    fields = ("created_at", "success", "reason", "method", "ip", "user_agent")
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ("-created_at",)
    verbose_name_plural = "Sign-in history (latest first)"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-created_at")


class ApiKeyInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ApiKey
    fields = ("key_id", "name", "scope", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    max_num = 0


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "email_verified", "mfa_state", "locked",
                    "date_joined")
    list_filter = ("is_staff", "is_active", ("email_verified_at", admin.EmptyFieldListFilter),
                   ("locked_at", admin.EmptyFieldListFilter))
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("last_login", "date_joined", "email_verified_at", "locked_at", "mfa_state", "statements")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("first_name", "last_name")}),
        ("State", {"fields": ("is_active", "email_verified_at", "locked_at", "mfa_state")}),
        ("Staff", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
        ("Statements", {"fields": ("statements",)}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = (LoginEventInline, ApiKeyInline)
    actions = ("lock_accounts", "unlock_accounts")

    @admin.display(description="monthly statements")
    def statements(self, obj: User) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<a href="{}">Download statements</a> (finance and compliance)',
                           reverse("admin:client-statements", args=[obj.pk]))

    @admin.display(boolean=True, description="verified", ordering="email_verified_at")
    def email_verified(self, obj: User) -> bool:
        return obj.email_verified_at is not None

    @admin.display(boolean=True, description="locked", ordering="locked_at")
    def locked(self, obj: User) -> bool:
        return obj.locked_at is not None

    @admin.display(description="second factor")
    def mfa_state(self, obj: User) -> str:
        totp = TOTPDevice.objects.filter(user=obj)
        if totp.filter(confirmed=True).exists():
            return "authenticator app + e-mail code"
        if totp.exists():
            return "e-mail code (app setup pending)"
        return "e-mail code"

    @admin.action(description="Lock selected accounts (no sign-in, no trading)")
    @writes_own_audit
    def lock_accounts(self, request, queryset):
        for user in queryset:
            services.user_lock(user=user, actor=request.user, reason="admin action", ip=client_ip(request))
        self.message_user(request, f"Locked {queryset.count()} account(s).", messages.SUCCESS)

    @admin.action(description="Unlock selected accounts")
    @writes_own_audit
    def unlock_accounts(self, request, queryset):
        for user in queryset:
            services.user_unlock(user=user, actor=request.user, reason="admin action", ip=client_ip(request))
        self.message_user(request, f"Unlocked {queryset.count()} account(s).", messages.SUCCESS)


@admin.register(LoginEvent)
class LoginEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "user", "success", "reason", "method", "ip")
    list_filter = ("success", "reason")
    search_fields = ("user__email", "ip")
    list_select_related = ("user",)
    date_hierarchy = "created_at"


@admin.register(StaffAuditLog)
class StaffAuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_repr", "reason")
    list_filter = ("action", "object_type")
    search_fields = ("actor__email", "object_repr", "object_id", "reason")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"
