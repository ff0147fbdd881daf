"""Which threads live on by design, and what a busy bridge thread is doing.

asgiref_core keeps some threads for the whole process and lends them out:
the process-wide thread-sensitive executor, idle pools of
``ThreadSensitiveContext`` threads, of pooled WSGI workers and of loop
threads for ``async_to_sync``. A library thread *resting* in one of those
places is no leak, however new. One that is still lent out after a test
(a context never exited, a sync call still running, a loop thread whose
``async_to_sync`` never returned) is, and so is the event loop thread of an
``AsgiToWsgi`` adapter that was not closed. The verdict comes from the
library's own bookkeeping, read without locks: a snapshot, as good as the
moment it is taken.
"""

from __future__ import annotations

import asyncio
import fnmatch
import sys
import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from asgiref_core import _workers
from asgiref_core._workers import LoopRunner, SyncWorker
from asgiref_core.introspection import (
    THREAD_NAME_PREFIX,
    library_threads,
    pending_waits,
    thread_purpose,
)
from pytest_asgiref._portal import PORTAL_THREAD_NAME
from pytest_asgiref._threads_tracking import StartRecord

__all__ = [
    "active_library_threads",
    "baseline_threads",
    "executor_threads",
    "foreign_long_lived",
    "library_loops",
    "library_role",
    "suspect",
]

_DEFAULT_EXECUTOR = "-default-executor"


def _resting_workers() -> set[SyncWorker]:
    pooled = {*_workers._idle_context_workers, *_workers._idle_call_workers}
    process_wide = _workers._process_worker
    if process_wide is not None:
        pooled.add(process_wide)
    return {worker for worker in pooled if worker.idle()}


def _runners() -> dict[threading.Thread, LoopRunner]:
    return {runner.thread: runner for runner in list(_workers.runner_by_loop.values())}


def active_library_threads(
    threads: Iterable[threading.Thread],
) -> set[threading.Thread]:
    """The library threads among ``threads`` that are not resting in a pool.

    A loop thread's default executor threads rest while their loop thread
    runs; a retired or stopped loop thread (no longer in the library's
    books) is active until it ends.
    """
    library = [t for t in threads if t.name.startswith(THREAD_NAME_PREFIX)]
    if not library:
        return set()
    workers = {worker.thread: worker for worker in _workers.live_workers()}
    resting_workers = _resting_workers()
    runners = _runners()
    idle_runners = set(_workers._idle_runners)
    alive_names = {t.name for t in library if t.is_alive()}
    active = set()
    for thread in library:
        if not thread.is_alive():
            continue
        worker = workers.get(thread)
        if worker is not None:
            if worker not in resting_workers:
                active.add(thread)
            continue
        runner = runners.get(thread)
        if runner is not None:
            if runner not in idle_runners or runner.dead:
                active.add(thread)
            continue
        if _DEFAULT_EXECUTOR in thread.name:
            owner = thread.name.partition(_DEFAULT_EXECUTOR)[0]
            if owner not in alive_names:
                active.add(thread)
            continue
        # Loop threads the library forgot (retired) and adapter threads.
        active.add(thread)
    return active


def library_role(thread: threading.Thread) -> str:
    """What an active library thread is for, and why it is still busy."""
    purpose = thread_purpose(thread)
    running = next((t.running for t in library_threads() if t.thread is thread), None)
    still = f", still running {running}" if running else ""
    if purpose == "thread-sensitive":
        return f"asgiref_core's process-wide thread-sensitive executor{still}"
    if purpose == "thread-sensitive-context":
        if running:
            return f"the thread of a ThreadSensitiveContext{still}"
        return (
            "the thread of a ThreadSensitiveContext that was never exited, "
            "which holds the thread until it is"
        )
    if purpose == "loop-default-executor":
        owner = thread.name.partition(_DEFAULT_EXECUTOR)[0]
        return f"the default executor of asgiref_core's loop thread {owner!r}"
    if purpose == "loop":
        return _loop_role(thread)
    rest = thread.name.removeprefix(THREAD_NAME_PREFIX)
    if rest.startswith("asgi-to-wsgi-"):
        return (
            "the event loop thread of an asgiref_core.wsgi.AsgiToWsgi adapter "
            "that was not closed (call its close(), or use it in a with block)"
        )
    if rest.startswith("wsgi-"):
        return f"a pooled WSGI worker of asgiref_core{still}"
    return f"an asgiref_core thread{still}"


