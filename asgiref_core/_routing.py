"""Where a thread-sensitive sync call runs, and when it cannot run at all.

In order of preference:

1. the thread blocked in the innermost ``async_to_sync`` up this call chain
   that still serves calls (it is the caller's own thread);
2. the thread of the enclosing ``ThreadSensitiveContext``, or its executor;
3. for a loop that ``async_to_sync`` runs on a loop thread of ours, the thread
   waiting for that call (reaches tasks that lost their context);
4. one process-wide thread.

Before queueing on a busy worker (2 or 4) it checks for the waits that could
never end, and either joins the wait (when the busy thread is waiting on a
coroutine that waits for this call) or raises ``RuntimeError`` naming both.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import TYPE_CHECKING, Any

from asgiref_core._bridge_state import (
    blocked_in_async_to_sync,
    current_executor,
    occupying,
)
from asgiref_core._workers import SyncWorker, process_wide_worker, runner_by_loop

if TYPE_CHECKING:
    from asgiref_core._sync_call import SyncCall
    from asgiref_core.current_thread_executor import (
        CurrentThreadExecutor,
        _WorkItem,
    )
    from asgiref_core.sync import AsyncSingleThreadContext, ThreadSensitiveContext

__all__: list[str] = []

thread_sensitive_context: contextvars.ContextVar[ThreadSensitiveContext | None] = (
    contextvars.ContextVar("asgiref_core.thread_sensitive_context", default=None)
)
single_thread_context: contextvars.ContextVar[AsyncSingleThreadContext | None] = (
    contextvars.ContextVar("asgiref_core.single_thread_context", default=None)
)

# How far the await graph is followed when looking for a cycle.
_MAX_AWAIT_DEPTH = 10_000
# Seconds between checks for a cycle that forms after a call was queued.
_RECHECK_FIRST = 0.01
_RECHECK_MAX = 0.5


def dispatch_thread_sensitive(call: SyncCall, may_mark: bool) -> None:
    """Queue ``call`` on the thread it must run on.

    ``may_mark`` says whether the call's context is a private copy, which may
    carry a marker naming the worker it occupies (for deadlock detection).
    """
    if _queue_on(current_executor.get(), call, call):
        return
    context = thread_sensitive_context.get()
    if context is not None:
        if context.executor is not None:
            if not context.active:
                msg = (
                    f"sync_to_async({call.describe()}) was called from a task that "
                    f"outlived the ThreadSensitiveContext(executor=...) it was "
                    f"started in; that context has exited, so there is no thread "
                    f"to run it on. Wait for such tasks before leaving the block"
                )
                raise RuntimeError(msg)
            context.executor.submit(call.run)
            call.queued_on = context.executor
            return
        if context.active:
            _submit_to_worker(context._get_worker(), call, may_mark)
            return
    runner = runner_by_loop.get(call.loop)
    if runner is not None and _queue_on(runner.executor, call, call):
        return
    _submit_to_worker(process_wide_worker(), call, may_mark)


def _queue_on(
    executor: CurrentThreadExecutor | None, item: _WorkItem, call: SyncCall
) -> bool:
    """Queue ``item`` (``call`` or a stand-in) with a waiting thread's executor
    chain, recording where it went; False if none of them serves."""
    taker = None if executor is None else executor.submit_item(item)
    if taker is None:
        return False
    call.queued_on = taker.thread
    return True


def _waits_for(waiting: CurrentThreadExecutor | None, call: SyncCall) -> bool:
    """Whether ``waiting``'s coroutine, on the call's loop, awaits the call."""
    return (
        waiting is not None
        and waiting.loop is call.loop
        and waiting.task is not None
        and call.task is not None
        and awaits(waiting.task, call.task)
    )


def _submit_to_worker(worker: SyncWorker, call: SyncCall, may_mark: bool) -> None:
    if may_mark:
        call.context.run(occupying.set, call)
    call.queued_on = worker.thread
    if worker.idle():
        worker.submit_item(call)
        return
    if _joined_busy_worker(worker, call):
        return
    # Queued behind other work. Should the worker come to wait in
    # async_to_sync on a coroutine that waits for this call (the edge may
    # appear only later), the call must run on the waiting thread instead:
    # keep checking until it runs.
    first = _RunOnce(call)
    worker.submit_item(first)
    call.loop.call_later(_RECHECK_FIRST, _recheck, worker, first, _RECHECK_FIRST)


class _RunOnce:
    """One of two queue entries for the same call; whichever runs first wins."""

    __slots__ = ("_lock", "call")

    def __init__(self, call: SyncCall, lock: threading.Lock | None = None) -> None:
        self.call = call
        self._lock = threading.Lock() if lock is None else lock

    @property
    def func(self) -> object:
        return self.call.func

    @property
    def claimed(self) -> bool:
        return self._lock.locked()

    def twin(self) -> _RunOnce:
        return _RunOnce(self.call, self._lock)

    def run(self) -> None:
        if self._lock.acquire(blocking=False):
            self.call.run()


def _recheck(worker: SyncWorker, entry: _RunOnce, delay: float) -> None:
    # On the call's loop.
    call = entry.call
    if entry.claimed or call.done:
        return
    waiting = blocked_in_async_to_sync.get(worker.thread.ident or 0)
    if _waits_for(waiting, call) and _queue_on(waiting, entry.twin(), call):
        return
    delay = min(delay * 2, _RECHECK_MAX)
    call.loop.call_later(delay, _recheck, worker, entry, delay)


def _joined_busy_worker(worker: SyncWorker, call: SyncCall) -> bool:
    """Handle a call for a worker that is busy; True if it was queued.

    Queueing behind the worker is normal unless the worker's current call
    waits, directly or not, for this one.
    """
    waiting = blocked_in_async_to_sync.get(worker.thread.ident or 0)
    ancestor = occupying.get()
    current = worker.current
    if ancestor is not None and (
        current is ancestor or getattr(current, "call", None) is ancestor
    ):
        # This call descends from the one the worker is running.
        if _queue_on(waiting, call, call):
            return True
        msg = (
            f"sync_to_async({call.describe()}) would deadlock: it is "
            f"thread-sensitive, so it must run on thread {worker.thread.name!r}, "
            f"but that thread is busy running {ancestor.describe()}, which this "
            f"call was started from and which cannot finish before it. Await the "
            f"earlier call before starting this one, or pass "
            f"thread_sensitive=False if {call.describe()} is safe on any thread"
        )
        raise RuntimeError(msg)
    # The worker may wait in async_to_sync for a coroutine that waits for
    # this call, which lost the context that would have routed it there.
    return _waits_for(waiting, call) and _queue_on(waiting, call, call)


def awaits(start: asyncio.Future[Any], target: asyncio.Future[Any]) -> bool:
    """Whether ``start`` is (transitively) waiting for ``target``.

    Follows what each task is suspended on, and the children of ``gather``.
    Waits through plain futures or events are invisible here.
    """
    stack: list[Any] = [start]
    seen: set[int] = set()
    while stack and len(seen) < _MAX_AWAIT_DEPTH:
        future = stack.pop()
        if future is target:
            return True
        if id(future) in seen:
            continue
        seen.add(id(future))
        waiter = getattr(future, "_fut_waiter", None)
        if waiter is not None:
            stack.append(waiter)
        children = getattr(future, "_children", None)
        if children:
            stack.extend(children)
    return False
