"""Channel layer conformance tests: written once, run against any channel layer.

:class:`ChannelLayerConformance` holds, as pytest tests, the behaviour the
Django Channels 4 channel layer API promises: sending and receiving, the
order of messages, waiting receivers, ``new_channel``, capacities, groups,
expiry, ``flush``, cancellation and use from several event loops. To run it
against a layer, subclass it in a test module under a name pytest collects
and say how to build the layer::

    from pytest_asgiref.conformance import ChannelLayerConformance

    from myproject.layers import MyChannelLayer


    class TestMyChannelLayer(ChannelLayerConformance):
        def make_layer(self, **options):
            return MyChannelLayer(**options)

``make_layer`` gets the constructor options Channels layers share
(``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``), only
those a test needs; it adds whatever else the layer wants (hosts, a prefix
unique to the test), and may return an awaitable of the layer. Every test
builds its own layers inside its own event loop and hands each to
:meth:`~ChannelLayerConformance.close_layer` at the end, which flushes and
closes it; override that coroutine when a layer needs other cleanup.

The defaults hold a layer to the strictest behaviour, the one
``asgiref_core.inmemory.InMemoryChannelLayer`` has. Where a layer
legitimately differs (a networked layer's capacities and expiry, say), the
subclass declares it by setting the documented class attributes. A test the
difference rules out is skipped with a reason naming the attribute; no check
is loosened otherwise.

The tests are coroutines: the class carries ``pytest.mark.asyncio`` (so
pytest-asyncio's strict mode runs them) and a ``pytest.mark.timeout``, and
subclasses inherit both.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar, TypeAlias

import pytest

from asgiref_core.base_layer import ChannelFull

__all__ = ["ChannelLayerConformance"]

_Errors: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]

# How long a test gives a receive to reach its wait before it sends.
_SETTLE = 0.1
# How long a receive that is due a message may take before the test fails.
_RECEIVE_TIMEOUT = 5.0
# The expiry the timing tests give a layer that keeps exact time, and how
# long past a deadline they look for the item to be gone.
_EXACT_LIFETIME = 0.5
_LATE_MARGIN = 0.2

# A channel is either named by the caller or made by new_channel() (the
# process-specific kind, which networked layers route differently).
_KINDS = ("plain", "process-specific")

# What the specification allows in a process-specific channel name.
_SPECIFIC_NAME = re.compile(r"^[a-zA-Z0-9_.\-]+![a-zA-Z0-9_.\-]*$")
_MAX_NAME_LENGTH = 100

_BAD_CHANNEL_NAMES: tuple[object, ...] = (
    "",
    "has space",
    "caf\u00e9",
    "slash/name",
    "two!bangs!",
    "x" * _MAX_NAME_LENGTH,
    5,
    None,
    b"bytes",
)
_BAD_GROUP_NAMES: tuple[object, ...] = (
    "",
    "has space",
    "caf\u00e9",
    "group!local",
    "x" * _MAX_NAME_LENGTH,
    5,
    None,
    b"bytes",
)

_SENTINEL = {"type": "conformance.sentinel"}


def _name_id(name: object) -> str:
    text = repr(name)
    return text if len(text) <= 20 else f"{text[:12]}...({len(text)} chars)"


def _message(number: int, **extra: Any) -> dict[str, Any]:
    return {"type": "conformance.message", "number": number, **extra}


async def _within(awaitable: Awaitable[Any], what: str) -> Any:
    """Await ``awaitable``, failing the test if it takes ``_RECEIVE_TIMEOUT``."""
    try:
        async with asyncio.timeout(_RECEIVE_TIMEOUT):
            return await awaitable
    except TimeoutError:
        msg = (
            f"{what} got nothing within {_RECEIVE_TIMEOUT:g} s: a message it was "
            "due was lost or never delivered"
        )
        pytest.fail(msg)


async def _receive(layer: Any, channel: str) -> Any:
    return await _within(layer.receive(channel), f"receive({channel!r})")


async def _assert_nothing_queued(layer: Any, channel: str) -> None:
    """Check ``channel`` holds nothing, by sending a sentinel and receiving it."""
    await layer.send(channel, dict(_SENTINEL))
    got = await _receive(layer, channel)
    assert got == _SENTINEL, (
        f"channel {channel!r} should have held nothing, but it still held {got!r}"
    )


async def _channel(layer: Any, kind: str, label: str) -> str:
    if kind == "plain":
        return f"conformance.{label}"
    name: str = await layer.new_channel(f"conformance.{label}")
    return name


async def _settle() -> None:
    await asyncio.sleep(_SETTLE)


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


async def _accepted_before_full(
    layer: Any, channel: str, error: _Errors, limit: int = 10
) -> int:
    """How many messages ``channel`` takes before a send raises ``error``."""
    for count in range(limit):
        try:
            await layer.send(channel, _message(count))
        except error:
            return count
    return limit


class ChannelLayerConformance:
    """The channel layer API's behaviour; subclass it and define ``make_layer``.

    The class attributes declare where a layer legitimately differs from the
    strict behaviour they default to.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [
        pytest.mark.asyncio,
        # Generous: the slowest test waits about two expiries.
        pytest.mark.timeout(30),
    ]

    #: The layer's ``extensions``, which a test checks. Tests of an
    #: extension missing from it (``"groups"``, ``"flush"``) are skipped.
    expected_extensions: ClassVar[tuple[str, ...]] = ("flush", "groups")

    #: What ``send`` raises for a channel holding its capacity.
    channel_full_error: ClassVar[type[BaseException]] = ChannelFull

    #: What ``send`` and ``group_send`` raise for a message that is not a dict
    #: (an exception class, or a tuple of them).
    non_dict_message_error: ClassVar[_Errors] = TypeError

    #: What ``send`` raises for a message holding the key
    #: ``"__asgi_channel__"``, which layers reserve for routing.
    reserved_key_error: ClassVar[_Errors] = ValueError

    #: How many seconds late the layer may drop an expired message or group
    #: membership: 0 for a layer that keeps exact time. A layer that counts
    #: whole seconds sets 1; the expiry tests then give it whole-second
    #: ``expiry`` and ``group_expiry`` values and wait that much longer.
    expiry_resolution: ClassVar[float] = 0

    #: Whether a channel leaves every group once a message on it expires
    #: unreceived (nothing is reading it).
    expired_channel_leaves_groups: ClassVar[bool] = True

    #: Whether a send from an event loop in another thread wakes a receive
    #: waiting on the test's loop.
    sends_from_other_loops: ClassVar[bool] = True

    #: Whether receives may wait on event loops in several threads at once.
    receives_on_several_loops: ClassVar[bool] = True

    # -- what a subclass provides ----------------------------------------------

    def make_layer(self, **options: Any) -> Any:
        """Build the layer under test with ``options``; may return an awaitable."""
        msg = (
            f"{type(self).__name__} must define make_layer(self, **options) "
            "returning the channel layer to test, built with those options"
        )
        raise NotImplementedError(msg)

    async def close_layer(self, layer: Any) -> None:
        """Release a layer after a test: ``flush()`` it, then ``close()`` it.

        ``flush`` runs only when ``expected_extensions`` lists it, ``close``
        only when the layer has one.
        """
        if "flush" in self.expected_extensions:
            await layer.flush()
        close = getattr(layer, "close", None)
        if close is not None:
            await close()

    # -- helpers ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _open(self, **options: Any) -> AsyncIterator[Any]:
        layer = self.make_layer(**options)
        if inspect.isawaitable(layer):
            layer = await layer
        try:
            yield layer
        finally:
            await self.close_layer(layer)

    def _require(self, attribute: str, why: str) -> None:
        if not getattr(self, attribute):
            pytest.skip(f"{type(self).__name__}.{attribute} is False: {why}")

    def _require_extension(self, extension: str) -> None:
        if extension not in self.expected_extensions:
            pytest.skip(
                f"{type(self).__name__}.expected_extensions does not list {extension!r}"
            )

    def _lifetime(self) -> float:
        """The ``expiry``/``group_expiry`` the timing tests give the layer."""
        resolution = self.expiry_resolution
        if isinstance(resolution, bool) or not isinstance(resolution, int | float):
            msg = (
                f"{type(self).__name__}.expiry_resolution must be a number of "
                f"seconds (got {resolution!r})"
            )
            raise TypeError(msg)
        if resolution < 0:
            msg = (
                f"{type(self).__name__}.expiry_resolution must be 0 or more "
                f"(got {resolution!r})"
            )
            raise ValueError(msg)
        if resolution == 0:
            return _EXACT_LIFETIME
        # Whole-second layers may take only ints (Redis's EXPIRE does).
        return int(resolution) if float(resolution).is_integer() else resolution

    def _gone_after(self, lifetime: float) -> float:
        """How long after it was last renewed an item must be gone."""
        return lifetime + self.expiry_resolution + _LATE_MARGIN

    # -- sending and receiving -------------------------------------------------

    async def test_extensions_are_the_declared_ones(self) -> None:
        """The layer's ``extensions`` list the declared optional API parts."""
        async with self._open() as layer:
            assert sorted(layer.extensions) == sorted(self.expected_extensions)

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_sent_message_is_received_unchanged(self, kind: str) -> None:
        """A message sent to a channel is received from it, equal to what was sent."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "roundtrip")
            message = _message(1, text="h\u00e9llo", data=b"\x00\xff", items=[1, "a"])
            await layer.send(channel, message)
            assert await _receive(layer, channel) == message

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_messages_on_one_channel_arrive_in_send_order(
        self, kind: str
    ) -> None:
        """Messages on one channel are received first in, first out."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "fifo")
            for number in range(10):
                await layer.send(channel, _message(number))
            got = [(await _receive(layer, channel))["number"] for _ in range(10)]
            assert got == list(range(10))

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_channels_do_not_share_messages(self, kind: str) -> None:
        """Each channel gives back only the messages sent to it."""
        async with self._open() as layer:
            first = await _channel(layer, kind, "first")
            second = await _channel(layer, kind, "second")
            for number in range(3):
                await layer.send(first, _message(number, to="first"))
                await layer.send(second, _message(number, to="second"))
            for channel, label in ((second, "second"), (first, "first")):
                got = [await _receive(layer, channel) for _ in range(3)]
                assert got == [_message(n, to=label) for n in range(3)]
                await _assert_nothing_queued(layer, channel)

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_receive_waits_for_a_later_send(self, kind: str) -> None:
        """A receive on an empty channel waits, and returns the next message sent."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "waiting")
            receiver = asyncio.create_task(layer.receive(channel))
            await _settle()
            assert not receiver.done(), "receive() on an empty channel did not wait"
            await layer.send(channel, _message(1))
            assert await _within(receiver, "the waiting receive") == _message(1)

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_each_waiting_receiver_gets_its_own_message(self, kind: str) -> None:
        """Several receives waiting on one channel each get exactly one message."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "several")
            receivers = [asyncio.create_task(layer.receive(channel)) for _ in range(3)]
            await _settle()
            for number in range(3):
                await layer.send(channel, _message(number))
            got = [await _within(task, "a waiting receive") for task in receivers]
            assert sorted(message["number"] for message in got) == [0, 1, 2]
            await _assert_nothing_queued(layer, channel)

    async def test_new_channel_names_are_unique_valid_and_usable(self) -> None:
        """``new_channel`` makes distinct process-specific names one can use."""
        async with self._open() as layer:
            names = [await layer.new_channel("conformance.fresh") for _ in range(20)]
            assert len(set(names)) == len(names), f"repeated names: {names}"
            default = await layer.new_channel()
            assert default.startswith("specific"), default
            for name in [*names, default]:
                assert isinstance(name, str)
                assert len(name) < _MAX_NAME_LENGTH, name
                assert _SPECIFIC_NAME.match(name), (
                    f"{name!r} is not a process-specific channel name "
                    "(ASCII letters, digits, '-', '_', '.', one '!')"
                )
            assert all(name.startswith("conformance.fresh") for name in names)
            first, second = names[:2]
            await layer.send(first, _message(1))
            await layer.send(second, _message(2))
            assert await _receive(layer, second) == _message(2)
            assert await _receive(layer, first) == _message(1)

    # -- capacity --------------------------------------------------------------

    async def test_send_to_a_full_channel_raises_channel_full(self) -> None:
        """A channel holding ``capacity`` messages refuses more, and keeps its own."""
        async with self._open(capacity=3) as layer:
            channel = "conformance.full"
            for number in range(3):
                await layer.send(channel, _message(number))
            with pytest.raises(self.channel_full_error):
                await layer.send(channel, _message(3))
            # Other channels are not affected.
            await layer.send("conformance.other", _message(0))
            got = [(await _receive(layer, channel))["number"] for _ in range(3)]
            assert got == [0, 1, 2]
            await _assert_nothing_queued(layer, channel)
            await layer.send(channel, _message(4))
            assert await _receive(layer, channel) == _message(4)

    async def test_channel_capacity_overrides_by_glob_and_regex_first_match_wins(
        self,
    ) -> None:
        """``channel_capacity`` sets capacities by glob or regex; first match wins."""
        capacities = {
            "conformance.big.*": 4,
            re.compile(r"^conformance\.re\.\d+$"): 2,
            "conformance.*": 1,
        }
        error = self.channel_full_error
        async with self._open(capacity=3, channel_capacity=capacities) as layer:
            accepted = {
                channel: await _accepted_before_full(layer, channel, error)
                for channel in (
                    "conformance.big.x",
                    "conformance.re.7",
                    "conformance.small",
                    "elsewhere",
                )
            }
        assert accepted == {
            "conformance.big.x": 4,
            "conformance.re.7": 2,
            "conformance.small": 1,
            "elsewhere": 3,
        }
        reordered = {"conformance.*": 1, "conformance.big.*": 4}
        async with self._open(capacity=3, channel_capacity=reordered) as layer:
            assert await _accepted_before_full(layer, "conformance.big.x", error) == 1

    # -- bad input -------------------------------------------------------------

    async def test_message_that_is_not_a_dict_is_refused(self) -> None:
        """``send`` and ``group_send`` refuse a message that is not a dict."""
        async with self._open() as layer:
            channel = "conformance.not-a-dict"
            with pytest.raises(self.non_dict_message_error):
                await layer.send(channel, ["not", "a", "dict"])
            await _assert_nothing_queued(layer, channel)
            if "groups" in self.expected_extensions:
                await layer.group_add("conformance.group", channel)
                with pytest.raises(self.non_dict_message_error):
                    await layer.group_send("conformance.group", ["not", "a", "dict"])
                await _assert_nothing_queued(layer, channel)

    async def test_message_with_the_reserved_key_is_refused(self) -> None:
        """``send`` refuses a message holding ``__asgi_channel__``."""
        async with self._open() as layer:
            channel = "conformance.reserved"
            with pytest.raises(self.reserved_key_error):
                await layer.send(channel, {"type": "x", "__asgi_channel__": channel})
            await _assert_nothing_queued(layer, channel)

    @pytest.mark.parametrize("name", _BAD_CHANNEL_NAMES, ids=_name_id)
    async def test_invalid_channel_name_is_refused(self, name: object) -> None:
        """An invalid channel name makes every method taking one raise TypeError."""
        async with self._open() as layer:
            with pytest.raises(TypeError):
                await layer.send(name, _message(1))
            with pytest.raises(TypeError):
                await asyncio.wait_for(layer.receive(name), _RECEIVE_TIMEOUT)
            if "groups" in self.expected_extensions:
                with pytest.raises(TypeError):
                    await layer.group_add("conformance.group", name)
                with pytest.raises(TypeError):
                    await layer.group_discard("conformance.group", name)

    @pytest.mark.parametrize("name", _BAD_GROUP_NAMES, ids=_name_id)
    async def test_invalid_group_name_is_refused(self, name: object) -> None:
        """An invalid group name makes every group method raise TypeError."""
        self._require_extension("groups")
        async with self._open() as layer:
            with pytest.raises(TypeError):
                await layer.group_add(name, "conformance.member")
            with pytest.raises(TypeError):
                await layer.group_discard(name, "conformance.member")
            with pytest.raises(TypeError):
                await layer.group_send(name, _message(1))

    # -- isolation -------------------------------------------------------------

    async def test_changing_a_message_after_send_does_not_change_what_arrives(
        self,
    ) -> None:
        """A message is delivered as it was when sent, nested values included."""
        async with self._open() as layer:
            channel = "conformance.isolated"
            message = _message(1, items=[1, 2], nested={"key": "value"})
            await layer.send(channel, message)
            message["items"].append(3)
            message["nested"]["key"] = "changed"
            message["added"] = True
            got = await _receive(layer, channel)
            assert got == _message(1, items=[1, 2], nested={"key": "value"})

    async def test_group_receivers_do_not_share_mutable_state(self) -> None:
        """Each group member gets its own copy of a group message."""
        self._require_extension("groups")
        async with self._open() as layer:
            group, first, second = "conformance.g", "conformance.a", "conformance.b"
            await layer.group_add(group, first)
            await layer.group_add(group, second)
            message = _message(1, items=[1, 2], nested={"key": "value"})
            await layer.group_send(group, message)
            message["items"].append("sender")
            received = await _receive(layer, first)
            received["items"].append("first receiver")
            received["nested"]["key"] = "changed"
            expected = _message(1, items=[1, 2], nested={"key": "value"})
            assert await _receive(layer, second) == expected

    # -- groups ----------------------------------------------------------------

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_group_send_reaches_every_member_once(self, kind: str) -> None:
        """``group_send`` puts the message on each member channel, once."""
        self._require_extension("groups")
        async with self._open() as layer:
            members = [await _channel(layer, kind, f"member{n}") for n in range(3)]
            outsider = await _channel(layer, kind, "outsider")
            for channel in members:
                await layer.group_add("conformance.group", channel)
            await layer.group_add("conformance.group", members[0])  # twice
            await layer.group_send("conformance.group", _message(1))
            for channel in members:
                assert await _receive(layer, channel) == _message(1)
            for channel in [*members, outsider]:
                await _assert_nothing_queued(layer, channel)

    async def test_group_discard_stops_delivery(self) -> None:
        """A channel discarded from a group no longer gets its messages."""
        self._require_extension("groups")
        async with self._open() as layer:
            group, kept, left = "conformance.g", "conformance.kept", "conformance.left"
            await layer.group_add(group, kept)
            await layer.group_add(group, left)
            await layer.group_discard(group, left)
            await layer.group_send(group, _message(1))
            assert await _receive(layer, kept) == _message(1)
            await _assert_nothing_queued(layer, left)

    async def test_group_discard_of_a_non_member_does_nothing(self) -> None:
        """Discarding a channel that is not a member (or from no group) is a no-op."""
        self._require_extension("groups")
        async with self._open() as layer:
            group, member = "conformance.g", "conformance.member"
            await layer.group_discard("conformance.nobody", member)
            await layer.group_add(group, member)
            await layer.group_discard(group, "conformance.stranger")
            await layer.group_send(group, _message(1))
            assert await _receive(layer, member) == _message(1)
            await layer.group_send("conformance.empty", _message(2))

    async def test_group_send_skips_full_members_and_reaches_the_rest(self) -> None:
        """A full member misses a group message; the others still get it."""
        self._require_extension("groups")
        async with self._open(capacity=1) as layer:
            group, full, free = "conformance.g", "conformance.full", "conformance.free"
            await layer.group_add(group, full)
            await layer.group_add(group, free)
            await layer.send(full, _message(0))
            await layer.group_send(group, _message(1))
            assert await _receive(layer, free) == _message(1)
            assert await _receive(layer, full) == _message(0)
            await _assert_nothing_queued(layer, full)

    # -- expiry ----------------------------------------------------------------

    async def test_unreceived_message_expires_after_expiry(self) -> None:
        """A message is kept until ``expiry`` seconds pass, then dropped."""
        lifetime = self._lifetime()
        async with self._open(expiry=lifetime) as layer:
            start = asyncio.get_running_loop().time()
            await layer.send("conformance.kept", _message(1))
            await layer.send("conformance.expired", _message(2))
            await _sleep_until(start + 0.4 * lifetime)
            assert await _receive(layer, "conformance.kept") == _message(1)
            await _sleep_until(start + self._gone_after(lifetime))
            await _assert_nothing_queued(layer, "conformance.expired")

    async def test_channel_whose_message_expired_leaves_its_groups(self) -> None:
        """A channel with an expired message is taken out of every group."""
        self._require_extension("groups")
        self._require(
            "expired_channel_leaves_groups",
            "its channels stay in their groups after a message expires",
        )
        lifetime = self._lifetime()
        async with self._open(expiry=lifetime) as layer:
            group, idle, active = "conformance.g", "conformance.idle", "conformance.on"
            await layer.group_add(group, idle)
            await layer.group_add(group, active)
            start = asyncio.get_running_loop().time()
            await layer.send(idle, _message(0))
            await _sleep_until(start + self._gone_after(lifetime))
            await layer.group_send(group, _message(1))
            assert await _receive(layer, active) == _message(1)
            await _assert_nothing_queued(layer, idle)

    async def test_group_membership_expires_after_group_expiry(self) -> None:
        """A membership lasts ``group_expiry`` seconds after ``group_add``."""
        self._require_extension("groups")
        lifetime = self._lifetime()
        async with self._open(group_expiry=lifetime) as layer:
            group, member = "conformance.g", "conformance.member"
            start = asyncio.get_running_loop().time()
            await layer.group_add(group, member)
            await _sleep_until(start + 0.4 * lifetime)
            await layer.group_send(group, _message(1))
            assert await _receive(layer, member) == _message(1)
            await _sleep_until(start + self._gone_after(lifetime))
            await layer.group_send(group, _message(2))
            await _assert_nothing_queued(layer, member)

    async def test_group_add_again_renews_the_membership(self) -> None:
        """Adding a member again restarts its ``group_expiry``."""
        self._require_extension("groups")
        lifetime = self._lifetime()
        async with self._open(group_expiry=lifetime) as layer:
            group, member = "conformance.g", "conformance.member"
            start = asyncio.get_running_loop().time()
            await layer.group_add(group, member)
            await _sleep_until(start + 0.6 * lifetime)
            await layer.group_add(group, member)
            # Past the first membership's expiry, well before the renewed one's.
            await _sleep_until(start + 1.2 * lifetime)
            await layer.group_send(group, _message(1))
            assert await _receive(layer, member) == _message(1)

    # -- flush -----------------------------------------------------------------

    async def test_flush_drops_messages_and_groups(self) -> None:
        """``flush`` drops every queued message and every group; the layer goes on."""
        self._require_extension("flush")
        groups = "groups" in self.expected_extensions
        async with self._open() as layer:
            channel, group = "conformance.flushed", "conformance.g"
            await layer.send(channel, _message(1))
            if groups:
                await layer.group_add(group, channel)
            await layer.flush()
            await _assert_nothing_queued(layer, channel)
            if groups:
                await layer.group_send(group, _message(2))
                await _assert_nothing_queued(layer, channel)

    # -- cancellation ----------------------------------------------------------

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_cancelled_waiting_receiver_loses_no_message(self, kind: str) -> None:
        """Cancelling a waiting receive leaves the next message to later receives."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "cancelled")
            receiver = asyncio.create_task(layer.receive(channel))
            await _settle()
            receiver.cancel()
            with pytest.raises(asyncio.CancelledError):
                await receiver
            await layer.send(channel, _message(1))
            assert await _receive(layer, channel) == _message(1)

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_receiver_cancelled_just_after_a_send_woke_it_loses_no_message(
        self, kind: str
    ) -> None:
        """A message goes to the woken receive, or stays queued if it is cancelled."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "woken")
            receiver = asyncio.create_task(layer.receive(channel))
            await _settle()
            await layer.send(channel, _message(1))
            receiver.cancel()
            try:
                got = await receiver
            except asyncio.CancelledError:
                got = await _receive(layer, channel)
            assert got == _message(1)
            await _assert_nothing_queued(layer, channel)

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_cancelled_woken_receiver_hands_its_message_to_another(
        self, kind: str
    ) -> None:
        """A cancelled woken receive passes its message to another waiting receive."""
        async with self._open() as layer:
            channel = await _channel(layer, kind, "handover")
            first = asyncio.create_task(layer.receive(channel))
            await _settle()
            second = asyncio.create_task(layer.receive(channel))
            await _settle()
            await layer.send(channel, _message(1))
            first.cancel()
            try:
                got = await first
            except asyncio.CancelledError:
                # No further send: the wake-up itself must reach the second.
                got = await _within(second, "the receive still waiting")
            else:
                # The first got it before the cancel landed; finish the second
                # with a message of its own rather than cancelling it too.
                await layer.send(channel, _message(2))
                assert await _within(second, "the second receive") == _message(2)
            assert got == _message(1)
            await _assert_nothing_queued(layer, channel)

    # -- several event loops ---------------------------------------------------

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_send_from_a_loop_in_another_thread_wakes_a_waiting_receive(
        self, kind: str
    ) -> None:
        """A send made on another thread's event loop wakes a receive on this one."""
        self._require(
            "sends_from_other_loops", "it cannot be used from several event loops"
        )
        async with self._open() as layer:
            channel = await _channel(layer, kind, "cross-loop")
            receiver = asyncio.create_task(layer.receive(channel))
            await _settle()
            await asyncio.to_thread(asyncio.run, layer.send(channel, _message(1)))
            assert await _within(receiver, "the waiting receive") == _message(1)

    @pytest.mark.parametrize("kind", _KINDS)
    async def test_receives_on_loops_in_several_threads_each_get_one_message(
        self, kind: str
    ) -> None:
        """Receives waiting on loops in several threads each get one message."""
        self._require(
            "receives_on_several_loops",
            "it receives on only one event loop at a time",
        )
        async with self._open() as layer:
            channel = await _channel(layer, kind, "several-loops")
            receivers = [
                asyncio.ensure_future(
                    asyncio.to_thread(asyncio.run, _receive(layer, channel))
                )
                for _ in range(3)
            ]
            await _settle()
            for number in range(3):
                await layer.send(channel, _message(number))
            got = await asyncio.gather(*receivers)
            assert sorted(message["number"] for message in got) == [0, 1, 2]