def _loop_role(thread: threading.Thread) -> str:
    runner = _runners().get(thread)
    if runner is None:
        return (
            "an asgiref_core loop thread retired after an interrupted "
            "async_to_sync call, whose coroutine has not finished"
        )
    if runner.executor is not None:
        waits = [
            wait.format()
            for wait in pending_waits()
            if wait.kind == "async_to_sync" and wait.loop is runner.loop
        ]
        detail = f" ({waits[0]})" if waits else ""
        return (
            f"an asgiref_core loop thread lent to an async_to_sync call that "
            f"has not returned{detail}"
        )
    return (
        "an asgiref_core loop thread held by an AsyncSingleThreadContext that "
        "was not exited"
    )


def library_loops() -> list[asyncio.AbstractEventLoop]:
    """The event loops of the library's loop threads."""
    return list(_workers.runner_by_loop)


def executor_threads(loop: asyncio.AbstractEventLoop) -> set[threading.Thread]:
    """The threads of ``loop``'s default executor, if it has one yet."""
    executor: Any = getattr(loop, "_default_executor", None)
    threads = getattr(executor, "_threads", None)
    if not isinstance(threads, set):
        return set()
    return {t for t in threads if isinstance(t, threading.Thread)}


def foreign_long_lived() -> set[threading.Thread]:
    """Long-lived threads of the real asgiref, when something imported it.

    Django and Channels call asgiref itself, whose thread-sensitive
    ``sync_to_async`` calls share one process-wide executor, started on
    first use and kept for good.
    """
    sync = sys.modules.get("asgiref.sync")
    executor = getattr(
        getattr(sync, "SyncToAsync", None), "single_thread_executor", None
    )
    threads = getattr(executor, "_threads", None)
    if not isinstance(threads, set):
        return set()
    return {t for t in threads if isinstance(t, threading.Thread)}


def baseline_threads(
    loops: Iterable[asyncio.AbstractEventLoop],
) -> set[threading.Thread]:
    """Threads that are no leak however new.

    The portal, the real asgiref's process-wide executor, and the default
    executors of the open ``loops``.
    """
    kept = {t for t in threading.enumerate() if t.name == PORTAL_THREAD_NAME}
    kept |= foreign_long_lived()
    for loop in loops:
        if not loop.is_closed():
            kept |= executor_threads(loop)
    return kept


def suspect(
    thread: threading.Thread,
    baseline: set[threading.Thread],
    allowed: Sequence[str],
    record: StartRecord | None,
    held: Collection[threading.Thread] = (),
) -> bool:
    """Whether a thread new (or newly lent out) since the test began may be
    the test's leak.

    Not if it is in ``baseline`` or its name is ``allowed``. A library thread
    is not if something wider than the test that has not ended holds it
    (``held``); who started it once says nothing, as pooled threads are
    reused. Another thread is not if an import started it (module state), or
    something wider than the test that has not ended yet.
    """
    if thread in baseline or thread is threading.main_thread():
        return False
    if type(thread).__name__ == "_DummyThread":
        # A thread not started by threading (a C extension's): it cannot be
        # joined, and its start was never seen.
        return False
    if any(fnmatch.fnmatchcase(thread.name, pattern) for pattern in allowed):
        return False
    if thread.name.startswith(THREAD_NAME_PREFIX):
        return thread not in held
    if record is None:
        return True
    if record.during_import:
        return False
    owner = record.phase.owner if record.phase is not None else None
    return owner is None or owner.finished()
