"""InMemoryChannelLayer beyond the shared conformance suite.

What only this layer promises: error messages, sharing across event loops in
several threads under load, bounded memory, and the Channels-compatible
extras. The behaviour every layer shares is held by ``tests/conformance``.
"""

from __future__ import annotations

import asyncio
import gc
import random
import re
import threading
import tracemalloc
from typing import Any

import pytest

from asgiref_core import inmemory
from asgiref_core.base_layer import ChannelFull
from asgiref_core.inmemory import ChannelLayer, InMemoryChannelLayer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


async def test_module_offers_channels_names() -> None:
    assert ChannelLayer is InMemoryChannelLayer
    assert isinstance(inmemory.channel_layer, InMemoryChannelLayer)


class TestErrors:
    async def test_a_message_that_is_not_a_dict_is_refused_with_its_type(
        self,
    ) -> None:
        layer = InMemoryChannelLayer()
        with pytest.raises(
            TypeError, match=r"^send\(\) message must be a dict \(got list"
        ):
            await layer.send("c", [1])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^group_send\(\) message must be a dict"):
            await layer.group_send("g", "text")  # type: ignore[arg-type]

    async def test_the_reserved_routing_key_is_refused(self) -> None:
        layer = InMemoryChannelLayer()
        with pytest.raises(
            ValueError, match="'__asgi_channel__', which channel layers"
        ):
            await layer.send("c", {"type": "x", "__asgi_channel__": "c"})
        await layer.group_add("g", "c")
        with pytest.raises(ValueError, match=r"group_send\(\) message to 'g' has the"):
            await layer.group_send("g", {"type": "x", "__asgi_channel__": "c"})
        await layer.send("c", {"type": "sentinel"})
        assert await layer.receive("c") == {"type": "sentinel"}

    async def test_channel_full_names_the_channel_and_its_capacity(self) -> None:
        layer = InMemoryChannelLayer(channel_capacity={"small.*": 2})
        await layer.send("small.1", {"type": "x"})
        await layer.send("small.1", {"type": "x"})
        with pytest.raises(ChannelFull) as excinfo:
            await layer.send("small.1", {"type": "x"})
        assert (excinfo.value.channel, excinfo.value.capacity) == ("small.1", 2)
        assert "raise 'capacity' or 'channel_capacity'" in str(excinfo.value)

    async def test_channel_full_is_also_channels_own_when_channels_is_loaded(
        self,
    ) -> None:
        channels_exceptions = pytest.importorskip("channels.exceptions")
        layer = InMemoryChannelLayer(capacity=1)
        await layer.send("c", {"type": "x"})
        with pytest.raises(channels_exceptions.ChannelFull) as excinfo:
            await layer.send("c", {"type": "x"})
        assert isinstance(excinfo.value, ChannelFull)
        assert type(excinfo.value).__name__ == "ChannelFull"
        assert excinfo.value.channel == "c"

    async def test_group_expiry_is_checked_like_the_other_options(self) -> None:
        with pytest.raises(
            ValueError, match=r"'group_expiry' must be a positive number"
        ):
            InMemoryChannelLayer(group_expiry=0)
        with pytest.raises(
            TypeError, match=r"'group_expiry' must be a positive number"
        ):
            InMemoryChannelLayer(group_expiry=None)  # type: ignore[arg-type]

    async def test_new_channel_refuses_a_prefix_that_makes_a_bad_name(self) -> None:
        layer = InMemoryChannelLayer()
        with pytest.raises(
            TypeError, match=r"prefix 'bad prefix' does not make a valid"
        ):
            await layer.new_channel("bad prefix")


async def test_new_channel_joins_the_prefix_with_one_dot() -> None:
    layer = InMemoryChannelLayer()
    assert re.fullmatch(r"specific\.inmemory![0-9a-f]{12}", await layer.new_channel())
    assert re.fullmatch(
        r"reply\.inmemory![0-9a-f]{12}", await layer.new_channel("reply")
    )


async def test_groups_snapshot_has_channels_shape() -> None:
    layer = InMemoryChannelLayer()
    await layer.group_add("room", "a")
    await layer.group_add("room", "b")
    snapshot = layer.groups
    assert set(snapshot) == {"room"}
    assert set(snapshot["room"]) == {"a", "b"}
    assert all(isinstance(joined, float) for joined in snapshot["room"].values())
    snapshot["room"].clear()  # a copy: the layer is untouched
    assert set(layer.groups["room"]) == {"a", "b"}


