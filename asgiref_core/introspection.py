"""What the bridges are doing right now: their threads and their waits.

Reading is the only cost: the bridges keep just enough bookkeeping (plain
dict writes) for :func:`snapshot` to describe them, so nothing here slows a
bridge call down when nobody asks. Thread leak checks and hang reports use it:

>>> from asgiref_core.introspection import snapshot
>>> print(snapshot().format())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Literal

from asgiref_core._bridge_state import (
    THREAD_NAME_PREFIX,
    blocked_in_async_to_sync,
    pending_thread_sensitive,
)
from asgiref_core._sync_call import describe_callable
from asgiref_core._workers import SyncWorker, live_workers

__all__ = [
    "BridgeSnapshot",
    "BridgeThread",
    "BridgeWait",
    "Purpose",
    "THREAD_NAME_PREFIX",
    "is_library_thread",
    "library_threads",
    "pending_waits",
    "snapshot",
    "thread_purpose",
]

#: What a library thread is for, from its name.
Purpose = Literal[
    "thread-sensitive",
    "thread-sensitive-context",
    "loop",
    "loop-default-executor",
    "other",
]


def is_library_thread(thread: threading.Thread) -> bool:
    """Whether ``thread`` was started by asgiref_core (it lives on by design)."""
    return thread.name.startswith(THREAD_NAME_PREFIX)


def thread_purpose(thread: threading.Thread) -> Purpose:
    """What a library thread is for, read from its name."""
    rest = thread.name.removeprefix(THREAD_NAME_PREFIX)
    if "-default-executor" in rest:
        return "loop-default-executor"
    for purpose in ("thread-sensitive-context", "thread-sensitive", "loop"):
        if rest.startswith(purpose + "-"):
            return purpose
    return "other"


@dataclass(frozen=True)
class BridgeThread:
    """A thread the library started, and the sync call it runs now, if any."""

    name: str
    ident: int | None
    purpose: Purpose
    running: str | None
    thread: threading.Thread = field(repr=False, compare=False)


@dataclass(frozen=True)
class BridgeWait:
    """Something blocked on a bridge.

    ``kind`` is ``"async_to_sync"`` for a thread blocked until a coroutine on
    ``loop`` finishes (``task`` is that coroutine's task), or
    ``"thread_sensitive"`` for a task on ``loop`` awaiting a thread-sensitive
    sync call that is queued on, or running on, ``thread_name``. Such a call
    is ``"returning"`` once its function has returned on that thread and its
    result waits for ``loop`` to hand it to the task: it no longer holds the
    thread.

    ``call`` is an opaque object standing for the call in flight (the same
    object for as long as that call is pending, never shared with another
    one), for telling two looks at one call from looks at two calls.
    """

    kind: Literal["async_to_sync", "thread_sensitive"]
    target: str
    thread_name: str | None
    thread_ident: int | None
    loop: asyncio.AbstractEventLoop | None = field(compare=False)
    task: asyncio.Task[object] | None = field(compare=False)
    state: Literal["queued", "running", "returning", "waiting"]
    call: object = field(default=None, compare=False, repr=False)

    def format(self) -> str:
        """One line in plain words."""
        if self.kind == "async_to_sync":
            return (
                f"thread {self.thread_name!r} is blocked in async_to_sync"
                f"({self.target}) until its coroutine finishes on {self.loop!r}"
            )
        task = self.task.get_name() if self.task is not None else "a callback"
        where = (
            f"thread {self.thread_name!r}"
            if self.thread_name is not None
            else "an executor"
        )
        if self.state == "returning":
            return (
                f"{task} on {self.loop!r} awaits thread-sensitive sync_to_async"
                f"({self.target}), which has returned on {where}; its result "
                f"waits for the loop to deliver it"
            )
        return (
            f"{task} on {self.loop!r} awaits thread-sensitive sync_to_async"
            f"({self.target}), {self.state} on {where}"
        )


@dataclass(frozen=True)
class BridgeSnapshot:
    """The library's threads and the waits in progress, at one moment."""

    threads: tuple[BridgeThread, ...]
    waits: tuple[BridgeWait, ...]

    def format(self) -> str:
        """A readable report, one line per thread and per wait."""
        lines = ["asgiref_core bridge threads:"]
        lines += [
            f"  {t.name} ({t.purpose})"
            + (f": running {t.running}" if t.running else ": idle")
            for t in self.threads
        ] or ["  (none)"]
        lines.append("asgiref_core bridge waits:")
        lines += [f"  {w.format()}" for w in self.waits] or ["  (none)"]
        return "\n".join(lines)


def library_threads() -> list[BridgeThread]:
    """The live threads asgiref_core started, with what each runs now."""
    workers: dict[int | None, SyncWorker] = {w.thread.ident: w for w in live_workers()}
    found = []
    for thread in threading.enumerate():
        if not is_library_thread(thread):
            continue
        worker = workers.get(thread.ident)
        current = None if worker is None else worker.current
        running = None
        if current is not None:
            func = getattr(current, "func", current)
            running = describe_callable(func)
        found.append(
            BridgeThread(
                name=thread.name,
                ident=thread.ident,
                purpose=thread_purpose(thread),
                running=running,
                thread=thread,
            )
        )
    return found


def pending_waits() -> list[BridgeWait]:
    """Threads blocked in ``async_to_sync`` and tasks awaiting thread-sensitive
    calls, right now."""
    threads = {t.ident: t for t in threading.enumerate()}
    waits = []
    for ident, executor in list(blocked_in_async_to_sync.items()):
        thread = threads.get(ident)
        waits.append(
            BridgeWait(
                kind="async_to_sync",
                target=describe_callable(executor.target),
                thread_name=None if thread is None else thread.name,
                thread_ident=ident,
                loop=executor.loop,
                task=executor.task,
                state="waiting",
            )
        )
    for call in list(pending_thread_sensitive.values()):
        # Read ``returned`` before ``thread``: both are written on the worker,
        # ``thread`` first, so a call is never seen returned before running.
        returned = call.returned
        where = call.thread if call.thread is not None else call.queued_on
        on_thread = where if isinstance(where, threading.Thread) else None
        state: Literal["queued", "running", "returning"] = "queued"
        if call.thread is not None:
            state = "returning" if returned else "running"
        waits.append(
            BridgeWait(
                kind="thread_sensitive",
                target=call.describe(),
                thread_name=None if on_thread is None else on_thread.name,
                thread_ident=None if on_thread is None else on_thread.ident,
                loop=call.loop,
                task=call.task,
                state=state,
                call=call,
            )
        )
    return waits


def snapshot() -> BridgeSnapshot:
    """Threads and waits together, read as close to one moment as possible."""
    return BridgeSnapshot(tuple(library_threads()), tuple(pending_waits()))
