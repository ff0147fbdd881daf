"""Reading what a thread or a task is blocked on, from its frames.

The hang reports and the deadlock check look at other threads while they
run, so everything here only reads: ``sys._current_frames()`` for threads,
the ``cr_await`` chain for coroutines. A thread's *wait* is the innermost
frame that says what it waits for: a portal call, an ``async_to_sync`` call
(serving thread-sensitive work meanwhile), a ``concurrent.futures`` result,
or an idle event loop. :func:`unblock` ends such a wait from outside,
without signals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import linecache
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import AsyncGeneratorType, CodeType, FrameType
from typing import Any, Final, Literal

from asgiref_core.current_thread_executor import CurrentThreadExecutor
from asgiref_core.sync import AsyncToSync, SyncToAsync
from pytest_asgiref._portal import Portal

__all__ = [
    "ThreadWait",
    "Unblocked",
    "async_to_sync_site",
    "call_site",
    "cancel_again",
    "coroutine_frames",
    "format_frame",
    "innermost_frames",
    "loops_by_thread",
    "on_stack",
    "phase_frame",
    "sync_to_async_site",
    "task_of_coroutine",
    "thread_frames",
    "thread_wait",
    "unblock",
]

WaitKind = Literal["portal", "async_to_sync", "future", "idle loop"]

_PORTAL_CALL: Final = Portal.call.__code__
_SERVE: Final = CurrentThreadExecutor.serve.__code__
_FUTURE_RESULT: Final = concurrent.futures.Future.result.__code__
_RUN_UNTIL_COMPLETE: Final = asyncio.BaseEventLoop.run_until_complete.__code__
_RUN_FOREVER: Final = asyncio.BaseEventLoop.run_forever.__code__
_RUN_ONCE: Final[CodeType | None] = getattr(
    getattr(asyncio.BaseEventLoop, "_run_once", None), "__code__", None
)
_ASYNC_TO_SYNC: Final = AsyncToSync.__call__.__code__
_SYNC_TO_ASYNC: Final = SyncToAsync.__call__.__code__

# Frames of these modules are how a thread waits, not what it waits for.
_MACHINERY: Final = frozenset(
    {"threading", "queue", "selectors", "concurrent.futures._base"}
)
# The awaitables that step an async generator, by type name (not importable).
_ASYNC_GENERATOR_STEPS: Final = frozenset(
    {"async_generator_asend", "async_generator_athrow"}
)
# Frames of these packages run the tests; the frames they call are the phase's.
_RUNNER_PACKAGES: Final = ("_pytest.", "pluggy.")
# Frames of these packages are never a user's call site.
_OWN_PACKAGES: Final = ("pytest_asgiref.", "asgiref_core.", "asyncio.")


@dataclass(frozen=True, slots=True)
class ThreadWait:
    """What one thread is blocked on right now.

    ``serving`` is true for an ``async_to_sync`` wait, during which the
    thread still runs the thread-sensitive calls queued for it. ``task`` is
    the task the thread waits for, where it can be told; ``site`` the frame
    that started the wait (the caller's line).
    """

    thread: threading.Thread
    kind: WaitKind
    loop: asyncio.AbstractEventLoop | None
    task: asyncio.Task[Any] | None
    future: concurrent.futures.Future[Any] | None
    site: FrameType | None

    @property
    def serving(self) -> bool:
        return self.kind == "async_to_sync"

    def describe(self) -> str:
        """``"waits in async_to_sync"`` and so on, for one line of a report."""
        if self.kind == "portal":
            return "waits in a blocking pytest-asgiref call (the portal)"
        if self.kind == "async_to_sync":
            return "waits in async_to_sync"
        if self.kind == "future":
            return "waits in concurrent.futures.Future.result()"
        return "runs an idle event loop"


def thread_frames() -> dict[int, FrameType]:
    """Every thread's innermost frame, by thread ident."""
    return sys._current_frames()


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _local(frame: FrameType, name: str) -> Any:
    try:
        return frame.f_locals.get(name)
    except Exception:  # a frame torn down while read
        return None


def thread_wait(thread: threading.Thread, frame: FrameType | None) -> ThreadWait | None:
    """The wait ``thread`` is in, or None if it runs code (or waits unseen)."""
    future: concurrent.futures.Future[Any] | None = None
    while frame is not None:
        code = frame.f_code
        if code is _PORTAL_CALL:
            return _portal_wait(thread, frame, future)
        if code is _SERVE:
            executor = _local(frame, "self")
            if not isinstance(executor, CurrentThreadExecutor):
                return None
            site = _caller_of(frame, _ASYNC_TO_SYNC)
            return ThreadWait(
                thread, "async_to_sync", executor.loop, executor.task, None, site
            )
        if code is _FUTURE_RESULT:
            candidate = _local(frame, "self")
            if isinstance(candidate, concurrent.futures.Future):
                future = candidate
        elif code is _RUN_ONCE or code is _RUN_FOREVER:
            loop = _local(frame, "self")
            if isinstance(loop, asyncio.AbstractEventLoop):
                return ThreadWait(thread, "idle loop", loop, None, None, None)
            return None
        elif _module(frame) not in _MACHINERY:
            if future is not None:
                return ThreadWait(thread, "future", None, None, future, frame)
            return None
        frame = frame.f_back
    return None


def _portal_wait(
    thread: threading.Thread,
    frame: FrameType,
    future: concurrent.futures.Future[Any] | None,
) -> ThreadWait | None:
    portal = _local(frame, "self")
    if not isinstance(portal, Portal):
        return None
    if future is None:
        candidate = _local(frame, "future")
        if isinstance(candidate, concurrent.futures.Future):
            future = candidate
    task = task_of_coroutine(portal.loop, _local(frame, "coroutine"))
    return ThreadWait(thread, "portal", portal.loop, task, future, call_site(frame))


def _caller_of(frame: FrameType | None, code: CodeType) -> FrameType | None:
    """The user's frame outside the innermost frame running ``code``."""
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    return None if frame is None else call_site(frame)


def async_to_sync_site(frame: FrameType | None) -> FrameType | None:
    """Where the innermost ``async_to_sync`` call in a thread's stack was made."""
    return _caller_of(frame, _ASYNC_TO_SYNC)


def call_site(frame: FrameType | None) -> FrameType | None:
    """The first frame outward from ``frame`` that is not the plugin's or the
    library's own: where user code made the call."""
    while frame is not None and (
        _module(frame).startswith(_OWN_PACKAGES) or _module(frame) in _MACHINERY
    ):
        frame = frame.f_back
    return frame


def task_of_coroutine(
    loop: asyncio.AbstractEventLoop, coroutine: object
) -> asyncio.Task[Any] | None:
    """The pending task on ``loop`` running ``coroutine``, if there is one."""
    if coroutine is None or loop.is_closed():
        return None
    with contextlib.suppress(RuntimeError):
        for task in asyncio.all_tasks(loop):
            if task.get_coro() is coroutine:
                return task
    return None


def loops_by_thread(
    frames: dict[int, FrameType],
) -> dict[asyncio.AbstractEventLoop, int]:
    """Each running event loop (with a Python ``run_forever`` frame) -> the
    ident of the thread running it."""
    found: dict[asyncio.AbstractEventLoop, int] = {}
    for ident, frame in frames.items():
        current: FrameType | None = frame
        while current is not None:
            if current.f_code is _RUN_FOREVER:
                loop = _local(current, "self")
                if isinstance(loop, asyncio.AbstractEventLoop):
                    found[loop] = ident
                break
            current = current.f_back
    return found


def coroutine_frames(coroutine: object, limit: int = 40) -> list[FrameType]:
    """The frames of a coroutine and of everything it awaits, outermost first.

    Follows ``cr_await`` (and the generator and async generator twins), so
    a suspended task shows the whole chain down to what it waits on, which
    ``Task.get_stack()`` does not.
    """
    frames: list[FrameType] = []
    seen: set[int] = set()
    current: Any = coroutine
    while current is not None and id(current) not in seen and len(frames) < limit:
        seen.add(id(current))
        frame = (
            getattr(current, "cr_frame", None)
            or getattr(current, "gi_frame", None)
            or getattr(current, "ag_frame", None)
        )
        if isinstance(frame, FrameType):
            frames.append(frame)
        current = (
            getattr(current, "cr_await", None)
            or getattr(current, "gi_yieldfrom", None)
            or getattr(current, "ag_await", None)
            or _async_generator_of(current)
        )
    return frames


def _async_generator_of(awaitable: object) -> AsyncGeneratorType[Any, Any] | None:
    """The async generator behind ``agen.__anext__()``, ``asend()`` or
    ``athrow()``, which name it in no attribute (an async fixture's set-up
    and teardown await one)."""
    if type(awaitable).__name__ not in _ASYNC_GENERATOR_STEPS:
        return None
    for referent in gc.get_referents(awaitable):
        if isinstance(referent, AsyncGeneratorType):
            return referent
    return None


def sync_to_async_site(task: asyncio.Task[Any]) -> FrameType | None:
    """The frame in ``task`` that awaits a ``sync_to_async`` call."""
    previous = None
    for frame in coroutine_frames(task.get_coro()):
        if frame.f_code is _SYNC_TO_ASYNC:
            return previous
        previous = frame
    return None


def innermost_frames(frame: FrameType | None, limit: int) -> list[FrameType]:
    """Up to ``limit`` frames ending at ``frame``, outermost first."""
    frames: list[FrameType] = []
    while frame is not None and len(frames) < limit:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return frames


def format_frame(frame: FrameType, indent: str) -> Iterator[str]:
    """One frame as a traceback shows it: where, then the source line."""
    code = frame.f_code
    lineno = frame.f_lineno or 0
    yield f'{indent}File "{code.co_filename}", line {lineno}, in {code.co_name}'
    line = linecache.getline(code.co_filename, lineno).strip()
    if line:
        yield f"{indent}  {line}"


@dataclass(frozen=True, slots=True)
class Unblocked:
    """What :func:`unblock` did to end one thread's wait.

    ``task`` and ``loop`` name the task it raised in, if any, so that a
    second attempt acts on that very task and on nothing the thread has
    gone on to since.
    """

    action: str
    task: asyncio.Task[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None


def unblock(
    thread: threading.Thread, error: Callable[[], BaseException]
) -> Unblocked | None:
    """End what ``thread`` is waiting for, from outside it, without signals.

    The innermost wait that can be ended wins: a portal call or another
    ``concurrent.futures`` result has its future cancelled, which wakes the
    waiter with ``concurrent.futures.CancelledError``; an ``async_to_sync``
    call or a loop's ``run_until_complete`` has ``error()`` raised in the
    task it waits for, at the ``await`` that task is suspended in (on the
    task's own loop). Both are ordinary exceptions, unlike the
    ``asyncio.CancelledError`` of cancelling the task, which pytest would
    not catch between two fixture teardowns. Returns what was done, or None
    if the thread waits in nothing that can be ended.
    """
    frame: FrameType | None = thread_frames().get(thread.ident or 0)
    while frame is not None:
        code = frame.f_code
        if code is _FUTURE_RESULT:
            future = _local(frame, "self")
            if isinstance(future, concurrent.futures.Future) and future.cancel():
                outer = frame.f_back
                if outer is not None and outer.f_code is _PORTAL_CALL:
                    return Unblocked(
                        "cancelled its blocking call on the portal's event loop"
                    )
                return Unblocked(
                    "cancelled the concurrent.futures.Future it waited for"
                )
        elif code is _SERVE:
            executor = _local(frame, "self")
            if isinstance(executor, CurrentThreadExecutor):
                done = _raise_in_task(executor.task, executor.loop, error)
                if done is not None:
                    return Unblocked(
                        f"raised {done}, which its async_to_sync call awaited",
                        executor.task,
                        executor.loop,
                    )
        elif code is _RUN_UNTIL_COMPLETE:
            task = _local(frame, "future")
            loop = _local(frame, "self")
            if isinstance(task, asyncio.Task) and isinstance(
                loop, asyncio.AbstractEventLoop
            ):
                done = _raise_in_task(task, loop, error)
                if done is not None:
                    return Unblocked(f"raised {done} on its event loop", task, loop)
        frame = frame.f_back
    return None


def _raise_in_task(
    task: asyncio.Task[Any] | None,
    loop: asyncio.AbstractEventLoop | None,
    error: Callable[[], BaseException],
) -> str | None:
    if task is None or loop is None or task.done():
        return None
    try:
        loop.call_soon_threadsafe(_raise_at_awaits, task, error)
    except RuntimeError:  # the loop is closed
        return None
    name = type(error()).__name__
    return f"{name} in task {task.get_name()!r} (at the await it is stuck in)"


def _raise_at_awaits(
    task: asyncio.Task[Any], error: Callable[[], BaseException]
) -> None:
    """On the task's loop: fail the futures the task is suspended on, so the
    exception comes out of the ``await`` that does not return; cancel the
    task if it is suspended on none (it is about to run)."""
    if task.done():
        return
    waiters = _innermost_waiters(task, set())
    if not waiters:
        task.cancel()
    for waiter in waiters:
        waiter.set_exception(error())


def _innermost_waiters(
    future: asyncio.Future[Any], seen: set[int]
) -> list[asyncio.Future[Any]]:
    """The pending futures at the ends of what ``future`` waits for.

    ``_fut_waiter`` is the future a suspended task waits on, in both the C
    and the Python implementation of tasks, and what ``Task.cancel()``
    itself cancels; ``asyncio.gather()``'s future keeps its awaitables in
    ``_children``. Through a gather, each pending child gets the exception,
    as each would get the cancellation, so none is left running.
    """
    if future.done() or id(future) in seen:
        return []
    seen.add(id(future))
    if isinstance(future, asyncio.Task):
        waiter = getattr(future, "_fut_waiter", None)
        if not isinstance(waiter, asyncio.Future):
            return []  # running, or about to: nothing to raise at
        return _innermost_waiters(waiter, seen)
    children = getattr(future, "_children", None)
    if isinstance(children, list):
        found: list[asyncio.Future[Any]] = []
        for child in children:
            if isinstance(child, asyncio.Future):
                found += _innermost_waiters(child, seen)
        return found
    return [future]


def cancel_again(done: Unblocked) -> None:
    """Cancel the task :func:`unblock` raised in, if it is still pending
    (its code swallowed the exception and went on waiting)."""
    task, loop = done.task, done.loop
    if task is None or loop is None or task.done():
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed
        loop.call_soon_threadsafe(task.cancel)


def phase_frame(frame: FrameType | None) -> FrameType | None:
    """The outermost frame, from ``frame`` out, that pytest called directly.

    For a thread running a test phase that is the test function, the
    fixture function or finalizer being set up or torn down, a hook
    implementation, or the pytest-asyncio wrapper running one of those: what
    a hang happened in, and what has returned once the hang is over.
    """
    outermost = frame
    while frame is not None:
        if _module(frame).startswith(_RUNNER_PACKAGES):
            return outermost
        outermost = frame
        frame = frame.f_back
    return outermost


def on_stack(target: FrameType | None, frame: FrameType | None) -> bool:
    """Whether ``target`` is ``frame`` or one of its callers."""
    if target is None:
        return False
    while frame is not None:
        if frame is target:
            return True
        frame = frame.f_back
    return False
