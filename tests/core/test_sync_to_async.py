"""sync_to_async: threads, contexts, errors, cancellation, wrapping."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from asgiref_core.sync import (
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    sync_to_async,
)

pytestmark = pytest.mark.timeout(20)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def current_thread_name() -> str:
    return threading.current_thread().name


def run(coro_fn: Any, *args: Any) -> Any:
    return asyncio.run(coro_fn(*args))


# -- which thread ------------------------------------------------------------


def test_result_is_returned_and_the_call_leaves_the_loop_thread() -> None:
    async def main() -> tuple[int, str, str]:
        result = await sync_to_async(lambda x: x * 2)(21)
        return result, current_thread_name(), await sync_to_async(current_thread_name)()

    result, loop_thread, worker = run(main)
    assert result == 42
    assert worker != loop_thread


def test_thread_sensitive_calls_share_one_process_wide_thread() -> None:
    async def main() -> set[str]:
        names = {await sync_to_async(current_thread_name)() for _ in range(5)}
        names.add(await sync_to_async(current_thread_name, thread_sensitive=True)())
        return names

    first = run(main)
    second = run(main)
    assert len(first) == 1
    assert first == second, "the thread must outlive one event loop"
    assert next(iter(first)).startswith("asgiref_core-thread-sensitive-")


def test_thread_sensitive_call_runs_on_the_outer_sync_thread() -> None:
    async def inner() -> str:
        return await sync_to_async(current_thread_name)()

    def outer() -> str:
        return async_to_sync(inner)()

    # From the main thread, straight through async_to_sync.
    assert outer() == "MainThread"

    # From a thread of our own.
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.append(outer()), name="my-sync")
    thread.start()
    thread.join()
    assert seen == ["my-sync"]


def test_thread_sensitive_call_two_bridges_deep_reaches_the_outermost_thread() -> None:
    async def innermost() -> str:
        return await sync_to_async(current_thread_name)()

    def middle() -> str:
        return async_to_sync(innermost)()

    async def outer() -> str:
        return await sync_to_async(middle)()

    assert async_to_sync(outer)() == "MainThread"


def test_thread_insensitive_calls_use_the_loops_default_executor() -> None:
    async def main() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="dflt"))
        sensitive = await sync_to_async(current_thread_name)()
        free = await sync_to_async(current_thread_name, thread_sensitive=False)()
        return sensitive, free

    sensitive, free = run(main)
    assert free.startswith("dflt")
    assert sensitive != free


def test_executor_argument_runs_the_call_there() -> None:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mine")

    async def main() -> str:
        return await sync_to_async(
            current_thread_name, thread_sensitive=False, executor=executor
        )()

    try:
        assert run(main).startswith("mine")
    finally:
        executor.shutdown()


def test_executor_with_thread_sensitive_is_a_type_error() -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        with pytest.raises(TypeError, match="thread_sensitive=False"):
            sync_to_async(current_thread_name, executor=executor)
    finally:
        executor.shutdown()


# -- ThreadSensitiveContext --------------------------------------------------


def test_thread_sensitive_context_gets_its_own_thread() -> None:
    async def in_context() -> set[str]:
        async with ThreadSensitiveContext():
            return {await sync_to_async(current_thread_name)() for _ in range(3)}

    async def main() -> tuple[set[str], set[str], str]:
        first, second = await asyncio.gather(in_context(), in_context())
        return first, second, await sync_to_async(current_thread_name)()

    first, second, outside = run(main)
    assert len(first) == len(second) == 1
    assert first != second, "concurrent contexts must not share a thread"
    assert outside not in first | second
    assert next(iter(first)).startswith("asgiref_core-thread-sensitive-context-")


def test_nested_thread_sensitive_context_without_executor_adds_nothing() -> None:
    async def main() -> tuple[str, str]:
        async with ThreadSensitiveContext():
            outer = await sync_to_async(current_thread_name)()
            async with ThreadSensitiveContext():
                inner = await sync_to_async(current_thread_name)()
        return outer, inner

    outer, inner = run(main)
    assert outer == inner


def test_tasks_started_in_a_context_use_its_thread() -> None:
    async def main() -> tuple[str, str]:
        async with ThreadSensitiveContext():
            here = await sync_to_async(current_thread_name)()
            task = asyncio.create_task(sync_to_async(current_thread_name)())
            return here, await task

    here, in_task = run(main)
    assert here == in_task


def test_thread_sensitive_context_with_executor_uses_it_and_leaves_it_running() -> None:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctx-exec")

    async def main() -> str:
        async with ThreadSensitiveContext(executor=executor):
            return await sync_to_async(current_thread_name)()

    try:
        assert run(main).startswith("ctx-exec")
        # The caller owns the executor: still usable after the block.
        assert executor.submit(lambda: 7).result(timeout=5) == 7
    finally:
        executor.shutdown()


def test_thread_sensitive_context_with_executor_beats_the_waiting_sync_thread() -> None:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctx-exec")

    async def inner() -> tuple[str, str]:
        async with ThreadSensitiveContext(executor=executor):
            in_block = await sync_to_async(current_thread_name)()
        after = await sync_to_async(current_thread_name)()
        return in_block, after

    try:
        in_block, after = async_to_sync(inner)()
    finally:
        executor.shutdown()
    assert in_block.startswith("ctx-exec")
    assert after == "MainThread"


def test_thread_sensitive_context_with_executor_enters_only_once() -> None:
    executor = ThreadPoolExecutor(max_workers=1)
    context = ThreadSensitiveContext(executor=executor)

    async def twice() -> None:
        async with context:
            pass
        async with context:
            pass

    async def nested() -> None:
        fresh = ThreadSensitiveContext(executor=executor)
        async with fresh, fresh:
            pass

    try:
        with pytest.raises(RuntimeError, match="entered only once"):
            run(twice)
        with pytest.raises(RuntimeError, match="already entered"):
            run(nested)
    finally:
        executor.shutdown()


def test_task_outliving_an_executor_context_gets_a_clear_error() -> None:
    executor = ThreadPoolExecutor(max_workers=1)

    async def main() -> None:
        release = asyncio.Event()

        async def late() -> str:
            await release.wait()
            return await sync_to_async(current_thread_name)()

        async with ThreadSensitiveContext(executor=executor):
            task = asyncio.create_task(late())
            await asyncio.sleep(0)
        release.set()
        await task

    try:
        with pytest.raises(RuntimeError, match="outlived the ThreadSensitiveContext"):
            run(main)
    finally:
        executor.shutdown()


# -- context variables -------------------------------------------------------


def test_context_variables_flow_into_the_call_and_back() -> None:
    def handler() -> str:
        seen = request_id.get()
        request_id.set("set-in-sync")
        return seen

    async def main() -> tuple[str, str]:
        request_id.set("from-async")
        seen = await sync_to_async(handler)()
        return seen, request_id.get()

    assert run(main) == ("from-async", "set-in-sync")


def test_context_variables_flow_back_from_thread_insensitive_calls() -> None:
    def handler() -> None:
        request_id.set("free")

    async def main() -> str:
        await sync_to_async(handler, thread_sensitive=False)()
        return request_id.get()

    assert run(main) == "free"


def test_context_argument_selects_the_context_and_is_not_copied_back() -> None:
    chosen = contextvars.copy_context()
    chosen.run(request_id.set, "chosen")

    def handler() -> str:
        seen = request_id.get()
        request_id.set("changed")
        return seen

    async def main() -> tuple[str, str]:
        request_id.set("caller")
        seen = await sync_to_async(handler, context=chosen)()
        return seen, request_id.get()

    assert run(main) == ("chosen", "caller")
    assert chosen[request_id] == "changed"


# -- errors ------------------------------------------------------------------


class CustomError(Exception):
    pass


def fails() -> None:
    raise CustomError("from sync code")


def test_exception_keeps_its_type_and_traceback() -> None:
    async def main() -> None:
        await sync_to_async(fails)()

    with pytest.raises(CustomError, match="from sync code") as info:
        run(main)
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "fails" in frames


def test_sync_code_sees_the_exception_being_handled_by_its_caller() -> None:
    def current_exception() -> BaseException | None:
        return sys.exc_info()[1]

    async def main() -> BaseException | None:
        try:
            raise CustomError("handled")
        except CustomError:
            return await sync_to_async(current_exception)()

    assert isinstance(run(main), CustomError)


def test_wrapping_a_coroutine_function_is_a_type_error() -> None:
    async def coroutine_function() -> None:
        pass

    class AsyncCallable:
        async def __call__(self) -> None:
            pass

    with pytest.raises(TypeError, match="coroutine function"):
        sync_to_async(coroutine_function)
    with pytest.raises(TypeError, match="coroutine function"):
        sync_to_async(functools.partial(coroutine_function))
    with pytest.raises(TypeError, match="coroutine function"):
        sync_to_async(AsyncCallable())


def test_wrapping_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="needs a sync callable, got 42"):
        sync_to_async(42)  # type: ignore[call-overload]


# -- cancellation ------------------------------------------------------------


def test_cancelling_the_caller_raises_at_once_and_the_sync_code_finishes() -> None:
    finished = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    async def main() -> None:
        task = asyncio.create_task(sync_to_async(slow)())
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert finished.wait(5), "a running sync call cannot be interrupted"


def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    release = threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        release.wait(5)

    async def main() -> None:
        first = asyncio.create_task(sync_to_async(blocker)())
        await asyncio.sleep(0.05)
        second = asyncio.create_task(sync_to_async(lambda: ran.append("second"))())
        await asyncio.sleep(0.05)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        await first
        # Let anything still queued on the thread run.
        await sync_to_async(lambda: None)()

    run(main)
    assert ran == []


def test_cancellation_reaches_a_nested_async_to_sync_coroutine() -> None:
    inner_cancelled = threading.Event()

    async def inner() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            inner_cancelled.set()
            raise

    def middle() -> None:
        async_to_sync(inner)()

    async def main() -> None:
        task = asyncio.create_task(sync_to_async(middle)())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert inner_cancelled.wait(5)


def test_a_nested_coroutine_that_absorbs_cancellation_lets_the_call_finish() -> None:
    async def inner() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "absorbed"
        return "slept"

    def middle() -> str:
        return async_to_sync(inner)() + " then returned"

    async def main() -> str:
        task = asyncio.create_task(sync_to_async(middle)())
        await asyncio.sleep(0.1)
        task.cancel()
        return await task

    assert run(main) == "absorbed then returned"


# -- wrapping ----------------------------------------------------------------


def test_decorator_forms_and_metadata() -> None:
    @sync_to_async
    def plain(x: int) -> int:
        """Doubles."""
        return x * 2

    @sync_to_async(thread_sensitive=False)
    def configured(x: int) -> int:
        return x + 1

    assert plain.__name__ == "plain"
    assert plain.__doc__ == "Doubles."
    assert plain.__wrapped__.__name__ == "plain"  # type: ignore[attr-defined]
    assert iscoroutinefunction(plain)
    assert iscoroutinefunction(configured)

    async def main() -> tuple[int, int]:
        return await plain(4), await configured(4)

    assert run(main) == (8, 5)


def test_methods_partials_and_callable_objects() -> None:
    class Repository:
        def __init__(self) -> None:
            self.items = ["a", "b"]

        @sync_to_async
        def count(self) -> int:
            return len(self.items)

    class Counter:
        def __call__(self, start: int) -> int:
            return start + 1

    repo = Repository()
    assert Repository.count is Repository.__dict__["count"]

    async def main() -> tuple[int, int, int, int]:
        bound_later = sync_to_async(repo.items.__len__)
        return (
            await repo.count(),
            await sync_to_async(functools.partial(pow, 2))(5),
            await sync_to_async(Counter())(1),
            await bound_later(),
        )

    assert run(main) == (2, 32, 2, 2)
    assert iscoroutinefunction(repo.count)


def test_bound_method_wrapper_keeps_self() -> None:
    class Thing:
        def name(self) -> str:
            return "thing"

    thing = Thing()
    wrapped = sync_to_async(thing.name)
    assert wrapped.__self__ is thing  # type: ignore[attr-defined]


# -- subclassing -------------------------------------------------------------


def test_subclass_thread_handler_runs_around_every_call_on_the_worker_thread() -> None:
    events: list[tuple[str, str]] = []

    class ClosingConnections(SyncToAsync[Any, Any]):
        def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
            events.append(("before", current_thread_name()))
            try:
                return super().thread_handler(loop, *args, **kwargs)
            finally:
                events.append(("after", current_thread_name()))

    def query(value: int) -> int:
        events.append(("query", current_thread_name()))
        return value

    async def main() -> tuple[int, int]:
        wrapped = ClosingConnections(query)
        return await wrapped(1), await wrapped(2)

    assert run(main) == (1, 2)
    assert [kind for kind, _ in events] == ["before", "query", "after"] * 2
    assert len({thread for _, thread in events}) == 1
    assert events[0][1] != "MainThread"


def test_keyword_arguments_named_like_internal_parameters_pass_through() -> None:
    def takes(loop: str, func: str, exc_info: str, task_context: str) -> str:
        return loop + func + exc_info + task_context

    async def main() -> str:
        return await sync_to_async(takes)(
            loop="a", func="b", exc_info="c", task_context="d"
        )

    assert run(main) == "abcd"
