"""Bridges between sync and async code: ``sync_to_async`` and ``async_to_sync``.

Names, parameters and behaviour follow asgiref 3.13's ``asgiref.sync``. Where
asgiref would hang, these bridges complete the call or raise ``RuntimeError``
saying what waited on what. Which thread runs what is decided in
:mod:`asgiref_core._routing`; the threads themselves live in
:mod:`asgiref_core._workers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from asgiref_core import _routing
from asgiref_core._bridge_state import (
    blocked_in_async_to_sync,
    current_executor,
    pending_thread_sensitive,
    thread_state,
)
from asgiref_core._coroutines import iscoroutinefunction, markcoroutinefunction
from asgiref_core._sync_call import SyncCall, adopt_context, describe_callable
from asgiref_core._workers import (
    LoopRunner,
    SyncWorker,
    acquire_runner,
    context_worker,
    release_context_worker,
    release_runner,
)
from asgiref_core.current_thread_executor import CurrentThreadExecutor

if TYPE_CHECKING:
    from asgiref_core._sync_call import ExcInfo

__all__ = [
    "AsyncSingleThreadContext",
    "AsyncToSync",
    "SyncToAsync",
    "ThreadSensitiveContext",
    "async_to_sync",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "sync_to_async",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: How long ``async_to_sync`` tolerates its target loop being stopped (but not
#: closed) before giving up on a coroutine that already started there. A loop
#: driven by ``run_until_complete`` stops between runs; that is normal for a
#: moment, fatal for long.
STOPPED_LOOP_GRACE = 1.0

_get_running_loop = asyncio._get_running_loop
_copy_context = contextvars.copy_context
_partial = functools.partial


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
        if runner is None:
            runner = self._runner = acquire_runner()
        return runner


class SyncToAsync(Generic[_P, _R]):
    """Turn a sync callable into an awaitable one that runs it in a thread.

    Thread-sensitive calls (the default) run on the outermost sync thread if
    one is blocked in ``async_to_sync`` up the call chain, otherwise on the
    thread of the enclosing :class:`ThreadSensitiveContext`, otherwise on one
    process-wide thread. With ``thread_sensitive=False`` the call runs in
    ``executor``, or the running loop's default executor. Context variables
    flow in both directions. Subclasses may override :meth:`thread_handler`,
    which runs on the worker thread around every call.
    """

    def __init__(
        self,
        func: Callable[_P, _R],
        thread_sensitive: bool = True,
        executor: Executor | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        checked: object = func
        if not callable(checked):
            msg = f"sync_to_async() needs a sync callable, got {func!r}"
            raise TypeError(msg)
        if iscoroutinefunction(func) or iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - the object's own __call__
        ):
            msg = (
                f"sync_to_async() can only wrap sync functions, but "
                f"{describe_callable(func)} is a coroutine function; await it "
                f"directly instead of wrapping it"
            )
            raise TypeError(msg)
        if thread_sensitive and executor is not None:
            msg = (
                f"sync_to_async({describe_callable(func)}) got executor={executor!r} "
                f"with thread_sensitive=True; thread-sensitive calls choose their own "
                f"thread. Pass thread_sensitive=False to use an executor"
            )
            raise TypeError(msg)
        functools.update_wrapper(self, func)
        self.func = func
        self.context = context
        self._thread_sensitive = thread_sensitive
        self._executor = executor
        markcoroutinefunction(self)
        with contextlib.suppress(AttributeError):
            self.__self__ = func.__self__  # type: ignore[attr-defined]

    async def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        loop = asyncio.get_running_loop()
        context = _copy_context() if self.context is None else self.context
        future: asyncio.Future[_R] = loop.create_future()
        call = SyncCall(
            self,
            self.func,
            loop,
            future,
            context,
            _partial(self.func, *args, **kwargs),
            sys.exc_info(),
            asyncio.current_task(loop),
        )
        if self._thread_sensitive:
            pending_thread_sensitive[id(call)] = call
            try:
                _routing.dispatch_thread_sensitive(call, self.context is None)
            except BaseException:
                del pending_thread_sensitive[id(call)]
                raise
        elif self._executor is not None:
            self._executor.submit(call.run)
        else:
            _submit_to_default_executor(loop, call)
        try:
            return await future
        except asyncio.CancelledError:
            result: _R = await _after_cancel(call)
            return result
        finally:
            if self.context is None:
                adopt_context(context)

    def __get__(
        self, parent: Any, objtype: Any = None
    ) -> Callable[_P, Coroutine[Any, Any, _R]]:
        if parent is None:
            return self
        bound = _partial(self.__call__, parent)
        return functools.update_wrapper(bound, self.func)

    def thread_handler(
        self,
        loop: asyncio.AbstractEventLoop,
        exc_info: ExcInfo,
        task_context: Any,
        func: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Run the call on the worker thread.

        Subclasses wrap this (calling ``super().thread_handler(loop, *args,
        **kwargs)``) to do work around every sync call on its own thread, such
        as closing stale database connections.
        """
        outer = thread_state.call
        thread_state.call = task_context
        try:
            if exc_info[1] is not None:
                # Re-raise the caller's in-flight exception so that
                # sys.exc_info() inside the sync code sees the same one.
                try:
                    raise exc_info[1]
                except BaseException:
                    return func(*args, **kwargs)
            return func(*args, **kwargs)
        finally:
            thread_state.call = outer


