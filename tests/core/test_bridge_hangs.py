"""Nested bridge patterns that hang in asgiref: here each completes or fails fast.

Every scenario runs in a daemon thread with a deadline, so a regression makes
the test fail in seconds instead of stalling the run; pytest-timeout is the
second line of defence.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from asgiref_core import sync as sync_module
from asgiref_core.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)

pytestmark = pytest.mark.timeout(30)

DEADLINE = 10.0


def within_deadline(scenario: Callable[[], Any], seconds: float = DEADLINE) -> Any:
    """Run ``scenario`` in a daemon thread; fail if it has not ended in time."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = scenario()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="scenario", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the scenario hung for more than {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def current_thread_name() -> str:
    return threading.current_thread().name


# Fire-and-forget tasks are the point of several scenarios; holding them here
# keeps them from being garbage-collected mid-flight.
_background: list[asyncio.Future[Any]] = []


def keep(task: asyncio.Future[Any]) -> None:
    _background.append(task)


def test_worker_calls_async_to_sync_after_its_loop_stopped() -> None:
    """A sync_to_async worker outlives the run of the loop that started it
    (fire and forget, then run_until_complete returns), and then calls
    async_to_sync: asgiref schedules onto the stopped loop and waits forever."""
    release = threading.Event()
    finished: dict[str, Any] = {}

    async def inner() -> str:
        return "inner ran"

    def worker() -> None:
        release.wait(5)
        finished["value"] = async_to_sync(inner)()

    async def launch() -> None:
        keep(asyncio.ensure_future(sync_to_async(worker, thread_sensitive=False)()))
        await asyncio.sleep(0.05)

    def scenario() -> Any:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(launch())
            assert not loop.is_running()
            assert not loop.is_closed()
            release.set()
            deadline = time.monotonic() + 5
            while "value" not in finished and time.monotonic() < deadline:
                time.sleep(0.01)
            return finished.get("value")
        finally:
            # Let the abandoned wrapper task finish, then close.
            loop.run_until_complete(asyncio.sleep(0.1))
            loop.close()

    assert within_deadline(scenario) == "inner ran"


def test_worker_calls_async_to_sync_after_its_loop_closed() -> None:
    release = threading.Event()
    done = threading.Event()
    result: list[str] = []

    async def inner() -> str:
        return "ran elsewhere"

    def worker() -> None:
        release.wait(5)
        result.append(async_to_sync(inner)())
        done.set()

    async def launch() -> None:
        keep(asyncio.ensure_future(sync_to_async(worker, thread_sensitive=False)()))
        await asyncio.sleep(0.05)

    def scenario() -> list[str]:
        asyncio.run(launch())  # closes the loop while the worker sleeps
        release.set()
        done.wait(5)
        return result

    assert within_deadline(scenario) == ["ran elsewhere"]


