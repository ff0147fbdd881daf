"""What ``asgi_channel_layer`` hands a test: the layer's API, plus checks.

:class:`AsyncChannelLayerHarness` is for ``async def`` tests; every method is
a coroutine run on the test's loop. :class:`BlockingChannelLayerHarness` is
its twin for sync tests, each method running the async one on the portal's
loop. Both add to the layer's own methods a ``receive`` that gives up after a
timeout and says why, ``receive_nothing``, and a look at what is queued
(``pending``) and who is in a group (``group_members``) without taking
anything.
"""

from __future__ import annotations

import asyncio
import reprlib
from collections import deque
from typing import Any, Final

from pytest_asgiref._layer_inspect import Inspector, inspector_for, layer_type_name
from pytest_asgiref._portal import Portal

__all__ = ["AsyncChannelLayerHarness", "BlockingChannelLayerHarness"]

Message = dict[str, Any]

# How often receive_nothing looks at a channel's queue.
_POLL_INTERVAL: Final = 0.01

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxdict = 6
_short.maxlist = 6
_short.maxlevel = 3


class AsyncChannelLayerHarness:
    """``asgi_channel_layer`` in async tests: a channel layer, awaitable.

    ``send``, ``new_channel``, ``group_add``, ``group_discard``,
    ``group_send`` and ``flush`` are the layer's own. ``receive`` fails after
    ``timeout`` seconds, ``receive_nothing`` checks that nothing arrives, and
    ``pending`` and ``group_members`` look without taking. ``layer`` is the
    layer itself.
    """

    def __init__(self, layer: Any) -> None:
        #: The channel layer this harness drives.
        self.layer = layer
        self._inspector: Inspector = inspector_for(layer)
        # Messages receive_nothing had to take from a layer it cannot look
        # into, handed out first by receive.
        self._held: dict[str, deque[Message]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.layer!r}>"

    # -- the layer's API ------------------------------------------------------

    async def send(self, channel: str, message: Message) -> None:
        await self.layer.send(channel, message)

    async def receive(self, channel: str, timeout: float = 1.0) -> Message:
        """The next message on ``channel``, waiting at most ``timeout`` seconds.

        Raises :class:`TimeoutError` naming the channel, what is queued on it
        and the groups it is in when nothing comes.
        """
        held = self._held.get(channel)
        if held:
            message = held.popleft()
            if not held:
                del self._held[channel]
            return message
        try:
            async with asyncio.timeout(timeout):
                message = await self.layer.receive(channel)
        except TimeoutError:
            msg = await self._timeout_message(channel, timeout)
            raise TimeoutError(msg) from None
        result: Message = message
        return result

    async def new_channel(self, prefix: str | None = None) -> str:
        """A new process-local channel name (with the layer's default prefix)."""
        name: str = await (
            self.layer.new_channel()
            if prefix is None
            else self.layer.new_channel(prefix)
        )
        return name

    async def group_add(self, group: str, channel: str) -> None:
        await self.layer.group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self.layer.group_discard(group, channel)

    async def group_send(self, group: str, message: Message) -> None:
        await self.layer.group_send(group, message)

    async def flush(self) -> None:
        """Drop every queued message and group membership."""
        self._held.clear()
        await self.layer.flush()

    # -- checks -----------------------------------------------------------------

    async def receive_nothing(self, channel: str, timeout: float = 0.1) -> bool:
        """Whether no message arrives on ``channel`` within ``timeout`` seconds.

        Returns ``False`` as soon as one is queued, and leaves it there for
        :meth:`receive`.
        """
        if self._held.get(channel):
            return False
        if not self._inspector.supported:
            return await self._receive_nothing_by_receiving(channel, timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self._inspector.pending(channel):
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(_POLL_INTERVAL, remaining))

    async def _receive_nothing_by_receiving(self, channel: str, timeout: float) -> bool:
        # Nothing to look at: receive, and keep what came for receive().
        try:
            async with asyncio.timeout(timeout):
                message = await self.layer.receive(channel)
        except TimeoutError:
            return True
        self._held.setdefault(channel, deque()).append(message)
        return False

    async def pending(self, channel: str) -> list[Message]:
        """The messages queued on ``channel``, oldest first, not taken.

        Raises :class:`TypeError` for a layer that cannot be looked into.
        """
        held = list(self._held.get(channel, ()))
        return held + await self._inspector.pending(channel)

    async def group_members(self, group: str) -> list[str]:
        """The channels in ``group``, sorted.

        Raises :class:`TypeError` for a layer that cannot be looked into.
        """
        return await self._inspector.group_members(group)

    async def _timeout_message(self, channel: str, timeout: float) -> str:
        text = (
            f"asgi_channel_layer.receive({channel!r}): no message arrived within "
            f"{timeout:g} s"
        )
        if not self._inspector.supported:
            return (
                f"{text} (the layer, a {layer_type_name(self.layer)}, cannot be "
                "inspected for pending messages or groups)"
            )
        try:
            queued = await self._inspector.pending(channel)
            groups = await self._inspector.groups_of(channel)
        except Exception as error:  # the timeout is the news, not this
            return f"{text} (looking into the layer failed: {error!r})"
        if queued:
            shown = ", ".join(_short.repr(message) for message in queued)
            text += f"; {len(queued)} message(s) are pending on it: {shown}"
        else:
            text += "; nothing is pending on it"
        if groups is None:
            text += " (the layer cannot say which groups it is in)"
        elif groups:
            text += "; it is in group(s) " + ", ".join(repr(name) for name in groups)
        else:
            text += "; it is in no group"
        if not queued:
            text += (
                ". Check that the code under test sends to this very channel "
                "name, and that no other receiver takes the message first"
            )
        return text


class BlockingChannelLayerHarness:
    """``asgi_channel_layer`` in sync tests: the same methods, blocking."""

    def __init__(self, harness: AsyncChannelLayerHarness, portal: Portal) -> None:
        #: The async harness this one drives.
        self.harness = harness
        self._call = portal.call

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.layer!r}>"

    @property
    def layer(self) -> Any:
        """The channel layer itself; its coroutines belong on the portal's loop."""
        return self.harness.layer

    def send(self, channel: str, message: Message) -> None:
        self._call(self.harness.send(channel, message))

    def receive(self, channel: str, timeout: float = 1.0) -> Message:
        return self._call(self.harness.receive(channel, timeout))

    def new_channel(self, prefix: str | None = None) -> str:
        return self._call(self.harness.new_channel(prefix))

    def group_add(self, group: str, channel: str) -> None:
        self._call(self.harness.group_add(group, channel))

    def group_discard(self, group: str, channel: str) -> None:
        self._call(self.harness.group_discard(group, channel))

    def group_send(self, group: str, message: Message) -> None:
        self._call(self.harness.group_send(group, message))

    def flush(self) -> None:
        self._call(self.harness.flush())

    def receive_nothing(self, channel: str, timeout: float = 0.1) -> bool:
        return self._call(self.harness.receive_nothing(channel, timeout))

    def pending(self, channel: str) -> list[Message]:
        return self._call(self.harness.pending(channel))

    def group_members(self, group: str) -> list[str]:
        return self._call(self.harness.group_members(group))
