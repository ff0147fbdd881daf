"""An in-memory channel layer that threads and event loops of one process share.

Every operation costs the same however many channels the layer holds: state
lives in per-channel queues found by name, and expiry is driven by two
time-ordered queues of deadlines instead of a scan of every channel. One
lock guards the state, and it is held only for short, non-blocking work, so
loops in several threads can send and receive on the same layer. A receive
waiting on one loop is woken from another thread through
``call_soon_threadsafe``.

A woken receiver takes its message itself rather than being handed one, so a
receiver cancelled after being woken leaves the message queued (and passes
the wake-up on) instead of losing it.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from asgiref_core._message_copy import copy_message as _copy_message
from asgiref_core.base_layer import (
    BaseChannelLayer,
    _channel_full,
    _describe,
    _Pattern,
    _require_positive,
)

__all__ = ["ChannelLayer", "InMemoryChannelLayer", "channel_layer"]

# Channel names that passed validation are remembered, up to this many, so
# the regular expression runs once per name rather than once per message.
_KNOWN_NAMES_LIMIT: Final = 4096

# Deadline queues are compacted once stale entries (for messages already
# received, memberships already gone) outnumber live ones by this much.
_COMPACT_SLACK: Final = 1024


class _Channel:
    """One channel's queued messages and the receivers waiting on it.

    A message is stored as ``(seq, message, shared)``. ``seq`` orders it
    against the deadline queue; ``shared`` marks a message that a group send
    stored once for several channels, which each receiver must copy.
    """

    __slots__ = ("capacity", "messages", "name", "waiters")

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.messages: deque[tuple[int, dict[str, Any], bool]] = deque()
        # Insertion-ordered, with O(1) removal of a cancelled waiter.
        self.waiters: OrderedDict[asyncio.Future[None], None] = OrderedDict()


def _resolve(waiter: asyncio.Future[None]) -> None:
    # Runs on the waiter's loop, where it may have been cancelled meanwhile.
    if not waiter.done():
        waiter.set_result(None)


def _check_message(message: object, method: str, target: str) -> None:
    """Refuse what no channel layer can carry, before anything is stored."""
    if not isinstance(message, dict):
        msg = (
            f"{method}() message must be a dict (got {type(message).__name__}: "
            f"{_describe(message)})"
        )
        raise TypeError(msg)
    if "__asgi_channel__" in message:
        msg = (
            f"{method}() message to {target!r} has the key '__asgi_channel__', "
            "which channel layers reserve for routing; rename it"
        )
        raise ValueError(msg)


class InMemoryChannelLayer(BaseChannelLayer):
    """A channel layer held in this process's memory, with groups and flush.

    It implements the API of Django Channels 4's layers and can be named as
    a ``CHANNEL_LAYERS`` ``BACKEND``. Messages on a channel are received in
    the order they were sent; a channel holding ``capacity`` messages (or
    the capacity ``channel_capacity`` gives it) refuses more with
    :class:`~asgiref_core.base_layer.ChannelFull`. A message not received
    within ``expiry`` seconds is dropped, and its channel leaves every group,
    since nothing is reading it. A group membership lasts ``group_expiry``
    seconds after the last ``group_add``.

    The layer is not bound to an event loop: coroutines on any loop, in any
    thread of the process, may use it at once.
    """

    extensions: ClassVar[list[str]] = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[str | _Pattern, int]
        | Iterable[tuple[str | _Pattern, int]]
        | None = None,
    ) -> None:
        super().__init__(
            expiry=expiry, capacity=capacity, channel_capacity=channel_capacity
        )
        _require_positive("group_expiry", group_expiry, integer=False)
        self.group_expiry = group_expiry
        self._lock = threading.Lock()
        self._known_names: set[str] = set()
        self._channels: dict[str, _Channel] = {}
        # group -> {channel: membership deadline}, and channel -> its groups.
        self._groups: dict[str, dict[str, float]] = {}
        self._memberships: dict[str, set[str]] = {}
        self._membership_count = 0
        # Time-ordered (expiry is the same for every message, and
        # group_expiry for every membership), so only the front needs looking at.
        # Entries name their channel rather than hold it, so a stale entry
        # keeps no idle channel alive.
        self._message_deadlines: deque[tuple[float, str, int]] = deque()
        self._membership_deadlines: deque[tuple[float, str, str]] = deque()
        self._queued = 0
        self._next_seq = 0

    # -- the channel layer API ------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Queue ``message`` on ``channel``; ``ChannelFull`` if the channel is full."""
        if type(channel) is not str or channel not in self._known_names:
            self._learn_channel_name(channel)
        _check_message(message, "send", channel)
        stored = _copy_message(message)
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            state = self._channels.get(channel)
            if state is None:
                state = self._channels[channel] = _Channel(
                    channel, self.get_capacity(channel)
                )
            elif len(state.messages) >= state.capacity:
                raise _channel_full(channel, state.capacity)
            seq = self._next_seq
            self._next_seq = seq + 1
            state.messages.append((seq, stored, False))
            self._message_deadlines.append((now + self.expiry, channel, seq))
            self._queued += 1
            remote = self._choose_waiter(state) if state.waiters else None
        if remote is not None:
            self._wake_remote(channel, remote)

    async def receive(self, channel: str) -> dict[str, Any]:
        """Remove and return the first message on ``channel``, waiting for one.

        Several receivers may wait on one channel, from any loop; each
        message goes to exactly one of them, the longest waiting first.
        """
        if type(channel) is not str or channel not in self._known_names:
            self._learn_channel_name(channel)
        with self._lock:
            taken = self._take(channel)
            if taken is None:
                waiter = self._add_waiter(channel, first=False)
        if taken is not None:
            message, shared = taken
            return _copy_message(message) if shared else message
        return await self._wait(channel, waiter)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A new, unique process-local channel name: ``<prefix>inmemory!<random>``."""
        separator = "" if prefix.endswith(".") else "."
        name = f"{prefix}{separator}inmemory!{secrets.token_hex(6)}"
        try:
            self.require_valid_channel_name(name)
        except TypeError:
            msg = (
                f"new_channel() prefix {prefix!r} does not make a valid channel name "
                f"({name!r}); use ASCII letters, digits, '-', '_' and '.', and keep "
                f"it under {self.MAX_NAME_LENGTH - 30} characters"
            )
            raise TypeError(msg) from None
        return name

    async def flush(self) -> None:
        """Drop every queued message and every group membership.

        Receivers already waiting keep waiting, and get the next message sent.
        """
        with self._lock:
            for name, state in list(self._channels.items()):
                state.messages.clear()
                if not state.waiters:
                    del self._channels[name]
            self._groups.clear()
            self._memberships.clear()
            self._membership_count = 0
            self._message_deadlines.clear()
            self._membership_deadlines.clear()
            self._queued = 0

    async def close(self) -> None:
        """Nothing to release: the layer stays usable, like Channels' in-memory one."""

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group``, or renew its membership."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            deadline = now + self.group_expiry
            members = self._groups.setdefault(group, {})
            if channel not in members:
                self._membership_count += 1
                self._memberships.setdefault(channel, set()).add(group)
            members[channel] = deadline
            self._membership_deadlines.append((deadline, group, channel))
            if (
                len(self._membership_deadlines)
                > 2 * self._membership_count + _COMPACT_SLACK
            ):
                self._compact_memberships()

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; nothing happens if it is not a member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            members = self._groups.get(group)
            if members is not None and channel in members:
                self._remove_member(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Queue ``message`` on every channel in ``group``, skipping full ones."""
        self.require_valid_group_name(group)
        _check_message(message, "group_send", group)
        stored = _copy_message(message)
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            members = self._groups.get(group)
            if not members:
                return
            seq = self._next_seq
            self._next_seq = seq + 1
            entry = (seq, stored, True)
            deadline = now + self.expiry
            channels = self._channels
            deadlines = self._message_deadlines
            remote: list[tuple[str, asyncio.Future[None]]] = []
            for name in members:
                state = channels.get(name)
                if state is None:
                    state = channels[name] = _Channel(name, self.get_capacity(name))
                elif len(state.messages) >= state.capacity:
                    continue
                state.messages.append(entry)
                deadlines.append((deadline, name, seq))
                self._queued += 1
                if state.waiters:
                    waiter = self._choose_waiter(state)
                    if waiter is not None:
                        remote.append((name, waiter))
        for name, waiter in remote:
            self._wake_remote(name, waiter)

    # -- inspection -----------------------------------------------------------

    @property
    def groups(self) -> dict[str, dict[str, float]]:
        """A snapshot of the groups: ``{group: {channel: time.time() it joined}}``."""
        with self._lock:
            offset = time.time() - time.monotonic() - self.group_expiry
            return {
                group: {name: deadline + offset for name, deadline in members.items()}
                for group, members in self._groups.items()
            }

    def pending(self, channel: str) -> list[dict[str, Any]]:
        """Copies of the messages queued on ``channel``, oldest first.

        This exists so tests (and the plugin's fixtures) can see what is
        queued without receiving it: nothing is removed, and expired messages
        are dropped first, as ``receive`` would drop them. The result holds
        copies, so a test that changes them cannot alter what a receiver later
        gets. An unknown or empty channel gives ``[]`` and, like every idle
        channel, is given no state.
        """
        self.require_valid_channel_name(channel)
        with self._lock:
            self._expire(time.monotonic())
            state = self._channels.get(channel)
            if state is None:
                return []
            # Copied under the lock: once received, a message belongs to its
            # receiver, which may change it while a copy is being made.
            return [_copy_message(message) for _, message, _ in state.messages]

    def group_members(self, group: str) -> list[str]:
        """The channels currently in ``group``, sorted; ``[]`` for an unknown group.

        This exists so tests can check who a ``group_send`` would reach.
        Memberships past ``group_expiry``, and those of channels whose
        messages expired, are dropped first, as any other operation would.
        """
        self.require_valid_group_name(group)
        with self._lock:
            self._expire(time.monotonic())
            return sorted(self._groups.get(group, ()))

    # -- internals (the lock is held) -------------------------------------------

    def _take(self, channel: str) -> tuple[dict[str, Any], bool] | None:
        """Pop the channel's first live message, or ``None`` when there is none."""
        self._expire(time.monotonic())
        state = self._channels.get(channel)
        if state is None or not state.messages:
            return None
        _, message, shared = state.messages.popleft()
        self._queued -= 1
        if not state.messages and not state.waiters:
            del self._channels[channel]
        if len(self._message_deadlines) > 2 * self._queued + _COMPACT_SLACK:
            self._compact_messages()
        return message, shared

    def _add_waiter(self, channel: str, *, first: bool) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(
                channel, self.get_capacity(channel)
            )
        state.waiters[waiter] = None
        if first:
            state.waiters.move_to_end(waiter, last=False)
        return waiter

    def _choose_waiter(self, state: _Channel) -> asyncio.Future[None] | None:
        """Pick the longest-waiting receiver that can still run, to wake it.

        One on this thread's loop is woken here. One on another loop is
        returned, for the caller to wake once the lock is released: woken
        under the lock, its thread would start only to block on the lock.
        """
        # No loop runs when a receive abandoned on a closed loop is finalised.
        running = asyncio._get_running_loop()
        waiters = state.waiters
        while waiters:
            waiter, _ = waiters.popitem(last=False)
            if waiter.done():
                continue  # cancelled; its receive cleans up after itself
            if waiter.get_loop() is running:
                waiter.set_result(None)
                return None
            return waiter
        return None

    def _wake_remote(self, channel: str, waiter: asyncio.Future[None] | None) -> None:
        """Wake a receiver on another loop (the lock is not held)."""
        while waiter is not None:
            try:
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:
                pass  # that loop is closed: nobody will ever take from it
            else:
                return
            with self._lock:
                state = self._channels.get(channel)
                if state is None or not state.messages:
                    return
                waiter = self._choose_waiter(state)

    def _learn_channel_name(self, channel: object) -> None:
        """Validate a channel name not seen before, then remember it."""
        self.require_valid_channel_name(channel)
        known = self._known_names
        if len(known) >= _KNOWN_NAMES_LIMIT:
            known.clear()
        known.add(channel)  # type: ignore[arg-type]  # validated as a str

    def _drop_if_idle(self, state: _Channel) -> None:
        if (
            not state.messages
            and not state.waiters
            and self._channels.get(state.name) is state
        ):
            del self._channels[state.name]

    def _expire(self, now: float) -> None:
        deadlines = self._message_deadlines
        while deadlines and deadlines[0][0] <= now:
            _, name, seq = deadlines.popleft()
            state = self._channels.get(name)
            if state is None:
                continue
            messages = state.messages
            dropped = False
            while messages and messages[0][0] <= seq:
                messages.popleft()
                self._queued -= 1
                dropped = True
            if dropped:
                # Nobody is reading this channel: take it out of its groups.
                self._leave_all_groups(state.name)
                self._drop_if_idle(state)
        memberships = self._membership_deadlines
        while memberships and memberships[0][0] <= now:
            deadline, group, channel = memberships.popleft()
            members = self._groups.get(group)
            if members is not None and members.get(channel) == deadline:
                self._remove_member(group, channel)

    def _remove_member(self, group: str, channel: str) -> None:
        members = self._groups[group]
        del members[channel]
        if not members:
            del self._groups[group]
        groups = self._memberships[channel]
        groups.discard(group)
        if not groups:
            del self._memberships[channel]
        self._membership_count -= 1

    def _leave_all_groups(self, channel: str) -> None:
        for group in self._memberships.pop(channel, ()):
            members = self._groups[group]
            del members[channel]
            if not members:
                del self._groups[group]
            self._membership_count -= 1

    def _compact_messages(self) -> None:
        # Keep the entries whose message is still queued: a channel's
        # messages are in seq order, so its first seq tells.
        channels = self._channels
        live: deque[tuple[float, str, int]] = deque()
        for entry in self._message_deadlines:
            state = channels.get(entry[1])
            if (
                state is not None
                and state.messages
                and state.messages[0][0] <= entry[2]
            ):
                live.append(entry)
        self._message_deadlines = live

    def _compact_memberships(self) -> None:
        groups = self._groups
        self._membership_deadlines = deque(
            entry
            for entry in self._membership_deadlines
            if groups.get(entry[1], {}).get(entry[2]) == entry[0]
        )

    # -- waiting ------------------------------------------------------------------

    async def _wait(self, channel: str, waiter: asyncio.Future[None]) -> dict[str, Any]:
        while True:
            try:
                await waiter
            except BaseException:
                self._abandon(channel, waiter)
                raise
            with self._lock:
                taken = self._take(channel)
                if taken is None:
                    # Another receiver got there first: wait again, at the front.
                    waiter = self._add_waiter(channel, first=True)
            if taken is not None:
                message, shared = taken
                return _copy_message(message) if shared else message

    def _abandon(self, channel: str, waiter: asyncio.Future[None]) -> None:
        """Clean up after a receive that ends without a message (cancelled, mostly)."""
        remote = None
        with self._lock:
            state = self._channels.get(channel)
            if state is None:
                return
            if state.waiters.pop(waiter, False) is False and state.messages:
                # A sender chose this receiver: pass the wake-up on, so the
                # message it was meant for does not sit unnoticed.
                remote = self._choose_waiter(state)
            self._drop_if_idle(state)
        self._wake_remote(channel, remote)


# Django Channels' alias for the layer class.
ChannelLayer = InMemoryChannelLayer

#: A ready-made layer for code that imports one instance.
channel_layer = InMemoryChannelLayer()