def test_loop_stopping_under_a_started_coroutine_fails_fast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The coroutine started on the caller's loop, then that loop stopped for
    good: nothing can finish it, so async_to_sync raises instead of waiting."""
    monkeypatch.setattr("asgiref_core._loop_call.STOPPED_LOOP_GRACE", 0.3)
    errors: list[BaseException] = []
    started = threading.Event()

    async def inner() -> None:
        started.set()
        await asyncio.sleep(60)

    def worker() -> None:
        try:
            async_to_sync(inner)()
        except RuntimeError as exc:
            errors.append(exc)

    async def launch() -> None:
        keep(asyncio.ensure_future(sync_to_async(worker, thread_sensitive=False)()))
        while not started.is_set():
            await asyncio.sleep(0.01)

    def scenario() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(launch())
            deadline = time.monotonic() + 5
            while not errors and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0.1))
            loop.close()

    within_deadline(scenario)
    assert len(errors) == 1
    message = str(errors[0])
    assert "inner" in message
    assert "stopped before the coroutine finished" in message
    assert "scenario" not in message or "thread" in message


def test_task_created_inside_a_nested_async_to_sync_that_outlives_it() -> None:
    """async_to_sync -> sync_to_async -> async_to_sync -> create_task ->
    sync_to_async: the task outlives the coroutine that made it."""

    def scenario() -> list[str]:
        ran_on: list[str] = []

        async def main() -> None:
            done = asyncio.Event()

            async def inner() -> None:
                async def record() -> None:
                    ran_on.append(await sync_to_async(current_thread_name)())
                    done.set()

                keep(asyncio.create_task(record()))

            await sync_to_async(async_to_sync(inner))()
            await done.wait()

        async_to_sync(main)()
        return ran_on

    # The outer sync thread is still waiting in the first async_to_sync, so
    # that is where thread-sensitive code belongs.
    assert within_deadline(scenario) == ["scenario"]


def test_task_from_one_nested_call_awaited_by_the_next_one() -> None:
    """Sync code on the main thread makes two async_to_sync calls in a row:
    the first starts a task, the second awaits it, and the task calls
    thread-sensitive code. That code belongs to the main thread, which is
    waiting in the second call: it must run there, not wait for the thread to
    come back to the outer wait it was addressed to."""

    def scenario() -> str:
        started: dict[str, asyncio.Task[str]] = {}

        async def start() -> None:
            async def task() -> str:
                return await sync_to_async(current_thread_name)()

            started["task"] = asyncio.get_running_loop().create_task(task())

        async def collect() -> str:
            return await started["task"]

        def view() -> str:
            async_to_sync(start)()
            return async_to_sync(collect)()

        async def main() -> str:
            return await sync_to_async(view)()

        return async_to_sync(main)()

    assert within_deadline(scenario) == "scenario"


def test_awaited_task_inside_nested_async_to_sync_calls_sync_code() -> None:
    """sync_to_async -> async_to_sync -> create_task + await -> sync_to_async."""

    def scenario() -> list[str]:
        ran_on: list[str] = []

        async def io_task() -> None:
            ran_on.append(await sync_to_async(current_thread_name)())

        async def do_io_tasks() -> None:
            await asyncio.create_task(io_task())
            await asyncio.gather(io_task())

        def view() -> str:
            async_to_sync(do_io_tasks)()
            return current_thread_name()

        async def server() -> str:
            return await sync_to_async(view)()

        view_thread = asyncio.run(server())
        assert ran_on == [view_thread, view_thread]
        return ran_on

    within_deadline(scenario)


def test_wait_for_around_a_thread_sensitive_call_under_sync_middleware() -> None:
    def scenario() -> str:
        async def view() -> str:
            return await asyncio.wait_for(
                sync_to_async(current_thread_name)(), timeout=5
            )

        def middleware() -> str:
            return async_to_sync(view)()

        async def application() -> str:
            async with ThreadSensitiveContext():
                return await sync_to_async(middleware)()

        return asyncio.run(application())

    assert within_deadline(scenario).startswith(
        "asgiref_core-thread-sensitive-context-"
    )


def test_task_that_lost_its_context_reaches_the_waiting_thread() -> None:
    """The one thread-sensitive thread is blocked in async_to_sync; the
    coroutine it waits for awaits a task created with an empty context, which
    calls thread-sensitive code. Queued behind the blocked thread it would
    wait forever; it runs on that thread instead."""

    def scenario() -> tuple[str, str]:
        async def lost() -> str:
            return await sync_to_async(current_thread_name)()

        async def inner() -> str:
            loop = asyncio.get_running_loop()
            created: asyncio.Future[asyncio.Task[str]] = loop.create_future()
            loop.call_soon(
                lambda: created.set_result(loop.create_task(lost())),
                context=contextvars.Context(),
            )
            return await (await created)

        def outer() -> tuple[str, str]:
            return async_to_sync(inner)(), current_thread_name()

        async def main() -> tuple[str, str]:
            return await sync_to_async(outer)()

        return asyncio.run(main())

    ran_on, outer_thread = within_deadline(scenario)
    assert ran_on == outer_thread


def test_task_outliving_async_to_sync_while_its_ancestor_holds_the_thread() -> None:
    """A task made inside async_to_sync calls thread-sensitive code after the
    coroutine returned, while the sync function that made the call still
    occupies the one thread-sensitive thread (and waits for that task):
    a deadlock, reported at once with both parties named."""

    def scenario() -> BaseException | None:
        errors: list[BaseException] = []
        finished = threading.Event()

        async def late() -> None:
            await asyncio.sleep(0.05)
            try:
                await sync_to_async(finished.set)()
            except RuntimeError as exc:
                errors.append(exc)
                finished.set()

        async def inner() -> None:
            keep(asyncio.create_task(late()))

        def holder() -> None:
            async_to_sync(inner)()
            finished.wait(5)

        async def main() -> None:
            await sync_to_async(holder)()
            await asyncio.sleep(0)

        asyncio.run(main())
        return errors[0] if errors else None

    started = time.monotonic()
    error = within_deadline(scenario)
    assert time.monotonic() - started < 3, "must fail at once, not time out"
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert "would deadlock" in message
    assert "holder" in message
    assert "asgiref_core-thread-sensitive" in message


def test_thread_sensitive_context_exit_never_blocks_the_loop() -> None:
    """The context's thread is waiting on the loop when the context exits;
    joining that thread on the loop would deadlock both."""

    def scenario() -> str:
        async def main() -> str:
            release = asyncio.Event()

            async def wait_for_release() -> str:
                await release.wait()
                return "released"

            def blocker() -> str:
                return async_to_sync(wait_for_release)()

            async with ThreadSensitiveContext():
                task = asyncio.ensure_future(sync_to_async(blocker)())
                await asyncio.sleep(0.05)
            release.set()
            return await task

        return asyncio.run(main())

    assert within_deadline(scenario) == "released"


def test_plain_sync_call_after_an_earlier_nested_one_in_the_same_thread() -> None:
    """A thread that once served thread-sensitive work must not keep the loop
    of that call around for later async_to_sync calls."""

    async def foo_async() -> str:
        return "foo"

    async def async_wrapper() -> str:
        return await sync_to_async(lambda: "wrapped")()

    def scenario() -> tuple[str, str]:
        first = async_to_sync(async_wrapper)()
        second = async_to_sync(foo_async)()
        return first, second

    assert within_deadline(scenario) == ("wrapped", "foo")


def test_stopped_loop_grace_is_a_module_setting() -> None:
    from asgiref_core import _loop_call

    assert _loop_call.STOPPED_LOOP_GRACE > 0
    assert not hasattr(sync_module, "STOPPED_LOOP_GRACE")


def test_call_queued_behind_work_that_later_waits_for_it() -> None:
    """The lost-context call is queued while the thread-sensitive thread is
    still busy with unrelated work; only afterwards does the next queued call
    block in async_to_sync on a coroutine that awaits it. The cycle forms
    after queueing and must still be found."""

    def scenario() -> str:
        holder: dict[str, asyncio.Task[str]] = {}

        async def lost() -> str:
            return await sync_to_async(current_thread_name)()

        async def inner() -> str:
            while "lost" not in holder:
                await asyncio.sleep(0.005)
            return await holder["lost"]

        def outer() -> str:
            return async_to_sync(inner)()

        async def main() -> str:
            loop = asyncio.get_running_loop()
            busy = asyncio.create_task(sync_to_async(time.sleep)(0.2))
            await asyncio.sleep(0.02)
            waiting = asyncio.create_task(sync_to_async(outer)())
            await asyncio.sleep(0.02)
            created: asyncio.Future[asyncio.Task[str]] = loop.create_future()
            loop.call_soon(
                lambda: created.set_result(loop.create_task(lost())),
                context=contextvars.Context(),
            )
            holder["lost"] = await created
            await busy
            return await waiting

        return asyncio.run(main())

    assert within_deadline(scenario).startswith("asgiref_core-thread-sensitive-")
