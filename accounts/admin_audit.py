"""AuditedAdminMixin: every add, change, delete and action a member of staff makes in a ModelAdmin is audited.

Use it first in the bases of any context's ModelAdmin: `class OrderAdmin(AuditedAdminMixin, admin.ModelAdmin)`.
An action that writes its own audit entries (through a service) sets `writes_own_audit = True` on the function.
"""
from functools import wraps

from django.forms.models import model_to_dict

from brokerx.ratelimit import client_ip

from .services import staff_audit_record


def writes_own_audit(func):
    func.writes_own_audit = True
    return func


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


class AuditedAdminMixin:
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = list(form.changed_data) if form is not None else []
        staff_audit_record(
            actor=request.user, action="admin_change" if change else "admin_add", obj=obj, ip=client_ip(request),
            details={"fields": changed,
                     "values": {k: _jsonable(v) for k, v in model_to_dict(obj, fields=changed).items()
                                if "password" not in k}},
        )

    def delete_model(self, request, obj):
        staff_audit_record(actor=request.user, action="admin_delete", obj=obj, ip=client_ip(request))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            staff_audit_record(actor=request.user, action="admin_delete", obj=obj, ip=client_ip(request))
        super().delete_queryset(request, queryset)

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {name: (self._audited(func, name), name, description)
                for name, (func, name, description) in actions.items()}

    def _audited(self, func, name):
        if getattr(func, "writes_own_audit", False) or name == "delete_selected":  # delete_queryset audits those
            return func

        @wraps(func)
        def wrapper(modeladmin, request, queryset):
            ids = [str(pk) for pk in queryset.values_list("pk", flat=True)[:1000]]
            staff_audit_record(actor=request.user, action=f"admin_action:{name}", ip=client_ip(request),
                               details={"model": queryset.model._meta.label, "ids": ids})
            return func(modeladmin, request, queryset)

        return wrapper


class ReadOnlyAdminMixin:
    """For records nobody edits by hand (login history, the audit trail itself)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


