"""Where each thread was started, and what the run was doing at the time.

While the leak check is on, :class:`StartTracker` wraps
``threading.Thread.start``: each start records a short stack (file, line and
function names only; source lines are read if a report ever needs them), the
thread that started it and the :class:`Phase` of the test then under way.
Nothing else is paid per thread; per test, only a phase object for each of
its phases. How stacks are shown is in :mod:`pytest_asgiref._threads_findings`,
which loads when there is something to show.

A phase may belong to an :class:`Owner`: something that outlives the test
it was made in (a fixture of wider scope, a lifespan shared by a module).
Threads started in that phase are checked when the owner ends, not when the
test does.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final

from asgiref_core._bridge_state import THREAD_NAME_PREFIX
from pytest_asgiref._portal import PORTAL_THREAD_NAME

__all__ = [
    "STACK_LIMIT",
    "Owner",
    "Phase",
    "StartRecord",
    "StartTracker",
    "thread_description",
]

#: Frames kept of a thread's start stack and shown of what it runs now.
STACK_LIMIT: Final = 12


def _is_start_wrapper(frame: FrameType) -> bool:
    """Whether ``frame`` runs a tracker's ``Thread.start`` wrapper."""
    code = frame.f_code
    return code.co_name == "start" and code.co_filename == __file__


@dataclass(eq=False, slots=True)
class Owner:
    """Something wider than a test, owning the threads and tasks it started."""

    description: str
    finished: Callable[[], bool]
    # Tasks created while it was being set up, pending at the time.
    tasks: weakref.WeakSet[asyncio.Task[Any]] = field(default_factory=weakref.WeakSet)
    # asgiref_core's pooled threads it took out of their pools while it was
    # being set up and still holds: who started a pooled thread says nothing
    # about who holds it now.
    threads: weakref.WeakSet[threading.Thread] = field(default_factory=weakref.WeakSet)


@dataclass(eq=False, slots=True)
class Phase:
    """What the run was doing: ``"the test body of t.py::test_x"`` and the like."""

    description: str
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class StartRecord:
    """How one thread came to be started."""

    phase: Phase | None
    stack: traceback.StackSummary  # innermost frame first
    starter: str
    during_import: bool


def thread_description(thread: threading.Thread) -> str:
    """``thread 'name'``, with what the thread is for when the name says."""
    if thread.name == PORTAL_THREAD_NAME:
        return f"thread {thread.name!r} (the portal's event loop, for sync tests)"
    if not thread.name.startswith(THREAD_NAME_PREFIX):
        return f"thread {thread.name!r}"
    # Imported here, for the library's threads only: the plugin loads, and
    # records plain threads, without asgiref_core's bridge modules.
    from asgiref_core.introspection import thread_purpose  # noqa: PLC0415

    return f"thread {thread.name!r} (asgiref_core, {thread_purpose(thread)})"


def _starter() -> str:
    """The starting thread, and the bridge call it runs, if any."""
    described = thread_description(threading.current_thread())
    bridge_state = sys.modules.get("asgiref_core._bridge_state")
    if bridge_state is None:  # no bridge was ever called
        return described
    call = bridge_state.thread_state.call
    if call is not None:
        described += f", running sync_to_async({call.describe()})"
    return described


def _in_import(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import (a module's top-level code)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class StartTracker:
    """Records every ``Thread.start`` while installed."""

    def __init__(self) -> None:
        self.records: weakref.WeakKeyDictionary[threading.Thread, StartRecord] = (
            weakref.WeakKeyDictionary()
        )
        # Innermost last; read from any thread, written by the main thread.
        self.phases: list[Phase] = []
        # Threads start from any thread; the records are read from the main one.
        self._lock = threading.Lock()
        self._original: Callable[[threading.Thread], None] | None = None
        self._wrapper: Callable[[threading.Thread], None] | None = None

    @property
    def phase(self) -> Phase | None:
        try:
            return self.phases[-1]
        except IndexError:  # emptied by the main thread meanwhile
            return None

    def install(self) -> None:
        """Wrap ``threading.Thread.start``; :meth:`uninstall` restores it."""
        if self._original is not None:
            return
        original = threading.Thread.start
        record = self._record

        def start(thread: threading.Thread) -> None:
            record(thread)
            original(thread)

        start.__name__ = original.__name__
        start.__qualname__ = original.__qualname__
        start.__doc__ = original.__doc__
        self._original = original
        self._wrapper = start
        threading.Thread.start = start  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        original = self._original
        if original is None:
            return
        # Another wrapper installed after ours keeps working: put the method
        # back only if ours is still the one in place.
        if threading.Thread.start is self._wrapper:
            threading.Thread.start = original  # type: ignore[method-assign,assignment]
        self._original = self._wrapper = None

    def _record(self, thread: threading.Thread) -> None:
        try:
            caller: FrameType | None = sys._getframe(2)
            # Past other trackers' wrappers (a pytester run inside a run).
            while caller is not None and _is_start_wrapper(caller):
                caller = caller.f_back
            stack = traceback.StackSummary.extract(
                traceback.walk_stack(caller), limit=STACK_LIMIT, lookup_lines=False
            )
            record = StartRecord(
                phase=self.phase,
                stack=stack,
                starter=_starter(),
                during_import=_in_import(caller),
            )
            with self._lock:
                self.records[thread] = record
        except Exception:  # never break the thread being started
            return

    def snapshot(self) -> list[tuple[threading.Thread, StartRecord]]:
        """The records of the threads still referenced, safe from any thread."""
        with self._lock:
            return list(self.records.items())
