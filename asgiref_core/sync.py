"""Bridges between sync and async code: ``sync_to_async`` and ``async_to_sync``.

Names, parameters and behaviour follow asgiref 3.13's ``asgiref.sync``. Where
asgiref would hang, these bridges complete the call or raise ``RuntimeError``
saying what waited on what. Which thread runs what is decided in
``_routing``; the threads live in ``_workers``; running a coroutine for
``async_to_sync`` is ``_loop_call``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from asgiref_core import _routing
from asgiref_core._bridge_state import (
    blocked_in_async_to_sync,
    current_executor,
    pending_thread_sensitive,
    thread_state,
)
from asgiref_core._contexts import AsyncSingleThreadContext, ThreadSensitiveContext
from asgiref_core._coroutines import (
    COROUTINE_MARK,
    copy_wrapper_metadata,
    is_async_callable,
    iscoroutinefunction,
    markcoroutinefunction,
)
from asgiref_core._loop_call import run_on_caller_loop, run_on_runner
from asgiref_core._sync_call import (
    SyncCall,
    adopt_context,
    after_cancel,
    describe_callable,
    submit_to_default_executor,
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
_MISSING: Any = object()

_get_running_loop = asyncio._get_running_loop
_copy_context = contextvars.copy_context
_partial = functools.partial


class SyncToAsync(Generic[_P, _R]):
    """Turn a sync callable into an awaitable one that runs it in a thread.

    Thread-sensitive calls (the default) run on the sync thread blocked in the
    nearest ``async_to_sync`` up the call chain, if there is one, otherwise on the
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
        if is_async_callable(func):
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
        copy_wrapper_metadata(self, func)
        self.func = func
        self.context = context
        self._thread_sensitive = thread_sensitive
        self._executor = executor
        # Marked so that iscoroutinefunction() recognises the wrapper.
        self.__dict__.update(COROUTINE_MARK)
        bound_to = getattr(func, "__self__", _MISSING)
        if bound_to is not _MISSING:
            self.__self__ = bound_to

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
            submit_to_default_executor(loop, call.run)
        try:
            return await future
        except asyncio.CancelledError:
            result: _R = await after_cancel(call)
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
        elif not is_async_callable(awaitable):
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
            copy_wrapper_metadata(self, awaitable)
            # The wrapper is sync: it must not inherit a coroutine marker.
            for marker in COROUTINE_MARK:
                self.__dict__.pop(marker, None)
        bound_to = getattr(awaitable, "__self__", _MISSING)
        if bound_to is not _MISSING:
            self.__self__ = bound_to

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

        executor = self._new_executor(parent_call)
        context = _copy_context()
        exc_info = sys.exc_info()
        ident = threading.get_ident()
        # A thread can be blocked in nested calls (it serves the outer one
        # while it runs the inner one): keep the outer entry to restore.
        outer_wait = blocked_in_async_to_sync.get(ident)
        blocked_in_async_to_sync[ident] = executor
        try:
            if loop is not None and not run_on_caller_loop(
                loop, awaitable, executor, context, exc_info, parent_call
            ):
                # That loop stopped before our coroutine started there; the
                # executor waited for it is spent, so wait with a fresh one.
                loop = None
                executor = self._new_executor(parent_call)
                blocked_in_async_to_sync[ident] = executor
            if loop is None:
                run_on_runner(awaitable, executor, context, exc_info)
        finally:
            if outer_wait is None:
                del blocked_in_async_to_sync[ident]
            else:
                blocked_in_async_to_sync[ident] = outer_wait
            adopt_context(context)
        error = executor.error
        if error is not None:
            executor.error = None
            try:
                raise error
            finally:
                del error
        return executor.value  # type: ignore[no-any-return]

    def _new_executor(self, parent_call: SyncCall | None) -> CurrentThreadExecutor:
        executor = CurrentThreadExecutor(current_executor.get())
        executor.target = self.awaitable
        executor.call = parent_call
        return executor

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
