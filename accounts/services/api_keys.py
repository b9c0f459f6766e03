"""API keys for integrators: public key id + secret shown once, stored as HMAC-SHA256 under a settings pepper.

Secrets are 240 random bits, so a fast keyed hash is enough (no password-style slow hash) and every API
call can afford to verify one. The (key, owner) pair is cached in Redis briefly; any change to either row
drops it (accounts.signals), so a revoked key stops working at once. A verified call costs one Redis GET; without
Redis, one Postgres query (ADR 009).
"""
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from brokerx.faults import REDIS_FAULTS

from ..errors import AccountInactive, AccountLocked, ApiKeyInvalid
from ..models import ApiKey, ApiKeyScope, User
from ..selectors import api_key_cache_key

KEY_CACHE_SECONDS = 60
LAST_USED_RESOLUTION_SECONDS = 60
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_MISSING = "missing"


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    secret: str  # shown once; only its HMAC is stored


def _secret_hash(key_id: str, secret: str) -> str:
    return hmac.new(settings.API_KEY_PEPPER.encode(), f"{key_id}:{secret}".encode(), hashlib.sha256).hexdigest()


def _new_key_id() -> str:
    # 20 characters like the Alpaca key ids existing tools expect; 90 random bits.
    return "BX" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(18))


@transaction.atomic
def api_key_create(*, user: User, name: str, scope: str = ApiKeyScope.READ) -> NewApiKey:
    if scope not in ApiKeyScope.values:
        raise ValueError(f"unknown scope {scope!r}")
    key_id, secret = _new_key_id(), secrets.token_urlsafe(30)
    api_key = ApiKey.objects.create(user=user, name=name.strip()[:100] or "API key", key_id=key_id,
                                    secret_hash=_secret_hash(key_id, secret), scope=scope)
    return NewApiKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke (idempotent). Callers reach the key through `api_key_get_for_user`, so only its owner can."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])  # post_save drops the cached copy (now and after commit)
    return api_key


def _load(key_id: str) -> tuple[ApiKey, User] | None:
    cache_key = api_key_cache_key(key_id)
    try:
        cached = cache.get(cache_key)
    except REDIS_FAULTS:  # without Redis, Postgres answers (ADR 009)
        cached, cache_key = None, None
    if cached == _MISSING:
        return None
    if cached is not None:
        return cached
    api_key = ApiKey.objects.select_related("user").filter(key_id=key_id).first()
    if cache_key is not None:
        # Unknown ids are cached too, so guessing ids cannot hammer the database.
        try:
            cache.set(cache_key, (api_key, api_key.user) if api_key else _MISSING, KEY_CACHE_SECONDS)
        except REDIS_FAULTS:
            pass
    return (api_key, api_key.user) if api_key else None


# Key pk -> monotonic time of this process's last write of last_used_at. Kept in process (not Redis) so a
# verified call costs one Redis round trip; each web process writes at most once a minute per key.
_last_touched: dict[int, float] = {}


def _touch_last_used(api_key: ApiKey) -> None:
    if api_key_last_used_due(api_key):
        _last_touched[api_key.pk] = time.monotonic()
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())


def api_key_authenticate(*, key_id: str, secret: str) -> tuple[User, ApiKey]:
    """The owner and key for an (id, secret) pair. Raises ApiKeyInvalid (unknown, wrong secret, revoked — never
    saying which), AccountLocked or AccountInactive. Used by the native API (`Authorization: ApiKey id:secret`),
    the WebSocket middleware and the Alpaca-compatible surface (APCA-API-KEY-ID / APCA-API-SECRET-KEY)."""
    if not api_key_well_formed(key_id, secret):
        raise ApiKeyInvalid()
    user, api_key = api_key_verify(_load(key_id), key_id=key_id, secret=secret)
    _touch_last_used(api_key)
    return user, api_key


def api_key_well_formed(key_id: str, secret: str) -> bool:
    """Whether the credentials are worth a look-up at all (empty or oversized ones never match a key)."""
    return bool(key_id) and bool(secret) and len(key_id) <= 32 and len(secret) <= 128


def api_key_verify(loaded: tuple[ApiKey, User] | None, *, key_id: str, secret: str) -> tuple[User, ApiKey]:
    """The checks of `api_key_authenticate` on an already loaded (key, owner) pair (None: unknown id)."""
    if loaded is None:
        _secret_hash(key_id, secret)  # same work either way
        raise ApiKeyInvalid()
    api_key, user = loaded
    if not hmac.compare_digest(_secret_hash(key_id, secret), api_key.secret_hash) or api_key.revoked_at is not None:
        raise ApiKeyInvalid()
    if not user.is_active:
        raise AccountInactive()
    if user.locked_at is not None:
        raise AccountLocked()
    return user, api_key


def api_key_secret_matches(api_key: ApiKey, secret: str) -> bool:
    """Whether `secret` is this key's secret (revocation and the owner are `api_key_verify`'s to check)."""
    return hmac.compare_digest(_secret_hash(api_key.key_id, secret), api_key.secret_hash)


def api_key_last_used_due(api_key: ApiKey) -> bool:
    """Whether this process would write the key's last_used_at on its next use."""
    last = _last_touched.get(api_key.pk, -LAST_USED_RESOLUTION_SECONDS)
    return time.monotonic() - last >= LAST_USED_RESOLUTION_SECONDS
