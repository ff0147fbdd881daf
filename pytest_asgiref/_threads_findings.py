"""Giving finishing threads and tasks their grace, then describing the rest.

A thread that is merely finishing (an executor shutting down, a pooled
worker on its way back to its pool, an object whose thread ends when it is
garbage-collected) must not be reported. :func:`settle_threads` waits for
them within a fixed budget and collects garbage once if any are left;
:func:`settle_tasks` does the same for tasks, on their own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import os
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Collection
from types import FrameType
from typing import Any, Final, TypeVar

import asgiref_core
from asgiref_core.introspection import is_library_thread
from pytest_asgiref._threads_classify import active_library_threads, library_role
from pytest_asgiref._threads_report import Finding, task_stack
from pytest_asgiref._threads_tracking import (
    STACK_LIMIT,
    StartRecord,
)

__all__ = ["settle_tasks", "settle_threads", "task_finding", "thread_finding"]

T = TypeVar("T")

#: How long, at most, finishing threads get after a test, in all.
THREAD_GRACE: Final = 1.0
#: How long pending tasks get to finish after a test, per loop.
TASK_GRACE: Final = 0.5
# Waited before paying for a garbage collection: most threads end sooner.
_BEFORE_COLLECTING: Final = 0.05


def _directory(path: str) -> str:
    return os.path.join(os.path.normcase(path), "")


# Frames of the standard library and of asgiref_core say how a thread was
# started, not who asked for it. Installed packages are not the standard
# library, even where they live under it (outside a virtual environment).
_LIBRARY: Final = _directory(os.path.dirname(asgiref_core.__file__))
_STDLIB: Final = _directory(sysconfig.get_paths()["stdlib"])
_PACKAGES: Final = tuple(
    {_directory(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
)


def _is_machinery(filename: str) -> bool:
    name = os.path.normcase(filename)
    if name.startswith(_LIBRARY):
        return True
    return name.startswith(_STDLIB) and not name.startswith(_PACKAGES)


# Frames of these packages are the test runner's, not the user's: a stack is
# cut where they begin, so reports show what the test and the app did.
_RUNNER_PACKAGES: Final = ("/_pytest/", "/pluggy/")


# Where a thread's own code, or a loop's callback, begins: frames further out
# are the same in every thread or callback.
_BOUNDARIES: Final = {
    "threading.py": ("run", "_bootstrap_inner", "_bootstrap"),
    "events.py": ("_run",),
}


def _is_boundary(summary: traceback.FrameSummary) -> bool:
    if any(package in summary.filename for package in _RUNNER_PACKAGES):
        return True
    names = _BOUNDARIES.get(os.path.basename(summary.filename))
    return names is not None and summary.name in names


def frames_of(frame: FrameType) -> traceback.StackSummary:
    """The innermost frames of a running thread's stack, innermost first."""
    return traceback.StackSummary.extract(
        traceback.walk_stack(frame), limit=STACK_LIMIT, lookup_lines=False
    )


def format_stack(stack: traceback.StackSummary, indent: str = "    ") -> list[str]:
    """Lines for a stack given innermost first, printed outermost first.

    Frames of the test runner (pytest, pluggy), of a thread's bootstrap and
    of the event loop calling a callback are left out, from the first one
    outwards, unless that would leave nothing.
    """
    kept: list[traceback.FrameSummary] = []
    for summary in stack:
        if kept and _is_boundary(summary):
            break
        kept.append(summary)
    lines = []
    for summary in reversed(kept):
        lines.append(
            f'{indent}File "{summary.filename}", line {summary.lineno}, '
            f"in {summary.name}"
        )
        source = (summary.line or "").strip()
        if source:
            lines.append(f"{indent}  {source}")
    return lines


def _leaking(thread: threading.Thread) -> bool:
    if not thread.is_alive():
        return False
    if is_library_thread(thread):
        return thread in active_library_threads([thread])
    return True


def settle_threads(
    candidates: Collection[threading.Thread],
) -> list[threading.Thread]:
    """The candidates still running (or still lent out) after the grace period."""
    start = time.monotonic()
    deadline = start + THREAD_GRACE
    collected = False
    while True:
        left = [thread for thread in candidates if _leaking(thread)]
        now = time.monotonic()
        if not left or now >= deadline:
            return left
        if not collected and now - start >= _BEFORE_COLLECTING:
            # Threads that end when their owner is collected (an executor
            # nobody shut down, a per-call bridge thread) end now.
            gc.collect()
            collected = True
            continue
        plain = next((t for t in left if not is_library_thread(t)), None)
        pause = min(0.01, deadline - now)
        if plain is not None:
            plain.join(pause)
        else:
            time.sleep(pause)


