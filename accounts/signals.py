"""When a user or API key row changes (lock, verify, password, revoke, delete): cached authentication data is
dropped, and live streams opened with a credential that is gone are closed (accounts/realtime.py)."""
import logging

from django.contrib.auth.signals import user_logged_out
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from brokerx.faults import REDIS_FAULTS

from .models import ApiKey, User
from .realtime import api_key_group, session_group, sockets_close, user_group
from .selectors import api_key_cache_key, user_cache_key

logger = logging.getLogger(__name__)


def _forget(keys: list[str]) -> None:
    # Now, for this transaction's own later reads; again after commit, in case a concurrent request
    # cached the old row in between.
    _delete(keys)
    transaction.on_commit(lambda: _delete(keys))


def _delete(keys: list[str]) -> None:
    try:
        cache.delete_many(keys)
    except REDIS_FAULTS:
        # The change is in Postgres. An entry Redis still holds when it comes back (it was not restarted) is
        # served until it expires (60 s; ADR 009).
        logger.warning("could not drop cached authentication data", extra={"keys": keys})


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _user_changed(sender, instance: User, **kwargs) -> None:
    keys = [user_cache_key(instance.pk)]
    keys += [api_key_cache_key(k) for k in ApiKey.objects.filter(user_id=instance.pk).values_list("key_id", flat=True)]
    _forget(keys)
    if kwargs.get("signal") is post_delete or not instance.is_active or instance.locked_at is not None:
        sockets_close(user_group(instance.pk))  # locked, deactivated or deleted: its live streams end


@receiver(user_logged_out)
def _signed_out(sender, request, user, **kwargs) -> None:
    """Sent before the session is flushed: sockets opened with this browser session end with it."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        sockets_close(session_group(session_key))


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    _forget([api_key_cache_key(instance.key_id)])
    if kwargs.get("signal") is post_delete or instance.revoked_at is not None:
        sockets_close(api_key_group(instance.pk))