async def test_flush_keeps_waiting_receivers_waiting() -> None:
    layer = InMemoryChannelLayer()
    receiver = asyncio.create_task(layer.receive("c"))
    await asyncio.sleep(0)
    await layer.flush()
    await layer.send("c", {"type": "after.flush"})
    assert await asyncio.wait_for(receiver, 5) == {"type": "after.flush"}


async def test_close_leaves_the_layer_usable() -> None:
    layer = InMemoryChannelLayer()
    await layer.close()
    await layer.send("c", {"type": "x"})
    assert await layer.receive("c") == {"type": "x"}


class TestMessageCopies:
    async def test_nested_values_and_custom_objects_are_copied(self) -> None:
        class Payload:
            def __init__(self) -> None:
                self.items = [1]

        layer = InMemoryChannelLayer()
        payload = Payload()
        sent: dict[str, Any] = {"type": "x", "deep": {"list": [[1]]}, "obj": payload}
        await layer.send("c", sent)
        sent["deep"]["list"][0].append(2)
        payload.items.append(2)
        received = await layer.receive("c")
        assert received["deep"] == {"list": [[1]]}
        assert received["obj"].items == [1]

    async def test_a_message_that_contains_itself_is_copied(self) -> None:
        layer = InMemoryChannelLayer()
        loop: list[Any] = []
        loop.append(loop)
        await layer.send("c", {"type": "x", "loop": loop})
        received = await layer.receive("c")
        inner = received["loop"]
        for _ in range(100):
            assert inner is not loop
            inner = inner[0]

    async def test_flat_messages_from_a_group_send_are_separate_dicts(self) -> None:
        layer = InMemoryChannelLayer()
        await layer.group_add("g", "a")
        await layer.group_add("g", "b")
        await layer.group_send("g", {"type": "x", "n": 1})
        first, second = await layer.receive("a"), await layer.receive("b")
        assert first == second == {"type": "x", "n": 1}
        assert first is not second


async def _drive_in_thread(coroutine_factory: Any) -> Any:
    """Run a coroutine on a new event loop in its own thread; await its result."""
    result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    def run() -> None:
        try:
            value = asyncio.run(coroutine_factory())
        except BaseException as error:  # handed to the awaiting loop
            loop.call_soon_threadsafe(result.set_exception, error)
        else:
            loop.call_soon_threadsafe(result.set_result, value)

    threading.Thread(target=run, name="other-loop").start()
    return await result


async def test_a_woken_receiver_cancelled_before_it_runs_passes_the_message_on() -> (
    None
):
    layer = InMemoryChannelLayer()
    first = asyncio.create_task(layer.receive("c"))
    second = asyncio.create_task(layer.receive("c"))
    await asyncio.sleep(0)
    await layer.send("c", {"type": "only"})  # wakes the first receiver...
    first.cancel()  # ...which is cancelled before it can take the message
    assert await asyncio.wait_for(second, 5) == {"type": "only"}
    with pytest.raises(asyncio.CancelledError):
        await first


class TestAcrossThreads:
    async def test_many_senders_on_many_loops_lose_nothing_and_keep_order(
        self,
    ) -> None:
        layer = InMemoryChannelLayer(capacity=10_000)
        per_sender = 500

        def sender(number: int) -> Any:
            async def send_all() -> None:
                for index in range(per_sender):
                    await layer.send("shared", {"type": "m", "s": number, "i": index})
                    if index % 50 == 0:
                        await asyncio.sleep(0)

            return send_all

        senders = [_drive_in_thread(sender(number)) for number in range(4)]

        async def receive_all() -> list[dict[str, Any]]:
            return [await layer.receive("shared") for _ in range(4 * per_sender)]

        received, *_ = await asyncio.gather(receive_all(), *senders)
        for number in range(4):
            indexes = [m["i"] for m in received if m["s"] == number]
            assert indexes == list(range(per_sender))

    async def test_receivers_cancelled_at_random_lose_no_message(self) -> None:
        layer = InMemoryChannelLayer(capacity=10_000)
        rounds = 300
        received: list[int] = []

        async def receive_forever() -> None:
            while True:
                received.append((await layer.receive("c"))["i"])

        async def churn() -> None:
            # Receivers on this loop come and go while another loop sends.
            tasks = [asyncio.create_task(receive_forever()) for _ in range(3)]
            rng = random.Random(4)
            while len(received) < rounds:
                victim = rng.randrange(len(tasks))
                tasks[victim].cancel()
                tasks[victim] = asyncio.create_task(receive_forever())
                await asyncio.sleep(rng.random() / 2000)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        async def send_all() -> None:
            for index in range(rounds):
                await layer.send("c", {"type": "m", "i": index})
                await asyncio.sleep(0)

        await asyncio.gather(churn(), _drive_in_thread(send_all))
        assert sorted(received) == list(range(rounds))

    async def test_a_receiver_left_on_a_closed_loop_does_not_swallow_messages(
        self,
    ) -> None:
        layer = InMemoryChannelLayer()
        started: list[Any] = []

        def abandon_a_receive() -> None:
            async def start_receive() -> None:
                # Step the coroutine by hand: it waits, and nothing ever
                # resumes or cancels it before its loop is closed.
                receive = layer.receive("c")
                receive.send(None)
                started.append(receive)

            loop = asyncio.new_event_loop()
            loop.run_until_complete(start_receive())
            loop.close()

        thread = threading.Thread(target=abandon_a_receive)
        thread.start()
        thread.join()
        await layer.send("c", {"type": "kept"})
        assert await layer.receive("c") == {"type": "kept"}
        started[0].close()