def _on_loop(loop: asyncio.AbstractEventLoop, function: Callable[[], T]) -> T:
    """``function()`` on ``loop``'s thread if it runs elsewhere, else here.

    A loop too busy to answer (blocked by the very leak being reported) is
    read from here after a short wait.
    """
    if not loop.is_running():
        return function()
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(function())
        except BaseException as error:
            future.set_exception(error)

    try:
        loop.call_soon_threadsafe(run)
        return future.result(TASK_GRACE)
    except (RuntimeError, concurrent.futures.TimeoutError):
        return function()


def settle_tasks(
    loop: asyncio.AbstractEventLoop, tasks: Collection[asyncio.Task[Any]]
) -> list[asyncio.Task[Any]]:
    """The tasks still pending after they had a moment to finish on ``loop``."""
    pending = [task for task in tasks if not task.done()]
    if not pending or loop.is_closed():
        return pending
    with contextlib.suppress(Exception):
        if loop.is_running():
            waiting = asyncio.run_coroutine_threadsafe(
                asyncio.wait(pending, timeout=TASK_GRACE), loop
            )
            try:
                waiting.result(TASK_GRACE + 0.5)
            except concurrent.futures.TimeoutError:
                # A loop too busy to run the wait: leave no task behind.
                waiting.cancel()
        else:
            loop.run_until_complete(asyncio.wait(pending, timeout=TASK_GRACE))
    return sorted(
        (task for task in pending if not task.done()), key=lambda t: t.get_name()
    )


def _where(record: StartRecord) -> str:
    """``file:line`` of the innermost frame outside the stdlib and asgiref_core."""
    chosen = None
    for summary in record.stack:
        chosen = chosen or summary
        if not _is_machinery(summary.filename):
            chosen = summary
            break
    if chosen is None:
        return "an unknown place"
    return f"{os.path.basename(chosen.filename)}:{chosen.lineno}"


def thread_finding(
    thread: threading.Thread,
    record: StartRecord | None,
    frames: dict[int, FrameType],
) -> Finding:
    """Describe a leaked thread: who started it, where, and what it does now."""
    daemon = "daemon" if thread.daemon else "non-daemon"
    phase = "(started before the check could see it)"
    if record is not None and record.phase is not None:
        phase = record.phase.description
    elif record is not None:
        phase = "outside any test"
    details = []
    if is_library_thread(thread):
        details.append(f"  belongs to: {library_role(thread)}")
        details.append(f"  first started during: {phase}")
    else:
        details.append(f"  belongs to: {phase}")
    short = f"thread {thread.name!r}"
    if record is not None:
        short += f" (started at {_where(record)})"
        details.append(f"  started by: {record.starter}")
        details.append("  started at (most recent call last):")
        details += format_stack(record.stack)
    frame = frames.get(thread.ident or -1)
    if frame is not None:
        details.append("  now running (most recent call last):")
        details += format_stack(frames_of(frame))
    return Finding(
        kind="thread",
        headline=f"thread {thread.name!r} ({daemon}) is still running",
        short=short,
        details=tuple(details),
    )


def task_finding(
    task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop, where: str
) -> Finding:
    """Describe a pending task: its coroutine, where it waits, where it began."""
    coroutine = task.get_coro()
    name = getattr(coroutine, "__qualname__", None) or repr(coroutine)
    details = [f"  on: {where}", "  coroutine stack (most recent call last):"]
    details += _on_loop(loop, lambda: task_stack(task, STACK_LIMIT))
    created = getattr(task, "_source_traceback", None)
    if created:
        # Kept by asyncio in debug mode only.
        details.append("  created at (most recent call last):")
        summary = traceback.StackSummary.from_list(created[-STACK_LIMIT:])
        details += format_stack(traceback.StackSummary.from_list(summary[::-1]))
    return Finding(
        kind="task",
        headline=f"task {task.get_name()!r} ({name}) is still pending",
        short=f"task {task.get_name()!r} ({name})",
        details=tuple(details),
    )
