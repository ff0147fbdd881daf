"""ApplicationCommunicator: asgiref 3.13's behaviour, plus prompt, explained errors."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
from typing import Any

import pytest

from asgiref_core.testing import ApplicationCommunicator, http_scope
from asgiref_core.validate import ASGIProtocolError

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]

Message = dict[str, Any]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send(message)


async def send_twice_then_fail(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "one"})
    await send({"type": "two"})
    raise ValueError("app broke")


async def silent(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await asyncio.sleep(60)


async def returns_at_once(scope: Any, receive: Any, send: Any) -> None:
    return None


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


# -- the asgiref API --------------------------------------------------------------


async def test_round_trip_and_attributes() -> None:
    communicator = ApplicationCommunicator(echo, {"type": "test"})
    assert communicator.scope == {"type": "test"}
    assert isinstance(communicator.input_queue, asyncio.Queue)
    assert isinstance(communicator.output_queue, asyncio.Queue)
    await communicator.send_input({"type": "ping", "n": 1})
    assert await communicator.receive_output() == {"type": "ping", "n": 1}
    assert isinstance(communicator.future, asyncio.Task)
    communicator.stop()
    await communicator.wait()


async def test_app_starts_lazily_in_an_empty_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    var.set("test's value")
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(var.get("unset"))

    communicator = ApplicationCommunicator(app, {"type": "test"})
    await asyncio.sleep(0)
    assert seen == []  # not started until needed
    await communicator.wait()
    assert seen == ["unset"]


async def test_asgi2_double_callable_is_accepted() -> None:
    class Asgi2App:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await send({"type": "scope", "scope": self.scope})

    communicator = ApplicationCommunicator(Asgi2App, {"type": "test"})
    assert await communicator.receive_output() == {
        "type": "scope",
        "scope": {"type": "test"},
    }


async def test_exception_surfaces_with_type_and_traceback() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise KeyError("missing thing")

    communicator = ApplicationCommunicator(app, {"type": "test"})
    await communicator.send_input({"type": "go"})
    with pytest.raises(KeyError, match="missing thing") as info:
        await communicator.receive_output()
    assert any(entry.name == "app" for entry in info.traceback)


async def test_error_is_raised_before_queued_output_like_asgiref() -> None:
    # asgiref raises a finished application's error first; the messages stay
    # queued and the error says so.
    communicator = ApplicationCommunicator(send_twice_then_fail, {"type": "test"})
    await communicator.send_input({"type": "go"})
    await asyncio.sleep(0.01)
    with pytest.raises(ValueError, match="app broke") as info:
        await communicator.receive_output()
    assert "2 message(s) the test never read" in "\n".join(info.value.__notes__)
    assert communicator.output_queue.qsize() == 2


async def test_wait_raises_the_app_error() -> None:
    communicator = ApplicationCommunicator(send_twice_then_fail, {"type": "test"})
    await communicator.send_input({"type": "go"})
    with pytest.raises(ValueError, match="app broke"):
        await communicator.wait()


async def test_wait_returns_when_the_app_returns() -> None:
    communicator = ApplicationCommunicator(returns_at_once, {"type": "test"})
    await communicator.wait()
    assert communicator.future.done()


async def test_receive_timeout_cancels_the_app_by_default() -> None:
    communicator = ApplicationCommunicator(silent, {"type": "test", "path": "/x"})
    await communicator.send_input({"type": "hello"})
    with pytest.raises(TimeoutError) as info:
        await communicator.receive_output(timeout=0.05)
    assert communicator.future.cancelled()
    text = str(info.value)
    assert "waited 0.05s for a message" in text
    assert "scope type 'test', path '/x'" in text
    assert "'hello'" in text  # the transcript
    assert "was cancelled" in text
    # A cancelled application takes no more input, and says why.
    with pytest.raises(RuntimeError, match="was cancelled"):
        await communicator.send_input({"type": "again"})


async def test_timeout_matches_asgiref_error_class() -> None:
    asgiref_testing = pytest.importorskip("asgiref.testing")
    theirs = asgiref_testing.ApplicationCommunicator(silent, {"type": "test"})
    ours = ApplicationCommunicator(silent, {"type": "test"})
    for communicator in (theirs, ours):
        await communicator.send_input({"type": "hello"})
        with pytest.raises(TimeoutError):
            await communicator.receive_output(timeout=0.02)
        assert communicator.future.cancelled()


async def test_opt_in_keeps_the_app_running_after_a_timeout() -> None:
    async def two_then_quiet(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "a"})
        await send({"type": "b"})
        await asyncio.sleep(0.05)
        await send({"type": "late"})
        await receive()

    communicator = ApplicationCommunicator(
        two_then_quiet, {"type": "test"}, cancel_on_timeout=False
    )
    received = []
    # "Read until nothing is left".
    while True:
        try:
            received.append(await communicator.receive_output(timeout=0.01))
        except TimeoutError:
            break
    assert [m["type"] for m in received] == ["a", "b"]
    assert not communicator.future.done()
    assert (await communicator.receive_output(timeout=1))["type"] == "late"
    await communicator.send_input({"type": "done"})
    await communicator.wait()


async def test_a_crash_ends_the_wait_at_once() -> None:
    async def crash_later(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("late crash")

    communicator = ApplicationCommunicator(crash_later, {"type": "test"})
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ValueError, match="late crash"):
        await communicator.receive_output(timeout=30)
    assert loop.time() - started < 10  # not the 30 s timeout


async def test_returning_without_output_is_reported_at_once() -> None:
    communicator = ApplicationCommunicator(returns_at_once, {"type": "test"})
    with pytest.raises(TimeoutError, match="returned without sending one"):
        await communicator.receive_output(timeout=30)


async def test_receive_nothing() -> None:
    communicator = ApplicationCommunicator(echo, {"type": "test"})
    assert await communicator.receive_nothing() is True
    await communicator.send_input({"type": "x"})
    assert await communicator.receive_nothing(timeout=1) is False
    # The message is still there to read.
    assert await communicator.receive_output() == {"type": "x"}
    await communicator.aclose()


async def test_receive_nothing_raises_a_crash() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("crashed")

    communicator = ApplicationCommunicator(app, {"type": "test"})
    with pytest.raises(ValueError, match="crashed"):
        await communicator.receive_nothing(timeout=0.5)


async def test_wait_timeout_cancels_and_names_what_was_awaited() -> None:
    communicator = ApplicationCommunicator(silent, {"type": "test"})
    await communicator.send_input({"type": "go"})
    with pytest.raises(TimeoutError, match=r"did not return within 0\.05s") as info:
        await communicator.wait(timeout=0.05)
    assert communicator.future.cancelled()
    assert "'go'" in str(info.value)


async def test_stop_is_sync_and_reports_errors() -> None:
    communicator = ApplicationCommunicator(send_twice_then_fail, {"type": "test"})
    communicator.stop()  # never started: nothing to do
    await communicator.send_input({"type": "go"})
    await asyncio.sleep(0.01)
    with pytest.raises(ValueError, match="app broke"):
        communicator.stop()
    communicator.stop(exceptions=False)


# -- nothing left behind --------------------------------------------------------


async def test_aclose_leaves_nothing_pending() -> None:
    communicator = ApplicationCommunicator(silent, {"type": "test"})
    await communicator.send_input({"type": "go"})
    await asyncio.sleep(0)
    assert other_tasks()
    await communicator.aclose()
    assert not other_tasks()


async def test_aclose_repeats_a_failure_unless_told_it_was_seen() -> None:
    communicator = ApplicationCommunicator(send_twice_then_fail, {"type": "test"})
    await communicator.send_input({"type": "go"})
    with pytest.raises(ValueError, match="app broke"):
        await communicator.wait()
    # A teardown passes repeat_seen=False: the test already saw this error.
    await communicator.aclose(repeat_seen=False)
    with pytest.raises(ValueError, match="app broke"):
        await communicator.aclose()


async def test_aclose_raises_a_failure_nobody_saw_even_when_told_not_to_repeat() -> (
    None
):
    communicator = ApplicationCommunicator(send_twice_then_fail, {"type": "test"})
    await communicator.send_input({"type": "go"})
    await asyncio.sleep(0.01)
    assert communicator.future.done()
    with pytest.raises(ValueError, match="app broke"):
        await communicator.aclose(repeat_seen=False)


async def test_aclose_does_not_repeat_a_seen_failure_the_cancelled_app_reraises() -> (
    None
):
    # Like Django's handler: the app's send fails in a child task, the app
    # keeps listening, and re-raises that same error when cancelled.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        bad = {"type": "http.response.start", "status": "200"}
        child = asyncio.create_task(send(bad))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await child
            raise

    communicator = ApplicationCommunicator(app, http_scope(), validate=True)
    await communicator.send_input({"type": "http.request"})
    with pytest.raises(ASGIProtocolError):
        await communicator.receive_output()
    await communicator.aclose(repeat_seen=False)


async def test_async_with_closes_and_keeps_the_block_error() -> None:
    async def block() -> None:
        async with ApplicationCommunicator(silent, {"type": "test"}) as communicator:
            await communicator.send_input({"type": "go"})
            raise LookupError("from the test")

    with pytest.raises(LookupError, match="from the test"):
        await block()
    assert not other_tasks()


async def test_an_app_that_ignores_cancellation_cannot_hang_the_test() -> None:
    async def stubborn(scope: Any, receive: Any, send: Any) -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    communicator = ApplicationCommunicator(stubborn, {"type": "test"})
    communicator.future  # noqa: B018
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="did not stop within"):
        await communicator.aclose()
    # Clean up the stubborn task the hard way so the loop can close.
    communicator.future.get_coro().close()  # type: ignore[union-attr]
    communicator.future.cancel()


async def test_del_cancels_a_running_app() -> None:
    communicator = ApplicationCommunicator(silent, {"type": "test"})
    await communicator.send_input({"type": "go"})
    task = communicator.future
    await asyncio.sleep(0)
    del communicator
    gc.collect()
    await asyncio.sleep(0)
    assert task.cancelled()


# -- transcript and validation ------------------------------------------------


async def test_transcript_is_bounded_and_ordered() -> None:
    communicator = ApplicationCommunicator(echo, {"type": "test"}, transcript_size=3)
    for n in range(5):
        await communicator.send_input({"type": "m", "n": n})
        await communicator.receive_output()
    entries = communicator.transcript.entries()
    assert [(e.direction, e.message["n"]) for e in entries] == [  # type: ignore[index]
        ("from app", 3),
        ("to app", 4),
        ("from app", 4),
    ]
    assert "(no messages yet)" not in communicator.transcript.format()
    await communicator.aclose()


async def test_transcript_shortens_big_bodies() -> None:
    communicator = ApplicationCommunicator(silent, {"type": "test"})
    await communicator.send_input({"type": "big", "body": b"x" * 100_000})
    with pytest.raises(TimeoutError) as info:
        await communicator.receive_output(timeout=0.02)
    assert "(100000 bytes)" in str(info.value)
    assert len(str(info.value)) < 2000


async def test_transcript_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size=0"):
        ApplicationCommunicator(echo, {"type": "test"}, transcript_size=0)


async def test_validate_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="'loud'"):
        ApplicationCommunicator(echo, {"type": "test"}, validate="loud")  # type: ignore[arg-type]


async def test_validation_violation_surfaces_even_if_the_app_swallows_it() -> None:
    from asgiref_core.testing import http_scope

    async def sloppy(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        # The point: the application hides the error from its send().
        with contextlib.suppress(Exception):
            await send({"type": "http.response.start", "status": "200"})
        await asyncio.sleep(60)

    communicator = ApplicationCommunicator(sloppy, http_scope(), validate=True)
    await communicator.send_input({"type": "http.request"})
    with pytest.raises(ASGIProtocolError, match="status") as info:
        await communicator.receive_output(timeout=30)
    assert "Last" in "\n".join(info.value.__notes__)
    communicator.stop(exceptions=False)


async def test_validation_warn_mode_keeps_going() -> None:
    from asgiref_core.testing import http_scope
    from asgiref_core.validate import ASGIProtocolWarning

    async def sloppy(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": "200"})

    communicator = ApplicationCommunicator(sloppy, http_scope(), validate="warn")
    await communicator.send_input({"type": "http.request"})
    with pytest.warns(ASGIProtocolWarning, match="status"):
        message = await communicator.receive_output()
    assert message["status"] == "200"
    communicator.stop(exceptions=False)


async def test_invalid_scope_is_rejected_at_construction() -> None:
    with pytest.raises(ASGIProtocolError):
        ApplicationCommunicator(echo, {"type": "http"}, validate=True)


async def test_repr_says_the_state() -> None:
    communicator = ApplicationCommunicator(echo, {"type": "test"})
    assert "not started" in repr(communicator)
    assert "echo" in repr(communicator)


async def test_protocol_communicators_lean_queue_keeps_the_queue_api() -> None:
    from asgiref_core._communicator import _MessageQueue

    queue = _MessageQueue()
    assert queue.empty()
    assert not queue.full()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    # A getter cancelled after being woken passes the wake on: nothing is lost.
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait({"type": "one"})
    first.cancel()
    await asyncio.sleep(0)
    assert await asyncio.wait_for(second, 5) == {"type": "one"}
    await queue.put({"type": "two"})
    assert queue.qsize() == 1
    assert await queue.get() == {"type": "two"}


async def test_warn_mode_with_a_bad_scope_still_checks_messages() -> None:
    from asgiref_core.testing import http_scope
    from asgiref_core.validate import ASGIProtocolWarning

    async def sloppy(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": "200"})

    scope = http_scope(scope={"http_version": "3"})
    with pytest.warns(ASGIProtocolWarning, match="http_version"):
        communicator = ApplicationCommunicator(sloppy, scope, validate="warn")
    await communicator.send_input({"type": "http.request"})
    with pytest.warns(ASGIProtocolWarning, match="status"):
        await communicator.receive_output()
    communicator.stop(exceptions=False)


# -- several readers at once -------------------------------------------------------


async def test_two_readers_waiting_at_once_each_get_a_message() -> None:
    communicator = ApplicationCommunicator(echo, {"type": "test"})
    first = asyncio.ensure_future(communicator.receive_output(5))
    second = asyncio.ensure_future(communicator.receive_output(5))
    await asyncio.sleep(0.01)
    await communicator.send_input({"type": "a"})
    await communicator.send_input({"type": "b"})
    got = await asyncio.wait_for(asyncio.gather(first, second), 2)
    assert sorted(message["type"] for message in got) == ["a", "b"]
    communicator.stop()
    await communicator.wait()


async def test_every_waiting_reader_learns_at_once_that_the_app_ended() -> None:
    release = asyncio.Event()

    async def ends_when_released(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()

    communicator = ApplicationCommunicator(ends_when_released, {"type": "test"})
    readers = [asyncio.ensure_future(communicator.receive_output(10)) for _ in "ab"]
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()
    release.set()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*readers, return_exceptions=True), 5
    )
    # Both see the application's end now, not when their 10 s run out.
    assert loop.time() - started < 2
    assert all(isinstance(outcome, TimeoutError) for outcome in outcomes)
    assert all("returned" in str(outcome) for outcome in outcomes)


async def test_a_reader_woken_for_another_ones_message_waits_on() -> None:
    communicator = ApplicationCommunicator(echo, {"type": "test"})
    first = asyncio.ensure_future(communicator.receive_output(0.5))
    second = asyncio.ensure_future(communicator.receive_output(0.5))
    await asyncio.sleep(0.01)
    await communicator.send_input({"type": "only"})
    done, pending = await asyncio.wait({first, second}, timeout=0.2)
    assert len(done) == 1  # the other reader did not give up when woken
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pending.pop(), 5)
    communicator.stop()
    await communicator.wait()