class TestMemory:
    @staticmethod
    async def _traffic(layer: InMemoryChannelLayer, channels: int) -> None:
        for number in range(channels):
            name = f"c{number}"
            await layer.send(name, {"type": "m", "n": number})
            await layer.group_add("g", name)
            await layer.receive(name)
            await layer.group_discard("g", name)
        waiters = [asyncio.create_task(layer.receive(f"w{n}")) for n in range(500)]
        await asyncio.sleep(0)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        for _ in range(3):  # let the loop run the finished tasks' callbacks
            await asyncio.sleep(0)

    async def test_idle_channels_hold_no_memory(self) -> None:
        layer = InMemoryChannelLayer()
        await self._traffic(layer, 2_000)  # warm up every cache and free list
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await self._traffic(layer, 30_000)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # 30,000 retained channels would take megabytes; bookkeeping awaiting
        # compaction is bounded by a constant.
        assert grown < 400_000, f"memory grew by {grown} bytes"

    async def test_expiry_reaches_channels_nobody_touches(self) -> None:
        layer = InMemoryChannelLayer(expiry=0.05)
        for number in range(1_000):
            await layer.send(f"c{number}", {"type": "m", "blob": "x" * 1000})
        await asyncio.sleep(0.1)
        await layer.send("trigger", {"type": "m"})  # any operation expires
        assert await layer.receive("trigger") == {"type": "m"}
        for number in range(0, 1_000, 97):
            receiver = asyncio.create_task(layer.receive(f"c{number}"))
            await asyncio.sleep(0)
            assert not receiver.done()
            receiver.cancel()
            with pytest.raises(asyncio.CancelledError):
                await receiver


