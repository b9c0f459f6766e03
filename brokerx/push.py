"""Pushes from sync code (the matching worker, request threads) to WebSocket consumers: one pipelined PUBLISH.

The channel layer is channels_redis' pub/sub layer: every web process subscribes once per group it has local
consumers for and hands each message to them. Publishing needs no event loop, so this module publishes with a
plain Redis client in the caller's thread, in the layer's wire format (its serializer, its group channel names):
a batch of execution reports or market updates costs one round trip and no hand-off to another thread, which under
a busy worker waited for the GIL for tens to hundreds of milliseconds. Delivery is at most once (the database is
the record; clients re-sync over REST when a sequence number jumps).
"""
import threading

import redis
from channels.layers import get_channel_layer
from channels_redis.utils import _consistent_hash
from django.conf import settings

from .redis_circuit import GuardedConnection

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _layer_config(alias: str) -> tuple[list, str]:
    config = settings.CHANNEL_LAYERS[alias]
    if config["BACKEND"] != "channels_redis.pubsub.RedisPubSubChannelLayer":
        raise RuntimeError(f"channel layer {alias!r} is not channels_redis' pub/sub layer")
    options = config.get("CONFIG", {})
    return options.get("hosts") or ["redis://127.0.0.1:6379"], options.get("prefix", "asgi")


def _client(host) -> redis.Redis:
    url = host if isinstance(host, str) else host["address"]
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            # Behind the Redis circuit breaker: a frozen Redis costs a push nothing once the circuit is open.
            client = _clients[url] = redis.Redis.from_url(url, connection_class=GuardedConnection,
                                                          socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                                                          socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT)
        return client


def group_channel(prefix: str, group: str) -> str:
    """The Redis channel that channels_redis' pub/sub layer subscribes to for a group (its naming)."""
    return f"{prefix}__group__{group}"


def group_publish(messages: list[tuple[str, dict]], alias: str = "default") -> None:
    """Publish each (group, message) in order, one pipeline per Redis shard. Raises RedisError if Redis is down."""
    if not messages:
        return
    layer = get_channel_layer(alias)
    hosts, prefix = _layer_config(alias)
    pipelines: dict[int, redis.client.Pipeline] = {}
    for group, message in messages:
        channel = group_channel(prefix, group)
        shard = _consistent_hash(channel, len(hosts))
        if shard not in pipelines:
            pipelines[shard] = _client(hosts[shard]).pipeline(transaction=False)
        pipelines[shard].publish(channel, layer.serialize(message))
    for pipeline in pipelines.values():
        pipeline.execute()
