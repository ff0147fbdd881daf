"""async_to_sync: loops, threads, contexts, errors, cleanup, wrapping."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
import traceback
from typing import Any

import pytest

from asgiref_core.introspection import THREAD_NAME_PREFIX
from asgiref_core.sync import (
    AsyncSingleThreadContext,
    AsyncToSync,
    async_to_sync,
    iscoroutinefunction,
    sync_to_async,
)

pytestmark = pytest.mark.timeout(20)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def current_thread_name() -> str:
    return threading.current_thread().name


async def where() -> tuple[str, asyncio.AbstractEventLoop]:
    return current_thread_name(), asyncio.get_running_loop()


# -- which loop, which thread ------------------------------------------------


def test_from_a_plain_thread_the_coroutine_runs_on_a_library_loop_thread() -> None:
    thread_name, loop = async_to_sync(where)()
    assert thread_name.startswith("asgiref_core-loop-")
    assert thread_name != "MainThread"
    assert not loop.is_closed(), "loop threads are long-lived and reused"


def test_no_thread_is_started_per_call_after_warm_up() -> None:
    async def noop() -> None:
        pass

    def sync_noop() -> None:
        pass

    async def mixed() -> None:
        await sync_to_async(sync_noop)()
        await sync_to_async(sync_noop, thread_sensitive=False)()
        await sync_to_async(async_to_sync(noop))()

    call = async_to_sync(mixed)
    for _ in range(20):
        call()
    before = _library_thread_idents()
    for _ in range(300):
        call()
    assert _library_thread_idents() <= before


def _library_thread_idents() -> set[int | None]:
    # Only the library's own threads: a thread some other part of the run
    # starts meanwhile (pytest-xdist's, another test's) says nothing here.
    return {
        thread.ident
        for thread in threading.enumerate()
        if thread.name.startswith(THREAD_NAME_PREFIX)
    }


def test_inside_sync_to_async_the_coroutine_runs_on_the_callers_loop() -> None:
    def sync_code() -> tuple[str, asyncio.AbstractEventLoop]:
        return async_to_sync(where)()

    async def main() -> tuple[str, asyncio.AbstractEventLoop, str, Any]:
        name, loop = await sync_to_async(sync_code)()
        return name, loop, current_thread_name(), asyncio.get_running_loop()

    name, loop, main_name, main_loop = asyncio.run(main())
    assert loop is main_loop
    assert name == main_name


def test_force_new_loop_leaves_the_callers_loop_alone() -> None:
    def sync_code() -> asyncio.AbstractEventLoop:
        return async_to_sync(where, force_new_loop=True)()[1]

    async def main() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return await sync_to_async(sync_code)(), asyncio.get_running_loop()

    other, main_loop = asyncio.run(main())
    assert other is not main_loop


def test_called_from_a_thread_running_a_loop_says_to_await() -> None:
    async def main() -> None:
        async_to_sync(where)()

    with pytest.raises(RuntimeError, match="Await the coroutine function directly"):
        asyncio.run(main())


def test_concurrent_callers_from_plain_threads_do_not_share_a_loop() -> None:
    barrier = threading.Barrier(3, timeout=5)
    loops: list[asyncio.AbstractEventLoop] = []

    async def meet() -> None:
        loops.append(asyncio.get_running_loop())
        # All three coroutines are in flight at once; a blocking call inside
        # one must not stall the others, so each needs its own loop.
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)

    threads = [threading.Thread(target=async_to_sync(meet)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len({id(loop) for loop in loops}) == 3


# -- AsyncSingleThreadContext ------------------------------------------------


def test_single_thread_context_keeps_every_call_on_one_loop() -> None:
    with AsyncSingleThreadContext():
        seen = {async_to_sync(where)() for _ in range(5)}
        event = async_to_sync(_make_event)()
        # A loop-bound object made by one call is usable by the next.
        async_to_sync(_set_and_wait)(event)
    assert len(seen) == 1


def test_single_thread_context_is_reentrant() -> None:
    with AsyncSingleThreadContext():
        first = async_to_sync(where)()
        with AsyncSingleThreadContext():
            second = async_to_sync(where)()
        third = async_to_sync(where)()
    assert first == second == third


async def _make_event() -> asyncio.Event:
    return asyncio.Event()


async def _set_and_wait(event: asyncio.Event) -> None:
    event.set()
    await event.wait()


# -- context variables -------------------------------------------------------


def test_context_variables_flow_into_the_coroutine_and_back() -> None:
    async def handler() -> str:
        seen = request_id.get()
        request_id.set("set-in-async")
        return seen

    def run() -> tuple[str, str]:
        request_id.set("from-sync")
        seen = async_to_sync(handler)()
        return seen, request_id.get()

    assert contextvars.copy_context().run(run) == ("from-sync", "set-in-async")


def test_context_variables_survive_a_round_trip_through_both_bridges() -> None:
    def innermost() -> None:
        request_id.set(request_id.get() + "+sync")

    async def middle() -> None:
        request_id.set(request_id.get() + "+async")
        await sync_to_async(innermost)()

    def run() -> str:
        request_id.set("start")
        async_to_sync(middle)()
        return request_id.get()

    assert contextvars.copy_context().run(run) == "start+async+sync"


# -- errors ------------------------------------------------------------------


class CustomError(Exception):
    pass


async def fails() -> None:
    raise CustomError("from async code")


def test_exception_keeps_its_type_and_traceback() -> None:
    with pytest.raises(CustomError, match="from async code") as info:
        async_to_sync(fails)()
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fails" in frames


def test_coroutine_sees_the_exception_being_handled_by_its_caller() -> None:
    async def current_exception() -> BaseException | None:
        return sys.exc_info()[1]

    try:
        raise CustomError("handled")
    except CustomError:
        seen = async_to_sync(current_exception)()
    assert isinstance(seen, CustomError)


def test_not_awaitable_and_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="got 42 of type int"):
        async_to_sync(42)  # type: ignore[call-overload]


def test_unmarked_callable_warns_and_a_non_awaitable_result_is_a_type_error() -> None:
    def not_async() -> int:
        return 1

    with pytest.warns(UserWarning, match="non-async-marked callable"):
        wrapped = async_to_sync(not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="returned 1, which is not awaitable"):
        wrapped()


def test_sync_function_returning_a_coroutine_works_after_the_warning() -> None:
    def returns_coroutine() -> Any:
        return where()

    with pytest.warns(UserWarning, match="non-async-marked callable"):
        wrapped = async_to_sync(returns_coroutine)
    assert wrapped()[0].startswith("asgiref_core-loop-")


def test_an_awaitable_object_is_awaited_once() -> None:
    wrapped = async_to_sync(where())  # type: ignore[arg-type]
    assert wrapped()[0].startswith("asgiref_core-loop-")  # type: ignore[call-arg]
    with pytest.raises(RuntimeError, match="cannot reuse already awaited"):
        wrapped()  # type: ignore[call-arg]
    unstarted = where()
    with pytest.raises(TypeError, match="takes no arguments"):
        async_to_sync(unstarted)(1)  # type: ignore[arg-type]
    unstarted.close()


# -- cleanup -----------------------------------------------------------------


def test_tasks_left_running_are_cancelled_before_the_call_returns() -> None:
    cancelled = threading.Event()

    async def leaves_a_task() -> None:
        async def forever() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)

    async_to_sync(leaves_a_task)()
    assert cancelled.is_set()


def test_a_leftover_task_can_still_call_thread_sensitive_code_while_cancelled() -> None:
    ran_on: list[str] = []

    async def leaves_a_task() -> None:
        async def cleanup_on_cancel() -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                ran_on.append(await sync_to_async(current_thread_name)())
                raise

        asyncio.get_running_loop().create_task(cleanup_on_cancel())
        await asyncio.sleep(0)

    async_to_sync(leaves_a_task)()
    assert ran_on == ["MainThread"]


# -- wrapping ----------------------------------------------------------------


def test_decorator_forms_metadata_and_sync_marking() -> None:
    @async_to_sync
    async def plain(x: int) -> int:
        """Doubles."""
        return x * 2

    @async_to_sync(force_new_loop=True)
    async def configured(x: int) -> int:
        return x + 1

    assert plain(4) == 8
    assert configured(4) == 5
    assert plain.__name__ == "plain"
    assert plain.__doc__ == "Doubles."
    assert not iscoroutinefunction(plain)
    # A wrapped SyncToAsync (marked as a coroutine function) must not pass
    # its marker on to the sync wrapper.
    assert not iscoroutinefunction(async_to_sync(sync_to_async(len)))


def test_methods_partials_and_callable_objects() -> None:
    class Service:
        def __init__(self) -> None:
            self.value = 3

        @async_to_sync
        async def read(self) -> int:
            return self.value

    class AsyncCallable:
        async def __call__(self, x: int) -> int:
            return x + 10

    async def add(a: int, b: int) -> int:
        return a + b

    service = Service()
    assert service.read() == 3
    assert Service.read is Service.__dict__["read"]
    assert async_to_sync(functools.partial(add, 1))(2) == 3
    assert async_to_sync(AsyncCallable())(1) == 11
    wrapped = AsyncToSync(service.read.__wrapped__.__get__(service))  # type: ignore[attr-defined]
    assert wrapped.__self__ is service  # type: ignore[attr-defined]
    assert wrapped() == 3
