"""The long-lived threads behind the bridges.

- :class:`SyncWorker`: one thread running queued sync calls in order. One is
  process-wide (thread-sensitive code with no better home); others serve a
  ``ThreadSensitiveContext`` each and go back to a small idle pool afterwards.
- :class:`LoopRunner`: one thread running an event loop forever. A plain
  thread's ``async_to_sync`` borrows one for the length of the call, instead
  of starting a thread and a loop per call.

Idle pools are bounded, so a burst of concurrent callers does not leave a
thread behind for each of them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue

from asgiref_core._bridge_state import on_fork_reset, thread_name
from asgiref_core.current_thread_executor import CurrentThreadExecutor, _WorkItem

__all__: list[str] = []

#: How many idle threads of each kind are kept for reuse.
MAX_IDLE = 4

#: At interpreter exit, how long sync work still queued or running on the
#: library's threads gets to finish (they are daemon threads, so a hung call
#: cannot hold the process open for longer).
EXIT_GRACE = 5.0


class _Stop:
    __slots__ = ()

    def run(self) -> None:  # pragma: no cover - compared, never run
        pass


_STOP = _Stop()


class SyncWorker:
    """A thread that runs queued calls one after the other, in order."""

    def __init__(self, purpose: str) -> None:
        self._queue: SimpleQueue[_WorkItem] = SimpleQueue()
        # The item running now; read by introspection and deadlock checks.
        self.current: _WorkItem | None = None
        self.thread = threading.Thread(
            target=self._main, name=thread_name(purpose), daemon=True
        )
        _all_workers.add(self)
        self.thread.start()

    def submit_item(self, item: _WorkItem) -> None:
        self._queue.put(item)

    def idle(self) -> bool:
        """Nothing running and nothing queued (a snapshot)."""
        return self.current is None and self._queue.empty()

    def stop(self) -> None:
        """End the thread once the work queued so far is done."""
        self._queue.put(_STOP)

    def _main(self) -> None:
        get = self._queue.get
        while (item := get()) is not _STOP:
            self.current = item
            try:
                item.run()
            finally:
                self.current = None
                # Do not keep the last call (its arguments, result and
                # context) alive while waiting for the next one.
                item = None


_all_workers: weakref.WeakSet[SyncWorker] = weakref.WeakSet()


def live_workers() -> list[SyncWorker]:
    """Every sync worker whose thread is still running."""
    return [w for w in list(_all_workers) if w.thread.is_alive()]


class _ReturnToPool:
    """Queued on a context worker when its context exits."""

    __slots__ = ("worker",)

    def __init__(self, worker: SyncWorker) -> None:
        self.worker = worker

    def run(self) -> None:
        # Re-checked here: several contexts may have decided to return their
        # worker while each still had work queued.
        with _lock:
            if len(_idle_context_workers) < MAX_IDLE:
                _idle_context_workers.append(self.worker)
                return
        self.worker.stop()


_lock = threading.Lock()
_process_worker: SyncWorker | None = None
_idle_context_workers: list[SyncWorker] = []


def process_wide_worker() -> SyncWorker:
    """The one thread for thread-sensitive code that has no better home."""
    global _process_worker
    worker = _process_worker
    if worker is None:
        with _lock:
            worker = _process_worker
            if worker is None:
                worker = _process_worker = SyncWorker("thread-sensitive")
    return worker


def context_worker() -> SyncWorker:
    """A thread for one ``ThreadSensitiveContext``, reused when one is idle."""
    with _lock:
        if _idle_context_workers:
            return _idle_context_workers.pop()
    return SyncWorker("thread-sensitive-context")


def release_context_worker(worker: SyncWorker) -> None:
    """Give the worker back once it has finished what was queued on it.

    Never blocks: the worker may itself be waiting for the caller's loop.
    """
    with _lock:
        keep = len(_idle_context_workers) < MAX_IDLE
    worker.submit_item(_ReturnToPool(worker) if keep else _STOP)


class _PooledCall:
    """A call on a pooled worker, which rejoins the idle pool afterwards."""

    __slots__ = ("function", "worker")

    def __init__(
        self, worker: SyncWorker, function: Callable[[], Callable[[], object] | None]
    ) -> None:
        self.worker = worker
        self.function = function

    def run(self) -> None:
        then = None
        try:
            then = self.function()
        finally:
            self.function = _nothing
            with _lock:
                keep = len(_idle_call_workers) < MAX_IDLE_CALL_WORKERS
                if keep:
                    _idle_call_workers.append(self.worker)
            if not keep:
                self.worker.stop()
        if then is not None:
            then()


def _nothing() -> None:
    return None


#: How many idle threads for :func:`run_pooled` are kept for reuse.
MAX_IDLE_CALL_WORKERS = 8

_idle_call_workers: list[SyncWorker] = []


def run_pooled(
    function: Callable[[], Callable[[], object] | None], purpose: str
) -> None:
    """Run ``function()`` on an idle worker thread, or a new one if none is idle.

    Cheaper than an executor's ``submit``: no future, no executor lock; the
    caller hears back through its own means. ``function`` must not raise. It
    may return a callable, run once the thread is back in the idle pool: a
    final wake-up of the caller goes there, so that the caller's next call
    finds this thread idle.
    """
    with _lock:
        worker = _idle_call_workers.pop() if _idle_call_workers else None
    if worker is None:
        worker = SyncWorker(purpose)
    worker.submit_item(_PooledCall(worker, function))


class LoopRunner:
    """A thread running an event loop for ``async_to_sync`` calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        name = thread_name("loop")
        # Work sent to the loop's default executor (thread_sensitive=False
        # calls, run_in_executor(None, ...)) gets threads named after us.
        self.loop.set_default_executor(
            ThreadPoolExecutor(thread_name_prefix=f"{name}-default-executor")
        )
        # The executor of the async_to_sync call using this loop right now:
        # thread-sensitive calls from tasks that lost their context go there.
        self.executor: CurrentThreadExecutor | None = None
        # Set once the loop thread has ended; a dead runner is never lent.
        self.dead = False
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt escaped a task: the loop is
            # gone, so hand the exception to whoever waits on it, as
            # asyncio.run would raise it in its caller.
            self.dead = True
            executor = self.executor
            if executor is not None:
                executor.error = exc
                executor.wake()
        finally:
            self.dead = True
            runner_by_loop.pop(self.loop, None)
            try:
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