def _submit_to_default_executor(
    loop: asyncio.AbstractEventLoop, call: SyncCall
) -> None:
    # run_in_executor wraps the result in a second future and wakes the loop a
    # second time; the call reports back by itself, so go to the executor
    # directly once the loop has created it.
    executor: Executor | None = getattr(loop, "_default_executor", None)
    if executor is None:
        loop.run_in_executor(None, call.run)
    else:
        executor.submit(call.run)


async def _after_cancel(call: SyncCall) -> Any:
    """The caller of a sync call was cancelled; decide what happens to it.

    The sync code itself cannot be interrupted. If it is inside a nested
    ``async_to_sync`` whose coroutine runs on this loop, the cancellation is
    passed into that coroutine; should the coroutine absorb it, the call is
    waited for and its result returned, as asgiref does.
    """
    if call.children:
        child = call.children[0]
        child.cancel()
        try:
            await child
        except asyncio.CancelledError:
            pass
        else:
            if not call.done:
                call.future = call.loop.create_future()
                return await call.future
            if call.error is not None:
                raise call.error
            return call.value
    # A call that has not started yet never will.
    call.skip = True
    raise asyncio.CancelledError


class AsyncToSync(Generic[_P, _R]):
    """Turn an async callable into a sync one that blocks until it finishes.

    Called from a thread that ``sync_to_async`` started, the coroutine runs on
    the event loop that started it, as long as that loop is running. Otherwise
    it runs on a long-lived loop thread borrowed for the call (tasks it leaves
    behind are cancelled before the call returns, as ``asyncio.run`` does).
    While it waits, the calling thread runs the thread-sensitive sync code
    that the coroutine calls, so that code stays on the caller's thread.
    """

    def __init__(
        self,
        awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
        force_new_loop: bool = False,
    ) -> None:
        checked: object = awaitable
        if not callable(checked):
            if not inspect.isawaitable(checked):
                msg = (
                    f"async_to_sync() needs a coroutine function or an awaitable, "
                    f"got {awaitable!r} of type {type(awaitable).__name__}"
                )
                raise TypeError(msg)
        elif not iscoroutinefunction(awaitable) and not iscoroutinefunction(
            getattr(awaitable, "__call__", None)  # noqa: B004 - the object's own __call__
        ):
            # Detection has false negatives (a sync function returning a
            # coroutine is fine), so this warns; a call that returns something
            # that is not awaitable raises TypeError then.
            warnings.warn(
                f"async_to_sync was passed a non-async-marked callable: "
                f"{describe_callable(awaitable)}",
                stacklevel=2,
            )
        self.awaitable = awaitable
        self.force_new_loop = force_new_loop
        if callable(awaitable):
            functools.update_wrapper(self, awaitable)
            # The wrapper is sync: it must not inherit a coroutine marker.
            for marker in ("_is_coroutine", "_is_coroutine_marker"):
                self.__dict__.pop(marker, None)
        with contextlib.suppress(AttributeError):
            self.__self__ = awaitable.__self__  # type: ignore[union-attr]

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        running = _get_running_loop()
        if running is not None:
            msg = (
                f"async_to_sync({describe_callable(self.awaitable)}) was called from "
                f"thread {threading.current_thread().name!r}, which is running event "
                f"loop {running!r}; blocking here would stall that loop. Await the "
                f"coroutine function directly instead"
            )
            raise RuntimeError(msg)
        awaitable = self._make_awaitable(args, kwargs)

        parent_call = thread_state.call
        loop: asyncio.AbstractEventLoop | None = None
        if not self.force_new_loop and parent_call is not None:
            loop = parent_call.loop
            if not loop.is_running():
                # Stopped or closed: the task would never run there.
                loop = None

        executor = CurrentThreadExecutor(current_executor.get())
        executor.target = self.awaitable
        executor.call = parent_call
        context = _copy_context()
        exc_info = sys.exc_info()
        ident = threading.get_ident()
        blocked_in_async_to_sync[ident] = executor
        try:
            if loop is None or not _run_on_caller_loop(
                loop, awaitable, executor, context, exc_info, parent_call
            ):
                _run_on_runner(awaitable, executor, context, exc_info)
        finally:
            del blocked_in_async_to_sync[ident]
            adopt_context(context)
        error = executor.error
        if error is not None:
            executor.error = None
            try:
                raise error
            finally:
                del error
        return executor.value  # type: ignore[no-any-return]

    def _make_awaitable(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Awaitable[_R]:
        target: object = self.awaitable
        if not callable(target):
            if args or kwargs:
                msg = (
                    f"async_to_sync() was given the awaitable {target!r}, which "
                    f"takes no arguments, but was called with args={args!r}, "
                    f"kwargs={kwargs!r}"
                )
                raise TypeError(msg)
            return target  # type: ignore[return-value]  # checked in __init__
        awaitable = target(*args, **kwargs)
        if not inspect.isawaitable(awaitable):
            msg = (
                f"async_to_sync({describe_callable(target)}): calling it returned "
                f"{awaitable!r}, which is not awaitable. Pass a coroutine "
                f"function (async def), or use the sync function directly"
            )
            raise TypeError(msg)
        return awaitable

    def __get__(self, parent: Any, objtype: Any = None) -> Callable[_P, _R]:
        if parent is None:
            return self
        bound = _partial(self.__call__, parent)
        return functools.update_wrapper(bound, self.awaitable)


class _Reroute(Exception):
    """The caller's loop stopped before our coroutine started there."""


def _run_on_caller_loop(
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


def _run_on_runner(
    awaitable: Awaitable[Any],
    executor: CurrentThreadExecutor,
    context: contextvars.Context,
    exc_info: ExcInfo,
) -> None:
    """Run on a loop thread of our own, borrowed for the length of the call."""
    single = _routing.single_thread_context.get()
    runner = single._get_runner() if single is not None else acquire_runner()
    runner.executor = executor
    loop = runner.loop
    driver = _drive(awaitable, executor, exc_info, None, loop)
    try:
        loop.call_soon_threadsafe(_start, loop, driver, context, executor, None)
        # Our loops never stop while lent out, so no polling is needed.
        executor.serve()
    finally:
        if single is None:
            release_runner(runner)
        else:
            runner.executor = None


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
    except BaseException as exc:
        executor.error = exc
    finally:
        current_executor.reset(token)
        if parent_call is not None:
            task = asyncio.current_task()
            if task in parent_call.children:
                parent_call.children.remove(task)
        if own_loop is not None:
            await _cancel_leftover_tasks(own_loop)
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


@overload
def sync_to_async(
    *,
    thread_sensitive: bool = True,
    executor: Executor | None = None,
    context: contextvars.Context | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, Coroutine[Any, Any, _R]]]: ...


@overload
def sync_to_async(
    func: Callable[_P, _R],
    *,
    thread_sensitive: bool = True,
    executor: Executor | None = None,
    context: contextvars.Context | None = None,
) -> Callable[_P, Coroutine[Any, Any, _R]]: ...


def sync_to_async(
    func: Callable[_P, _R] | None = None,
    *,
    thread_sensitive: bool = True,
    executor: Executor | None = None,
    context: contextvars.Context | None = None,
) -> (
    Callable[[Callable[_P, _R]], Callable[_P, Coroutine[Any, Any, _R]]]
    | Callable[_P, Coroutine[Any, Any, _R]]
):
    """Wrap a sync callable so it can be awaited; usable as a decorator."""
    if func is None:

        def decorate(f: Callable[_P, _R]) -> Callable[_P, Coroutine[Any, Any, _R]]:
            return SyncToAsync(
                f,
                thread_sensitive=thread_sensitive,
                executor=executor,
                context=context,
            )

        return decorate
    return SyncToAsync(
        func, thread_sensitive=thread_sensitive, executor=executor, context=context
    )


@overload
def async_to_sync(
    *,
    force_new_loop: bool = False,
) -> Callable[
    [Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]]],
    Callable[_P, _R],
]: ...


@overload
def async_to_sync(
    awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
    *,
    force_new_loop: bool = False,
) -> Callable[_P, _R]: ...


def async_to_sync(
    awaitable: Callable[_P, Coroutine[Any, Any, _R]]
    | Callable[_P, Awaitable[_R]]
    | None = None,
    *,
    force_new_loop: bool = False,
) -> (
    Callable[
        [Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]]],
        Callable[_P, _R],
    ]
    | Callable[_P, _R]
):
    """Wrap an async callable so sync code can call it; usable as a decorator."""
    if awaitable is None:

        def decorate(
            f: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
        ) -> Callable[_P, _R]:
            return AsyncToSync(f, force_new_loop=force_new_loop)

        return decorate
    return AsyncToSync(awaitable, force_new_loop=force_new_loop)
