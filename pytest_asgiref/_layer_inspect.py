"""Looking into a channel layer without taking anything out of it.

``asgi_channel_layer`` shows a test what is queued on a channel and who is in
a group. How depends on the layer:

- a layer with ``pending(channel)`` and ``group_members(group)`` methods,
  such as :class:`asgiref_core.inmemory.InMemoryChannelLayer`, is asked;
- channels_redis' ``RedisChannelLayer`` is read from its Redis keys, with
  its own serializer. This is best effort: it follows the key layout of
  channels_redis 4, and for a process-local channel it also shows what the
  layer already fetched into its receive buffer;
- any other layer cannot be inspected, and saying so is the answer.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
import time
from typing import Any, Final

__all__ = ["Inspector", "inspector_for", "layer_type_name"]

# Redis glob patterns give these characters a meaning of their own.
_GLOB_SPECIALS: Final = re.compile(r"([*?\[\]\\])")


def layer_type_name(layer: object) -> str:
    cls = type(layer)
    return f"{cls.__module__}.{cls.__qualname__}"


class Inspector:
    """What can be seen of a layer; this base class can see nothing."""

    #: Whether :meth:`pending` and :meth:`group_members` answer at all.
    supported = False

    def __init__(self, layer: Any) -> None:
        self.layer = layer

    def unsupported(self, method: str) -> TypeError:
        msg = (
            f"asgi_channel_layer.{method}(): the layer is a "
            f"{layer_type_name(self.layer)}, which does not support inspection; "
            "pending() and group_members() work with asgiref_core's "
            "InMemoryChannelLayer, channels_redis' RedisChannelLayer, or a layer "
            "that has pending(channel) and group_members(group) methods"
        )
        return TypeError(msg)

    async def pending(self, channel: str) -> list[dict[str, Any]]:
        """The messages queued on ``channel``, oldest first, left in place."""
        raise self.unsupported("pending")

    async def group_members(self, group: str) -> list[str]:
        """The channels in ``group``, sorted."""
        raise self.unsupported("group_members")

    async def groups_of(self, channel: str) -> list[str] | None:
        """The groups ``channel`` is in, sorted; ``None`` when the layer cannot say."""
        return None


async def _result(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class _MethodInspector(Inspector):
    """A layer that answers for itself (asgiref_core's in-memory layer)."""

    supported = True

    async def pending(self, channel: str) -> list[dict[str, Any]]:
        return list(await _result(self.layer.pending(channel)))

    async def group_members(self, group: str) -> list[str]:
        return sorted(await _result(self.layer.group_members(group)))

    async def groups_of(self, channel: str) -> list[str] | None:
        groups: Any = getattr(self.layer, "groups", None)
        if not hasattr(groups, "items"):
            return None
        return sorted(name for name, members in groups.items() if channel in members)


class _RedisInspector(Inspector):
    """channels_redis' ``RedisChannelLayer``, read from its keys (best effort).

    A channel's messages are a sorted set at ``prefix + channel``, scored by
    the time they were sent; every process-local channel of one layer shares
    the set of its ``"...!"`` part, each message naming its channel (or, from
    a group send, channels) under ``__asgi_channel__``. A group is a sorted set
    at ``prefix + ":group:" + group`` of channel names scored by join time.
    Messages past ``expiry`` and memberships past ``group_expiry`` are left
    out, as the layer itself would drop them.
    """

    supported = True

    def _hosts(self) -> range:
        return range(self.layer.ring_size)

    async def pending(self, channel: str) -> list[dict[str, Any]]:
        layer = self.layer
        layer.require_valid_channel_name(channel)
        key = layer.prefix + layer.non_local_name(channel)
        oldest = f"({int(time.time()) - int(layer.expiry)}"
        local = "!" in channel
        found: list[tuple[float, dict[str, Any]]] = []
        for index in self._hosts():
            entries = await layer.connection(index).zrangebyscore(
                key, oldest, "+inf", withscores=True
            )
            for raw, score in entries:
                message = layer.deserialize(raw)
                target = message.pop("__asgi_channel__", None)
                if local and not (
                    target == channel
                    or (isinstance(target, list) and channel in target)
                ):
                    continue
                found.append((float(score), message))
        found.sort(key=lambda entry: entry[0])
        # Fetched from Redis already, waiting in this process for a receive.
        buffer = layer.receive_buffer.get(channel) if local else None
        buffered = [copy.deepcopy(message) for message in getattr(buffer, "_queue", ())]
        return buffered + [message for _, message in found]

    def _group_key(self, group: str) -> bytes:
        return f"{self.layer.prefix}:group:{group}".encode()

    async def group_members(self, group: str) -> list[str]:
        layer = self.layer
        layer.require_valid_group_name(group)
        oldest = f"({int(time.time()) - int(layer.group_expiry)}"
        connection = layer.connection(layer.consistent_hash(group))
        members = await connection.zrangebyscore(self._group_key(group), oldest, "+inf")
        return sorted(member.decode() for member in members)

    async def groups_of(self, channel: str) -> list[str] | None:
        layer = self.layer
        start = f"{layer.prefix}:group:".encode()
        pattern = _GLOB_SPECIALS.sub(r"\\\1", layer.prefix) + ":group:*"
        oldest = int(time.time()) - int(layer.group_expiry)
        groups: set[str] = set()
        for index in self._hosts():
            connection = layer.connection(index)
            async for key in connection.scan_iter(match=pattern):
                score = await connection.zscore(key, channel)
                if score is not None and score > oldest:
                    groups.add(key[len(start) :].decode())
        return sorted(groups)


def _is_redis_layer(layer: object) -> bool:
    # A RedisChannelLayer exists only once channels_redis has been imported.
    core = sys.modules.get("channels_redis.core")
    redis_layer = getattr(core, "RedisChannelLayer", None)
    return isinstance(redis_layer, type) and isinstance(layer, redis_layer)


def inspector_for(layer: object) -> Inspector:
    """The way to look into ``layer``."""
    if _is_redis_layer(layer):
        return _RedisInspector(layer)
    if callable(getattr(layer, "pending", None)) and callable(
        getattr(layer, "group_members", None)
    ):
        return _MethodInspector(layer)
    return Inspector(layer)