class TestInspection:
    async def test_pending_lists_queued_messages_oldest_first(self) -> None:
        layer = InMemoryChannelLayer()
        for number in range(3):
            await layer.send("c", {"type": "m", "n": number})
        assert layer.pending("c") == [
            {"type": "m", "n": 0},
            {"type": "m", "n": 1},
            {"type": "m", "n": 2},
        ]

    async def test_pending_consumes_nothing(self) -> None:
        layer = InMemoryChannelLayer()
        await layer.send("c", {"type": "first"})
        await layer.send("c", {"type": "second"})
        layer.pending("c")
        assert len(layer.pending("c")) == 2
        assert await layer.receive("c") == {"type": "first"}
        assert layer.pending("c") == [{"type": "second"}]
        assert await layer.receive("c") == {"type": "second"}
        assert layer.pending("c") == []

    async def test_pending_returns_copies_the_queue_does_not_see_changed(
        self,
    ) -> None:
        layer = InMemoryChannelLayer()
        await layer.send("c", {"type": "m", "deep": {"list": [1]}})
        await layer.group_add("g", "a")
        await layer.group_add("g", "b")
        await layer.group_send("g", {"type": "shared", "n": 1})
        shown = layer.pending("c")
        shown[0]["deep"]["list"].append(2)
        shown[0]["type"] = "changed"
        shown.clear()
        layer.pending("a")[0]["n"] = 2
        assert layer.pending("c") == [{"type": "m", "deep": {"list": [1]}}]
        assert await layer.receive("c") == {"type": "m", "deep": {"list": [1]}}
        assert await layer.receive("a") == {"type": "shared", "n": 1}
        assert await layer.receive("b") == {"type": "shared", "n": 1}

    async def test_pending_leaves_out_expired_messages_as_receive_does(
        self,
    ) -> None:
        layer = InMemoryChannelLayer(expiry=0.05)
        await layer.send("c", {"type": "old"})
        await layer.group_add("g", "c")
        await asyncio.sleep(0.1)
        await layer.send("other", {"type": "fresh"})  # expires "c" too
        assert layer.pending("c") == []
        assert layer.pending("other") == [{"type": "fresh"}]
        await layer.send("c", {"type": "new"})
        assert layer.pending("c") == [{"type": "new"}]
        assert await layer.receive("c") == {"type": "new"}
        # A channel whose message expired left its groups, for both views.
        assert layer.group_members("g") == []

    async def test_pending_itself_drops_expired_messages(self) -> None:
        layer = InMemoryChannelLayer(expiry=0.05)
        await layer.send("c", {"type": "old"})
        await asyncio.sleep(0.1)
        assert layer.pending("c") == []  # no other operation ran meanwhile
        assert "c" not in layer._channels

    async def test_pending_on_an_unknown_or_drained_channel_is_empty(self) -> None:
        layer = InMemoryChannelLayer()
        assert layer.pending("never.used") == []
        assert layer.pending("specific.inmemory!abc") == []
        await layer.send("c", {"type": "m"})
        await layer.receive("c")
        assert layer.pending("c") == []

    async def test_pending_on_an_unknown_channel_creates_no_state(self) -> None:
        layer = InMemoryChannelLayer()
        await layer.send("busy", {"type": "m"})
        channels_before = dict(layer._channels)
        groups_before = dict(layer._groups)
        for number in range(100):
            assert layer.pending(f"unknown{number}") == []
            assert layer.group_members(f"unknown{number}") == []
        assert layer._channels == channels_before
        assert layer._groups == groups_before
        assert layer._memberships == {}

    async def test_pending_with_a_receiver_waiting_is_empty(self) -> None:
        layer = InMemoryChannelLayer()
        receiver = asyncio.create_task(layer.receive("c"))
        await asyncio.sleep(0)
        assert layer.pending("c") == []
        await layer.send("c", {"type": "m"})
        assert await asyncio.wait_for(receiver, 5) == {"type": "m"}

    @pytest.mark.parametrize("name", ["bad name", "x" * 100, 7, None])
    async def test_invalid_names_raise_the_layers_type_error(self, name: Any) -> None:
        layer = InMemoryChannelLayer()
        with pytest.raises(TypeError) as from_send:
            await layer.send(name, {"type": "m"})
        with pytest.raises(TypeError) as from_pending:
            layer.pending(name)
        assert str(from_pending.value) == str(from_send.value)
        assert str(from_pending.value).startswith("Channel name must be")
        with pytest.raises(TypeError) as from_group_add:
            await layer.group_add(name, "c")
        with pytest.raises(TypeError) as from_group_members:
            layer.group_members(name)
        assert str(from_group_members.value) == str(from_group_add.value)
        assert str(from_group_members.value).startswith("Group name must be")

    async def test_group_names_with_a_local_part_are_not_group_names(self) -> None:
        layer = InMemoryChannelLayer()
        with pytest.raises(TypeError, match=r"^Group name must be"):
            layer.group_members("g!local")

    async def test_group_members_follow_add_and_discard_sorted(self) -> None:
        layer = InMemoryChannelLayer()
        assert layer.group_members("room") == []
        for name in ["b", "c", "a"]:
            await layer.group_add("room", name)
        await layer.group_add("room", "b")  # a renewal adds no duplicate
        await layer.group_add("other", "z")
        assert layer.group_members("room") == ["a", "b", "c"]
        await layer.group_discard("room", "b")
        assert layer.group_members("room") == ["a", "c"]
        await layer.group_discard("room", "a")
        await layer.group_discard("room", "c")
        assert layer.group_members("room") == []
        assert layer.group_members("other") == ["z"]
        members = layer.group_members("other")
        members.append("intruder")  # a new list: the layer is untouched
        assert layer.group_members("other") == ["z"]

    async def test_group_members_leave_out_expired_memberships(self) -> None:
        layer = InMemoryChannelLayer(group_expiry=0.05)
        await layer.group_add("room", "old")
        await asyncio.sleep(0.1)
        await layer.group_add("room", "new")
        assert layer.group_members("room") == ["new"]
        await asyncio.sleep(0.1)
        assert layer.group_members("room") == []  # expired by the call itself
        assert layer._groups == {}
