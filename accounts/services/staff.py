"""Back-office actions on accounts (lock, unlock) and the staff audit trail every such action writes."""
from django.db import models, transaction
from django.utils import timezone

from ..models import RefreshTokenFamily, StaffAuditLog, User
from .tokens import revoke_locked_family


def staff_audit_record(*, actor: User, action: str, obj: models.Model | None = None, reason: str = "",
                       details: dict | None = None, ip: str | None = None) -> StaffAuditLog:
    """Append one entry to the staff audit trail (in the caller's transaction, so it commits with the action)."""
    return StaffAuditLog.objects.create(
        actor=actor,
        action=action[:64],
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        reason=reason,
        details=details or {},
        ip=ip or None,
    )


@transaction.atomic
def user_lock(*, user: User, actor: User, reason: str = "", ip: str | None = None) -> User:
    """Lock an account: no sign-in, no trading; its API sessions are revoked now (API keys stop via the cache drop)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.locked_at is None:
        user.locked_at = timezone.now()
        user.save(update_fields=["locked_at"])
        families = RefreshTokenFamily.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
        for family in families:
            revoke_locked_family(family, reason="account_locked")
        staff_audit_record(actor=actor, action="user_lock", obj=user, reason=reason, ip=ip)
    return user


@transaction.atomic
def user_unlock(*, user: User, actor: User, reason: str = "", ip: str | None = None) -> User:
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.locked_at is not None:
        user.locked_at = None
        user.save(update_fields=["locked_at"])
        staff_audit_record(actor=actor, action="user_unlock", obj=user, reason=reason, ip=ip)
    return user
