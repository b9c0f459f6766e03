"""Drops cached authentication data when a user or API key row changes (lock, verify, password, revoke, delete)."""
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import ApiKey, User
from .selectors import api_key_cache_key, user_cache_key


def _forget(keys: list[str]) -> None:
    # Now, for this transaction's own later reads; again after commit, in case a concurrent request
    # cached the old row in between.
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _user_changed(sender, instance: User, **kwargs) -> None:
    keys = [user_cache_key(instance.pk)]
    keys += [api_key_cache_key(k) for k in ApiKey.objects.filter(user_id=instance.pk).values_list("key_id", flat=True)]
    _forget(keys)


@receiver(post_save, sender=ApiKey)
@receiver(post_delete, sender=ApiKey)
def _api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    _forget([api_key_cache_key(instance.key_id)])
