"""Loop threads and workers across failures: interrupts, dying loops, exit, pools."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any

import pytest

from asgiref_core import _workers
from asgiref_core.local import Local
from asgiref_core.sync import (
    AsyncSingleThreadContext,
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)
from tests.core.test_bridge_hangs import within_deadline

pytestmark = pytest.mark.timeout(30)


class Interrupted(Exception):
    pass


def test_loop_stopping_before_the_coroutine_starts_reroutes_it() -> None:
    """The caller's loop is running when async_to_sync checks, and stops
    before the coroutine gets scheduled there: it runs elsewhere instead."""
    ready = threading.Event()
    result: list[str] = []

    async def inner() -> str:
        return "rerouted"

    def worker() -> None:
        ready.wait(5)
        result.append(async_to_sync(inner)())

    def scenario() -> list[str]:
        loop = asyncio.new_event_loop()

        async def launch() -> None:
            task = asyncio.ensure_future(
                sync_to_async(worker, thread_sensitive=False)()
            )
            # Hold the loop busy while the worker makes its call, then stop
            # it before the call's coroutine can be started there.
            loop.call_soon(lambda: (ready.set(), time.sleep(0.3), loop.stop()))
            await task

        try:
            with pytest.raises(RuntimeError, match="stopped before"):
                loop.run_until_complete(launch())
            deadline = time.monotonic() + 5
            while not result and time.monotonic() < deadline:
                time.sleep(0.01)
            return result
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0.05))
            loop.close()

    assert within_deadline(scenario) == ["rerouted"]


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_an_interrupted_wait_does_not_lend_its_busy_loop_again() -> None:
    def on_alarm(signum: int, frame: Any) -> None:
        raise Interrupted

    async def slow() -> None:
        await asyncio.sleep(1)

    async def quick() -> str:
        return "next call fine"

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            async_to_sync(slow)()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert within_deadline(async_to_sync(quick)) == "next call fine"


def test_system_exit_in_a_background_task_reaches_the_caller() -> None:
    async def background() -> None:
        raise SystemExit("from a background task")

    async def main() -> None:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0.5)

    def scenario() -> str:
        try:
            async_to_sync(main)()
        except SystemExit as exc:
            return str(exc)
        return "no exception"

    assert within_deadline(scenario) == "from a background task"

    async def after() -> str:
        return "later calls still work"

    assert within_deadline(async_to_sync(after)) == "later calls still work"


def test_nested_force_new_loop_inside_a_single_thread_context() -> None:
    async def inner() -> str:
        return "inner"

    def middle() -> str:
        return async_to_sync(inner, force_new_loop=True)()

    async def outer() -> str:
        return await sync_to_async(middle)()

    def scenario() -> str:
        with AsyncSingleThreadContext():
            return async_to_sync(outer)()

    assert within_deadline(scenario) == "inner"


def test_thread_critical_async_values_do_not_leak_into_the_next_call() -> None:
    connection = Local(thread_critical=True)

    async def first() -> None:
        connection.handle = "first call's"

    async def second() -> object:
        return getattr(connection, "handle", None)

    with AsyncSingleThreadContext():  # both calls on the same loop thread
        async_to_sync(first)()
        assert async_to_sync(second)() is None


def test_an_idle_worker_keeps_nothing_of_the_last_call_alive() -> None:
    class Request:
        pass

    def view(request: Request) -> Request:
        return request

    async def main(request: Request) -> None:
        await sync_to_async(view)(request)

    def call_once() -> weakref.ref[Request]:
        request = Request()
        asyncio.run(main(request))
        return weakref.ref(request)

    alive = call_once()
    # The worker drops the call just after reporting back; give it a moment
    # to go idle.
    deadline = time.monotonic() + 2
    while alive() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert alive() is None


def test_idle_context_threads_stay_within_the_pool_bound() -> None:
    release = threading.Event()

    async def one_context() -> None:
        async with ThreadSensitiveContext():
            # Exits while its work still runs.
            asyncio.get_running_loop().create_task(sync_to_async(release.wait)(5))
            await asyncio.sleep(0)

    async def burst() -> None:
        await asyncio.gather(*(one_context() for _ in range(12)))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.sleep(0.2)

    asyncio.run(burst())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        idle = len(_workers._idle_context_workers)
        alive = [
            t
            for t in threading.enumerate()
            if t.name.startswith("asgiref_core-thread-sensitive-context-")
        ]
        if len(alive) <= _workers.MAX_IDLE:
            break
        time.sleep(0.05)
    assert idle <= _workers.MAX_IDLE
    assert len(alive) <= _workers.MAX_IDLE


def test_cancelled_error_raised_by_sync_code_keeps_its_message() -> None:
    def refuses() -> None:
        raise asyncio.CancelledError("from sync code")

    async def main() -> tuple[Any, ...]:
        try:
            await sync_to_async(refuses)()
        except asyncio.CancelledError as exc:
            return exc.args
        return ()

    assert asyncio.run(main()) == ("from sync code",)


def test_locals_are_weakly_referenceable_and_know_their_class() -> None:
    for local in (Local(), Local(thread_critical=True)):
        local.value = 1
        assert weakref.ref(local)() is local
        assert isinstance(local, Local)
        assert local.__class__.__name__ in {"_ContextLocal", "_ThreadCriticalLocal"}


def test_sync_work_still_running_at_exit_is_allowed_to_finish(tmp_path: Any) -> None:
    marker = tmp_path / "saved"
    script = textwrap.dedent(
        f"""
        import asyncio, time
        from asgiref_core.sync import sync_to_async

        def save():
            time.sleep(0.3)
            open({str(marker)!r}, "w").write("ok")

        async def main():
            task = asyncio.ensure_future(sync_to_async(save)())
            await asyncio.sleep(0.05)
            task.cancel()  # the sync code itself cannot be interrupted

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert marker.read_text() == "ok"
