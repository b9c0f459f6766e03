"""Reads of the notifications context: e-mail preferences (a trader without a stored row has the model defaults)."""
from collections.abc import Iterable

from .models import NotificationPreference

EMAIL_PREFERENCES = ("email_fills", "email_cancels", "email_deposits")


def preference_for_user(user_id: int) -> NotificationPreference:
    """The stored preferences, or an unsaved row with the defaults: reading never writes."""
    return NotificationPreference.objects.filter(user_id=user_id).first() or NotificationPreference(user_id=user_id)


def users_wanting_email(*, user_ids: Iterable[int], preference: str) -> set[int]:
    """Which of `user_ids` want the e-mails named by `preference` (one of EMAIL_PREFERENCES)."""
    if preference not in EMAIL_PREFERENCES:
        raise ValueError(f"unknown e-mail preference {preference!r}")
    user_ids = set(user_ids)
    if not user_ids:
        return set()
    default = NotificationPreference._meta.get_field(preference).default
    stored = dict(NotificationPreference.objects.filter(user_id__in=user_ids).values_list("user_id", preference))
    return {user_id for user_id in user_ids if stored.get(user_id, default)}
