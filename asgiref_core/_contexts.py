"""The context managers that pin bridge work to one thread.

Public through :mod:`asgiref_core.sync`; kept apart because routing and the
workers need them without importing the bridges.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Executor
from types import TracebackType

from asgiref_core import _routing
from asgiref_core._bridge_state import current_executor
from asgiref_core._workers import (
    LoopRunner,
    SyncWorker,
    acquire_runner,
    context_worker,
    release_context_worker,
    release_runner,
)
from asgiref_core.current_thread_executor import CurrentThreadExecutor

__all__ = ["AsyncSingleThreadContext", "ThreadSensitiveContext"]


class ThreadSensitiveContext:
    """Run thread-sensitive sync code of this block on a thread of its own.

    Without ``executor``, the outermost context of a task gets one dedicated
    thread for all thread-sensitive calls made inside it (and in tasks started
    inside it); nested contexts without an executor add nothing. With
    ``executor`` (which must run one call at a time on one thread, for example
    ``ThreadPoolExecutor(max_workers=1)``), the block sends its thread-sensitive
    calls there, even inside another context or an ``async_to_sync`` call. The
    caller owns that executor: it is not shut down on exit. A context with an
    executor can be entered once; calls from tasks that outlive it raise
    ``RuntimeError``.

    Exiting never blocks the event loop, even when the context's thread is
    itself waiting for that loop.
    """

    def __init__(self, *, executor: Executor | None = None) -> None:
        self._executor = executor
        self._token: contextvars.Token[ThreadSensitiveContext | None] | None = None
        self._hidden: contextvars.Token[CurrentThreadExecutor | None] | None = None
        self._worker: SyncWorker | None = None
        self._exited = False

    @property
    def executor(self) -> Executor | None:
        """The executor given to the constructor, if any."""
        return self._executor

    @property
    def active(self) -> bool:
        """Whether this context is entered and routing calls."""
        return self._token is not None

    async def __aenter__(self) -> ThreadSensitiveContext:
        if self._executor is not None:
            if self._token is not None:
                msg = (
                    f"{self!r} is already entered; a ThreadSensitiveContext with "
                    f"an executor routes one block at a time"
                )
                raise RuntimeError(msg)
            if self._exited:
                msg = (
                    f"{self!r} has already been used: a ThreadSensitiveContext "
                    f"with an executor can be entered only once, so that tasks "
                    f"left over from the first block cannot reach the second. "
                    f"Create a new ThreadSensitiveContext(executor=...)"
                )
                raise RuntimeError(msg)
            self._token = _routing.thread_sensitive_context.set(self)
            # An enclosing async_to_sync's waiting thread would otherwise take
            # precedence; this block asked for its own executor.
            self._hidden = current_executor.set(None)
        elif _routing.thread_sensitive_context.get() is None:
            self._token = _routing.thread_sensitive_context.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        _routing.thread_sensitive_context.reset(token)
        if self._hidden is not None:
            current_executor.reset(self._hidden)
            self._hidden = None
        if self._executor is not None:
            self._exited = True
        worker = self._worker
        if worker is not None:
            self._worker = None
            release_context_worker(worker)

    def _get_worker(self) -> SyncWorker:
        worker = self._worker
        if worker is None:
            worker = self._worker = context_worker()
        return worker


class AsyncSingleThreadContext:
    """Run every ``async_to_sync`` call of this block on one event loop thread.

    Normally each ``async_to_sync`` call from a thread with no event loop
    borrows whichever loop thread is free. Inside this (re-entrant) context
    manager they all use the same one, so loop-bound objects created by one
    call can be used by the next.
    """

    def __init__(self) -> None:
        self.token: contextvars.Token[AsyncSingleThreadContext | None] | None = None
        self._runner: LoopRunner | None = None

    def __enter__(self) -> AsyncSingleThreadContext:
        if _routing.single_thread_context.get() is None:
            self.token = _routing.single_thread_context.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.token is None:
            return
        _routing.single_thread_context.reset(self.token)
        self.token = None
        runner = self._runner
        if runner is not None:
            self._runner = None
            release_runner(runner)

    def _get_runner(self) -> LoopRunner:
        runner = self._runner
        if runner is None or runner.dead:
            runner = self._runner = acquire_runner()
        return runner

    def _forget_runner(self) -> None:
        self._runner = None