_idle_runners: list[LoopRunner] = []
#: Loops this module runs -> their runner.
runner_by_loop: dict[asyncio.AbstractEventLoop, LoopRunner] = {}


def acquire_runner() -> LoopRunner:
    """An idle loop thread, started if there is none."""
    with _lock:
        while _idle_runners:
            runner = _idle_runners.pop()
            if not runner.dead:
                return runner
    runner = LoopRunner()
    runner_by_loop[runner.loop] = runner
    return runner


def release_runner(runner: LoopRunner) -> None:
    runner.executor = None
    if runner.dead:
        return
    with _lock:
        if len(_idle_runners) < MAX_IDLE:
            _idle_runners.append(runner)
            return
    runner_by_loop.pop(runner.loop, None)
    runner.stop()


def retire_runner(runner: LoopRunner, executor: CurrentThreadExecutor) -> None:
    """Cancel what ``executor``'s call still runs there, then end the thread."""
    runner_by_loop.pop(runner.loop, None)
    if runner.dead:
        return

    def cancel_then_stop() -> None:
        task = executor.task
        if task is None or task.done():
            runner.loop.stop()
            return
        task.cancel()
        task.add_done_callback(lambda _: runner.loop.stop())

    with contextlib.suppress(RuntimeError):  # already closed
        runner.loop.call_soon_threadsafe(cancel_then_stop)


def _finish_work_at_exit() -> None:
    # Like ThreadPoolExecutor's threads, let queued and running sync work
    # (a database write, say) finish before the interpreter goes away; unlike
    # them, never wait forever.
    workers = live_workers()
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + EXIT_GRACE
    for worker in workers:
        worker.thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_finish_work_at_exit)


def _reset_after_fork() -> None:
    global _lock, _process_worker
    # The parent's threads do not exist here; forget them and their lock.
    _lock = threading.Lock()
    _process_worker = None
    _idle_context_workers.clear()
    _idle_call_workers.clear()
    _idle_runners.clear()
    runner_by_loop.clear()


on_fork_reset(_reset_after_fork)
