"""JWT for the API: access + refresh pairs grouped in families; rotation on refresh, reuse revokes the family.

Tokens carry the user id, their own id (jti) and family id (fam) only. Access tokens are stateless but
checked against a Redis flag of revoked families, so a revocation takes effect at once. Without Redis the family
and the user are read from Postgres instead (ADR 009).
"""
import logging

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from brokerx.faults import REDIS_FAULTS

from ..errors import AccountInactive, AccountLocked, TokenInvalid, TokenReused
from ..models import FAMILY_CLAIM, RefreshTokenFamily, User
from ..realtime import family_group, sockets_close
from ..selectors import user_cache_key, user_get_for_auth

logger = logging.getLogger(__name__)


def family_revoked_cache_key(family_id: str) -> str:
    return f"acct:fam-revoked:{family_id}"


def _pair(refresh: RefreshToken) -> dict:
    access = refresh.access_token
    return {
        "access": str(access),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }


def check_user_may_sign_in(user: User) -> None:
    if not user.is_active:
        raise AccountInactive()
    if user.locked_at is not None:
        raise AccountLocked()


@transaction.atomic
def jwt_issue(*, user: User) -> dict:
    """A new token family for a completed sign-in: {access, refresh, token_type, expires_in}."""
    family = RefreshTokenFamily.objects.create(user=user, current_jti="")
    refresh = RefreshToken.for_user(user)
    refresh[FAMILY_CLAIM] = str(family.id)
    family.current_jti = refresh[jwt_settings.JTI_CLAIM]
    family.save(update_fields=["current_jti"])
    return _pair(refresh)


def revoke_locked_family(family: RefreshTokenFamily, *, reason: str) -> None:
    """Revoke a family whose row the caller holds locked: blacklist its live refresh token, flag its access tokens."""
    family.revoked_at = timezone.now()
    family.revoked_reason = reason
    family.save(update_fields=["revoked_at", "revoked_reason"])
    sockets_close(family_group(str(family.id)))  # streams opened with its access tokens end too
    outstanding = OutstandingToken.objects.filter(jti=family.current_jti).first()
    if outstanding is not None:
        BlacklistedToken.objects.get_or_create(token=outstanding)
    key, ttl = family_revoked_cache_key(str(family.id)), int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()) + 5
    _flag_revoked(key, ttl)
    transaction.on_commit(lambda: _flag_revoked(key, ttl))


def _flag_revoked(key: str, ttl: int) -> None:
    try:
        cache.set(key, 1, ttl)
    except REDIS_FAULTS:
        # The revocation is in Postgres; while Redis is out readers check it there. A flag lost this way lets the
        # family's access tokens through once Redis is back, until they expire (ADR 009).
        logger.warning("could not flag a revoked token family in Redis", extra={"key": key})


def _decode_refresh(raw: str) -> dict:
    try:
        payload = token_backend.decode(raw, verify=True)
    except (TokenBackendError, TokenError) as exc:
        raise TokenInvalid() from exc
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) != "refresh" or not payload.get(FAMILY_CLAIM):
        raise TokenInvalid()
    if not payload.get(jwt_settings.JTI_CLAIM) or payload.get(jwt_settings.USER_ID_CLAIM) is None:
        raise TokenInvalid()
    return payload


def token_refresh(*, refresh: str) -> dict:
    """Rotate: the presented refresh token is spent and a new pair returned. Presenting an already rotated
    token means it leaked (or a client retried): the whole family is revoked and TokenReused raised."""
    payload = _decode_refresh(refresh)
    jti, family_id = payload[jwt_settings.JTI_CLAIM], payload[FAMILY_CLAIM]
    error = None
    with transaction.atomic():
        family = RefreshTokenFamily.objects.select_for_update().select_related("user").filter(pk=family_id).first()
        if family is None or str(family.user_id) != str(payload[jwt_settings.USER_ID_CLAIM]):
            raise TokenInvalid()
        if family.revoked_at is not None:
            raise TokenInvalid()
        if family.current_jti != jti:
            revoke_locked_family(family, reason="reuse_detected")
            error = TokenReused()
        else:
            try:
                check_user_may_sign_in(family.user)
            except (AccountInactive, AccountLocked) as exc:
                revoke_locked_family(family, reason="account_unavailable")
                error = exc
            else:
                RefreshToken(refresh, verify=False).blacklist()
                new_refresh = RefreshToken.for_user(family.user)
                new_refresh[FAMILY_CLAIM] = str(family.id)
                family.current_jti = new_refresh[jwt_settings.JTI_CLAIM]
                family.rotated_at = timezone.now()
                family.save(update_fields=["current_jti", "rotated_at"])
                return _pair(new_refresh)
    # Raised after commit: the revocation must stick.
    raise error


def token_family_revoke(*, refresh: str, user: User | None = None) -> None:
    """Sign out of the API: the family of this refresh token can no longer be refreshed or used."""
    payload = _decode_refresh(refresh)
    if user is not None and str(payload[jwt_settings.USER_ID_CLAIM]) != str(user.pk):
        raise TokenInvalid()
    with transaction.atomic():
        family = RefreshTokenFamily.objects.select_for_update().filter(pk=payload[FAMILY_CLAIM]).first()
        if family is None:
            raise TokenInvalid()
        if family.revoked_at is None:
            revoke_locked_family(family, reason="signed_out")


def access_token_authenticate(*, token: str) -> tuple[User, AccessToken]:
    """The user an access token speaks for. Signature (HS256 only), expiry, type and family are checked;
    the user comes from the Redis-backed cache: no database query on the hot path."""
    access, user_id, family_id = access_token_parse(token)
    # One Redis round trip for both the revocation flag and the cached user.
    fam_key, user_key = family_revoked_cache_key(str(family_id)), user_cache_key(user_id)
    try:
        cached = cache.get_many([fam_key, user_key])
    except REDIS_FAULTS:
        # Without Redis, Postgres says whether the family was revoked (and user_get_for_auth reads the user there).
        if RefreshTokenFamily.objects.filter(pk=family_id, revoked_at__isnull=False).exists():
            raise TokenInvalid() from None
        cached = {}
    if cached.get(fam_key):
        raise TokenInvalid()
    user = cached.get(user_key) or user_get_for_auth(user_id=user_id)
    if user is None:
        raise TokenInvalid()
    check_user_may_sign_in(user)
    return user, access


def access_token_parse(token: str) -> tuple[AccessToken, object, object]:
    """(token, user id, family id) of a well-formed, signed, unexpired access token; raises TokenInvalid.
    The rest of `access_token_authenticate` (revoked family, the user) needs Redis."""
    try:
        access = AccessToken(token)
    except TokenError as exc:
        raise TokenInvalid() from exc
    user_id, family_id = access.get(jwt_settings.USER_ID_CLAIM), access.get(FAMILY_CLAIM)
    if user_id is None or family_id is None:
        raise TokenInvalid()
    return access, user_id, family_id
