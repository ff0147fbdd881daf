"""Running an ``async_to_sync`` coroutine on an event loop and waiting for it.

Two ways: on the loop of the ``sync_to_async`` call the thread is inside (if
that loop still runs), or on a loop thread borrowed from the pool. Either way
the waiting thread serves thread-sensitive calls until the coroutine is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from asgiref_core import _routing
from asgiref_core._bridge_state import current_executor
from asgiref_core._sync_call import describe_callable
from asgiref_core._workers import acquire_runner, release_runner, retire_runner
from asgiref_core.current_thread_executor import CurrentThreadExecutor

if TYPE_CHECKING:
    from asgiref_core._sync_call import ExcInfo, SyncCall

__all__: list[str] = []

#: How long ``async_to_sync`` tolerates its target loop being stopped (but not
#: closed) before giving up on a coroutine that already started there. A loop
#: driven by ``run_until_complete`` stops between runs; that is normal for a
#: moment, fatal for long.
STOPPED_LOOP_GRACE = 1.0


class _Reroute(Exception):
    """The caller's loop stopped before our coroutine started there."""


def run_on_caller_loop(
    loop: asyncio.AbstractEventLoop,
    awaitable: Awaitable[Any],
    executor: CurrentThreadExecutor,
    context: contextvars.Context,
    exc_info: ExcInfo,
    parent_call: SyncCall | None,
) -> bool:
    """Run on the loop of the sync_to_async call we are inside.

    Returns False, having started nothing, if that loop turns out to be
    closed or stops before the coroutine starts; the caller then uses a
    loop of its own.
    """
    driver = _drive(awaitable, executor, exc_info, parent_call, None)
    try:
        loop.call_soon_threadsafe(_start, loop, driver, context, executor, parent_call)
    except RuntimeError:
        # Closed between our check and now.
        driver.close()
        return False
    stopped_since: list[float] = []

    def check_loop() -> None:
        if loop.is_running():
            stopped_since.clear()
            return
        if executor.claim_unstarted():
            driver.close()
            raise _Reroute
        now = time.monotonic()
        if not stopped_since:
            stopped_since.append(now)
        if loop.is_closed() or now - stopped_since[0] > STOPPED_LOOP_GRACE:
            state = "was closed" if loop.is_closed() else "stopped"
            msg = (
                f"async_to_sync({describe_callable(executor.target)}) in thread "
                f"{threading.current_thread().name!r} is waiting for its coroutine "
                f"on event loop {loop!r}, which {state} before the coroutine "
                f"finished, so it can never complete. This thread was started by "
                f"sync_to_async from that loop and outlived it: await the "
                f"sync_to_async call before the loop stops"
            )
            raise RuntimeError(msg)

    try:
        executor.serve(check_loop)
    except _Reroute:
        return False
    return True


def run_on_runner(
    awaitable: Awaitable[Any],
    executor: CurrentThreadExecutor,
    context: contextvars.Context,
    exc_info: ExcInfo,
) -> None:
    """Run on a loop thread of our own, borrowed for the length of the call."""
    single = _routing.single_thread_context.get()
    pinned = None if single is None else single._get_runner()
    # The context's loop may already be busy further up this call chain (a
    # nested force_new_loop call): then borrow a free one, or the inner call's
    # clean-up would cancel the outer call's tasks.
    runner = pinned if pinned is not None and pinned.executor is None else None
    if runner is None:
        runner = acquire_runner()
    runner.executor = executor
    loop = runner.loop
    driver = _drive(awaitable, executor, exc_info, None, loop)
    finished = False
    try:
        loop.call_soon_threadsafe(_start, loop, driver, context, executor, None)
        # Our loops only stop when lent out if a task kills the loop thread
        # (SystemExit, KeyboardInterrupt); that failure wakes us too.
        executor.serve()
        finished = True
    finally:
        runner.executor = None
        if not finished:
            # Interrupted while waiting (a signal handler raised, say): the
            # coroutine may still be running there. Cancel it and never lend
            # that loop again.
            retire_runner(runner, executor)
            if runner is pinned and single is not None:
                single._forget_runner()
        elif runner is not pinned:
            release_runner(runner)


def _start(
    loop: asyncio.AbstractEventLoop,
    driver: Coroutine[Any, Any, None],
    context: contextvars.Context,
    executor: CurrentThreadExecutor,
    parent_call: SyncCall | None,
) -> None:
    # On the target loop's thread.
    if not executor.claim_start():
        return  # the waiting thread gave up on this loop and went elsewhere
    task = loop.create_task(driver, context=context)
    executor.loop = loop
    executor.task = task
    if parent_call is not None:
        parent_call.children.append(task)


async def _drive(
    awaitable: Awaitable[Any],
    executor: CurrentThreadExecutor,
    exc_info: ExcInfo,
    parent_call: SyncCall | None,
    own_loop: asyncio.AbstractEventLoop | None,
) -> None:
    """Await the target, store its outcome, wake the waiting thread."""
    token = current_executor.set(executor)
    try:
        if exc_info[1] is not None:
            # Let the coroutine see the caller's in-flight exception.
            try:
                raise exc_info[1]
            except BaseException:
                executor.value = await awaitable
        else:
            executor.value = await awaitable
    except GeneratorExit:
        # Closed, not finished: its loop died with it pending, and this runs
        # outside its task. Nothing may be awaited now; just free the waiter.
        if executor.error is None:
            executor.error = RuntimeError(
                f"the event loop running async_to_sync("
                f"{describe_callable(executor.target)}) went away before the "
                f"coroutine finished"
            )
        executor.wake()
        raise
    except BaseException as exc:
        executor.error = exc
    try:
        current_executor.reset(token)
        if parent_call is not None:
            task = asyncio.current_task()
            if task in parent_call.children:
                parent_call.children.remove(task)
        if own_loop is not None:
            await _cancel_leftover_tasks(own_loop)
    finally:
        # Whatever happens to the clean-up, the waiting thread is released.
        executor.wake()


async def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel tasks the call left running, as ``asyncio.run`` would."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks(loop) if task is not current]
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    for task in leftovers:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception in a task left running by "
                    "async_to_sync and cancelled when the call returned",
                    "exception": task.exception(),
                    "task": task,
                }
            )
