"""What a hang report is about: the stuck test's loops, tasks and communicators.

Gathered from another thread while the test is stuck, so nothing here calls
into the test's objects: locals are told apart by their type alone (a lazy
object or a mock could run anything, or raise, on attribute access). Each
part is read on its own; one that fails is noted, and the others are kept.
The test's own task comes first, then the tasks it awaits, directly or not.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, TypeVar, cast

import pytest

from asgiref_core.testing import ApplicationCommunicator
from pytest_asgiref._blocking import BlockingCommunicator
from pytest_asgiref._hangs_cycles import Scene
from pytest_asgiref._hangs_frames import coroutine_frames, innermost_frames
from pytest_asgiref._portal import PORTAL_THREAD_NAME
from pytest_asgiref._serving import Serving

__all__ = [
    "MAX_FRAMES",
    "ReportInputs",
    "communicators_in",
    "natural",
    "report_inputs",
    "report_loops",
    "unread",
]

#: Frames shown of a coroutine's stack (and searched in it).
MAX_FRAMES: Final = 25

# Frames of the test's thread searched for communicators it holds.
_TEST_FRAMES: Final = 40

# Tasks whose frames are searched for communicators, the test's own first.
_SCANNED_TASKS: Final = 200

# Tasks followed from the test's own, through what each awaits.
_MAX_AWAITED: Final = 1_000

# The frame in which a thread runs its loop for a task (an async test's).
_RUN_UNTIL_COMPLETE: Final = asyncio.BaseEventLoop.run_until_complete.__code__

# Task names sort by their numbers: Task-2 before Task-10.
_DIGITS: Final = re.compile(r"(\d+)")

# The future asyncio.gather() returns, whose ``_children`` are its tasks.
_GATHER: Final[object] = getattr(asyncio.tasks, "_GatheringFuture", None)

_T = TypeVar("_T")


@dataclass(slots=True)
class ReportInputs:
    """What the report is about: the test's thread, loops and communicators."""

    test_thread: threading.Thread
    #: (label, loop), the test's own loop first; a label is a prefix such as
    #: ``"the portal's "`` for :func:`describe_loop`'s text.
    loops: list[tuple[str, asyncio.AbstractEventLoop]]
    #: (label, communicator), the fixtures' first.
    communicators: list[tuple[str, ApplicationCommunicator]]
    #: The tasks the test waits on, listed first: its own task (an async
    #: test's), then the tasks awaited from there, directly or not.
    test_tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    #: What could not be read while gathering the above, one line each.
    notes: list[str] = field(default_factory=list)


