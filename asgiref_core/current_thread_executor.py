"""An executor that runs submitted work on the thread that created it.

A thread blocked in ``async_to_sync`` is not idle: it serves this executor, so
that thread-sensitive sync code called further down the chain runs on it
rather than on some other thread.

All executors of one thread share that thread's queue. A thread blocked in
nested waits can only listen in the innermost one, and work addressed to an
outer wait must not starve there, so whichever wait is active runs it. A
wake-up is an ordinary queue entry that marks its own executor as done.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import Empty, SimpleQueue
from typing import Any, ParamSpec, Protocol, TypeVar

__all__ = ["CurrentThreadExecutor"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _WorkItem(Protocol):
    """Anything the executor can run: the bridges' own calls or a submit()."""

    def run(self) -> None: ...


class _FunctionItem:
    """A plain ``submit(fn, *args, **kwargs)`` with a concurrent future."""

    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
            # The exception's traceback references this frame; drop the cycle.
            del exc
        else:
            self.future.set_result(result)


class _Wake:
    """Queued when what one executor's thread waits for is done."""

    __slots__ = ("executor",)

    def __init__(self, executor: CurrentThreadExecutor) -> None:
        self.executor = executor

    def run(self) -> None:
        self.executor._woken = True


class _ThreadQueues(threading.local):
    queue: SimpleQueue[_WorkItem] | None = None


_thread_queues = _ThreadQueues()


def _queue_of_this_thread() -> SimpleQueue[_WorkItem]:
    queue = _thread_queues.queue
    if queue is None:
        queue = _thread_queues.queue = SimpleQueue()
    return queue


class CurrentThreadExecutor(Executor):
    """Runs submitted callables on the thread that created the executor.

    The creating thread calls :meth:`run_until_future` and, until that future
    is done, runs whatever other threads submit. Work submitted after it
    stopped serving goes to ``old_executor`` (the executor of an enclosing
    wait), and so on up the chain; :meth:`submit` raises ``RuntimeError`` when
    no executor in the chain is still serving.
    """

    def __init__(self, old_executor: CurrentThreadExecutor | None = None) -> None:
        self._work_thread = threading.current_thread()
        self._queue = _queue_of_this_thread()
        self._lock = threading.Lock()
        self._closed = False
        self._woken = False
        self._old_executor = old_executor
        # Filled in by async_to_sync for introspection and deadlock reports:
        # the loop and task this thread waits for, and what was called.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.target: object = None
        # The sync_to_async call the waiting thread was running, if any.
        self.call: Any = None
        # The awaited outcome, handed from the loop thread to the waiter.
        self.value: Any = None
        self.error: BaseException | None = None
        self._started = False
        self._abandoned = False

    @property
    def thread(self) -> threading.Thread:
        """The thread that runs this executor's work."""
        return self._work_thread

    @property
    def serving(self) -> bool:
        """Whether the owning thread still runs newly submitted work."""
        return not self._closed

    def run_until_future(self, future: Future[Any]) -> None:
        """Run submitted work on this thread until ``future`` is done."""
        if threading.current_thread() is not self._work_thread:
            msg = (
                f"CurrentThreadExecutor.run_until_future() was called from thread "
                f"{threading.current_thread().name!r}, but the executor belongs to "
                f"thread {self._work_thread.name!r}; only that thread can run it"
            )
            raise RuntimeError(msg)
        future.add_done_callback(self._wake_from_future)
        self.serve()

    def _wake_from_future(self, _future: Future[Any]) -> None:
        self.wake()

    def wake(self) -> None:
        """Tell the serving thread that what it waits for is done."""
        self._queue.put(_Wake(self))

    def serve(
        self,
        poll: Callable[[], None] | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        """Run submitted work until :meth:`wake` is called, then stop serving.

        ``poll``, if given, is called whenever the thread has been idle for
        ``poll_interval`` seconds; an exception it raises ends the wait.
        """
        get = self._queue.get
        try:
            if poll is None:
                while not self._woken:
                    get().run()
            else:
                while not self._woken:
                    try:
                        item = get(timeout=poll_interval)
                    except Empty:
                        poll()
                    else:
                        item.run()
        finally:
            self._stop_serving()

    def _stop_serving(self) -> None:
        with self._lock:
            self._closed = True
        # Work that arrived between the wake-up and closing still belongs
        # to this thread: run it, so nothing submitted while we served is
        # lost. (Work for an enclosing wait of this thread is fine to run
        # here too; a wake-up for one just marks it.)
        while True:
            try:
                item = self._queue.get_nowait()
            except Empty:
                return
            item.run()

    def claim_start(self) -> bool:
        """On the loop: may the awaited coroutine start? (once only)."""
        with self._lock:
            if self._abandoned:
                return False
            self._started = True
            return True

    def claim_unstarted(self) -> bool:
        """On the waiting thread: give up on a coroutine that has not started."""
        with self._lock:
            if self._started:
                return False
            self._abandoned = True
            return True

    def submit_item(self, item: _WorkItem) -> CurrentThreadExecutor | None:
        """Queue ``item`` on the nearest executor in the chain still serving.

        Returns that executor, or None when none is serving.
        """
        executor: CurrentThreadExecutor | None = self
        while executor is not None:
            with executor._lock:
                if not executor._closed:
                    executor._queue.put(item)
                    return executor
            executor = executor._old_executor
        return None

    def submit(
        self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_R]:
        if threading.current_thread() is self._work_thread:
            msg = (
                f"cannot submit {fn!r} to the CurrentThreadExecutor of thread "
                f"{self._work_thread.name!r} from that same thread: it would wait "
                f"for itself. Call the function directly instead"
            )
            raise RuntimeError(msg)
        future: Future[_R] = Future()
        if self.submit_item(_FunctionItem(future, fn, args, kwargs)) is None:
            msg = (
                f"cannot submit {fn!r}: the CurrentThreadExecutor of thread "
                f"{self._work_thread.name!r} and every executor it falls back to "
                f"have stopped serving"
            )
            raise RuntimeError(msg)
        return future
