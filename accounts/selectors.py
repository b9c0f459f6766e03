"""Reads of the accounts context: who may trade, cached users for authentication, a user's keys and history."""
from django.core.cache import cache
from django.db.models import QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from brokerx.faults import REDIS_FAULTS

from .models import ApiKey, LoginEvent, MfaMethod, User

# Authentication runs on every API call: the user row is read through Redis and dropped when it changes.
USER_CACHE_SECONDS = 60


def user_cache_key(user_id: int) -> str:
    return f"acct:user:{user_id}"


def api_key_cache_key(key_id: str) -> str:
    return f"acct:apikey:{key_id}"


def user_can_trade(user) -> bool:
    """True for an active, e-mail-verified, unlocked account: the precondition of deposits and orders."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.email_verified_at is not None
        and user.locked_at is None
    )


def user_get_for_auth(*, user_id: int) -> User | None:
    key = user_cache_key(user_id)
    try:
        user = cache.get(key)
    except REDIS_FAULTS:  # without Redis, Postgres answers (ADR 009)
        return User.objects.filter(pk=user_id).first()
    if user is None:
        user = User.objects.filter(pk=user_id).first()
        if user is not None:
            try:
                cache.set(key, user, USER_CACHE_SECONDS)
            except REDIS_FAULTS:
                pass
    return user


def user_get_by_email(*, email: str) -> User | None:
    return User.objects.filter(email__iexact=email.strip()).first()


def user_has_totp(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def user_mfa_methods(*, user: User) -> list[str]:
    """Second factors the user can answer now, preferred first; the e-mail code is always available."""
    methods = [MfaMethod.EMAIL.value]
    if user_has_totp(user=user):
        methods.insert(0, MfaMethod.TOTP.value)
    return methods


def api_keys_for_user(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def api_key_get_for_user(*, user: User, key_id: str) -> ApiKey | None:
    """The only way views reach a single key: scoped to its owner, so one user never sees another's."""
    return ApiKey.objects.filter(user=user, key_id=key_id).first()


def login_events_for_user(*, user: User, limit: int = 50) -> QuerySet[LoginEvent]:
    return LoginEvent.objects.filter(user=user).order_by("-created_at")[:limit]