def report_loops(
    scene: Scene,
    own: Iterable[tuple[str, asyncio.AbstractEventLoop | None]],
) -> list[tuple[str, asyncio.AbstractEventLoop]]:
    """The loops to list tasks for: the test's own, then every loop a thread
    or a bridge call waits on."""
    found: list[tuple[str, asyncio.AbstractEventLoop]] = []
    seen: set[int] = set()

    def add(label: str, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is not None and id(loop) not in seen:
            seen.add(id(loop))
            found.append((label, loop))

    for label, loop in own:
        add(label, loop)
    for wait in scene.waits.values():
        if wait.kind != "idle loop":
            add(_loop_label(wait.loop, scene), wait.loop)
    for bridge in scene.bridge_waits:
        add(_loop_label(bridge.loop, scene), bridge.loop)
    return found


def _loop_label(loop: asyncio.AbstractEventLoop | None, scene: Scene) -> str:
    """A prefix for :func:`describe_loop`: ``"the portal's "`` or nothing."""
    ident = scene.loop_threads.get(loop) if loop is not None else None
    thread = scene.threads.get(ident) if ident is not None else None
    if thread is not None and thread.name == PORTAL_THREAD_NAME:
        return "the portal's "
    return ""


def _communicator_of(value: object) -> ApplicationCommunicator | None:
    """``value`` if it is a communicator, a blocking twin's communicator, or
    None; decided by type alone, so nothing of ``value`` runs."""
    kind = type(value)
    if issubclass(kind, ApplicationCommunicator):
        return cast(ApplicationCommunicator, value)
    if issubclass(kind, BlockingCommunicator):
        inner = inspect.getattr_static(value, "communicator", None)
        if issubclass(type(inner), ApplicationCommunicator):
            return cast(ApplicationCommunicator, inner)
    return None


def communicators_in(
    frames: Iterable[FrameType], label: str
) -> Iterator[tuple[str, ApplicationCommunicator]]:
    """Communicators held by the locals of ``frames`` (a blocking twin's
    ``.communicator`` included)."""
    for frame in frames:
        try:
            values = list(frame.f_locals.values())
        except Exception:  # torn down while read
            continue
        for value in values:
            communicator = _communicator_of(value)
            if communicator is not None:
                yield label, communicator


def natural(name: str) -> list[Any]:
    """A sort key that puts ``Task-2`` before ``Task-10``."""
    # Splitting on digit runs alternates text and digits, so the items at
    # one position always have one type and compare.
    parts = _DIGITS.split(name)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


def unread(what: str, error: Exception) -> str:
    return f"({what}: could not be read: {type(error).__name__}: {error})"


def _serving_of(item: pytest.Item) -> Serving | None:
    """The test's served application, if its fixtures already set it up
    (never set up here: a report must not run fixtures)."""
    funcargs = getattr(item, "funcargs", None)
    serving = funcargs.get("_asgi_serving") if isinstance(funcargs, dict) else None
    return serving if isinstance(serving, Serving) else None


def _own_loops(
    item: pytest.Item, thread: threading.Thread, scene: Scene
) -> list[tuple[str, asyncio.AbstractEventLoop | None]]:
    loops: list[tuple[str, asyncio.AbstractEventLoop | None]] = [
        ("the test's ", loop)
        for loop, ident in scene.loop_threads.items()
        if ident == thread.ident
    ]
    serving = _serving_of(item)
    if serving is not None:
        label = "the portal's " if serving.loop.blocking else "the test's "
        loops.append((label, serving.loop.loop))
    return loops


def _own_task(frame: FrameType | None) -> asyncio.Task[Any] | None:
    """The task the test's thread runs its loop for (an async test's)."""
    while frame is not None:
        if frame.f_code is _RUN_UNTIL_COMPLETE:
            try:
                task = frame.f_locals.get("future")
            except Exception:  # torn down while read
                return None
            return task if issubclass(type(task), asyncio.Task) else None
        frame = frame.f_back
    return None


def _awaited_by(task: asyncio.Task[Any]) -> list[asyncio.Task[Any]]:
    """The tasks ``task`` awaits: directly, through ``asyncio.gather``, or
    as an application behind a communicator."""
    if task.done():
        return []
    found: list[asyncio.Task[Any]] = []
    waiter = getattr(task, "_fut_waiter", None)
    if issubclass(type(waiter), asyncio.Task):
        found.append(cast("asyncio.Task[Any]", waiter))
    # asyncio.gather's own future only: a user's future could run anything.
    children = getattr(waiter, "_children", None) if type(waiter) is _GATHER else None
    if type(children) is list:
        found += [child for child in children if issubclass(type(child), asyncio.Task)]
    for frame in coroutine_frames(task.get_coro(), MAX_FRAMES):
        try:
            holder = frame.f_locals.get("self")
        except Exception:  # torn down while read
            continue
        if issubclass(type(holder), ApplicationCommunicator):
            app = inspect.getattr_static(holder, "_future", None)
            if issubclass(type(app), asyncio.Task):
                found.append(cast("asyncio.Task[Any]", app))
    return found


def _test_tasks(thread: threading.Thread, scene: Scene) -> list[asyncio.Task[Any]]:
    """The test's own task, then every task it waits on, directly or not
    (by name); for a sync test, the tasks its thread waits on."""
    own = _own_task(scene.frames.get(thread.ident or 0))
    roots = [] if own is None else [own]
    wait = scene.waits.get(thread.ident or 0)
    if wait is not None and wait.task is not None:
        roots.append(wait.task)
    found: list[asyncio.Task[Any]] = []
    seen: set[int] = set()
    queue = deque(roots)
    while queue and len(found) < _MAX_AWAITED:
        task = queue.popleft()
        if id(task) not in seen:
            seen.add(id(task))
            found.append(task)
            queue += _awaited_by(task)
    head = found[:1] if own is not None else []
    rest = found[len(head) :]
    return head + sorted(rest, key=lambda task: natural(task.get_name()))


def _attempt(notes: list[str], what: str, read: Callable[[], _T], default: _T) -> _T:
    """``read()``, or ``default`` with a note saying why it failed."""
    try:
        return read()
    except Exception as error:  # the test moved on while we looked
        notes.append(unread(what, error))
        return default


def report_inputs(
    item: pytest.Item, thread: threading.Thread, scene: Scene
) -> ReportInputs:
    """What the report is about; each part read on its own, so that one that
    fails leaves the others."""
    notes: list[str] = []
    own: list[tuple[str, asyncio.AbstractEventLoop | None]] = _attempt(
        notes, "the test's loops", lambda: _own_loops(item, thread, scene), []
    )
    loops: list[tuple[str, asyncio.AbstractEventLoop]] = _attempt(
        notes, "event loops", lambda: report_loops(scene, own), []
    )
    test_tasks: list[asyncio.Task[Any]] = _attempt(
        notes, "the test's tasks", lambda: _test_tasks(thread, scene), []
    )
    communicators: list[tuple[str, ApplicationCommunicator]] = []

    def opened() -> list[tuple[str, ApplicationCommunicator]]:
        serving = _serving_of(item)
        return [] if serving is None else list(serving.opened)

    def held() -> list[tuple[str, ApplicationCommunicator]]:
        frame = scene.frames.get(thread.ident or 0)
        frames = innermost_frames(frame, _TEST_FRAMES)
        return list(communicators_in(frames, "held by the test"))

    communicators += _attempt(notes, "the fixtures' communicators", opened, [])
    communicators += _attempt(notes, "the test's communicators", held, [])
    tasks: list[asyncio.Task[Any]] = _attempt(
        notes, "tasks", lambda: _tasks_to_scan(loops, test_tasks), []
    )
    for task in tasks:
        label = f"held by task {task.get_name()!r}"
        try:
            communicators += communicators_in(coroutine_frames(task.get_coro()), label)
        except Exception as error:  # finished while read
            notes.append(unread(label, error))
    return ReportInputs(thread, loops, communicators, test_tasks, notes)


def _tasks_to_scan(
    loops: list[tuple[str, asyncio.AbstractEventLoop]],
    test_tasks: list[asyncio.Task[Any]],
) -> list[asyncio.Task[Any]]:
    """The tasks searched for communicators: the test's first, then the
    others of the report's loops, up to a limit."""
    found = list(test_tasks[:_SCANNED_TASKS])
    seen = {id(task) for task in found}
    for _, loop in loops:
        if len(found) >= _SCANNED_TASKS or loop.is_closed():
            continue
        others = sorted(asyncio.all_tasks(loop), key=lambda t: natural(t.get_name()))
        for task in others:
            if id(task) not in seen and len(found) < _SCANNED_TASKS:
                seen.add(id(task))
                found.append(task)
    return found
