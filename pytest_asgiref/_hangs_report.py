"""The hang report: what a stuck test was waiting for, in plain text.

Built from another thread while the test is stuck (or from pytest-timeout's
handler), before anything is cancelled, so the stacks show where things
hung. Sections: the pending tasks of the loops involved, each with its
coroutine stack; the threads that wait, and where; each communicator's
recent messages; the bridges' threads and waits from
:mod:`asgiref_core.introspection`, with the call sites; and the possible
deadlocks. Reading a section can fail while the test moves on; that section
then says so and the rest is still shown.

The report runs on a thread that is not the test's, so it never calls into
the test's objects: locals are told apart by their type alone (a lazy
object or a mock could run anything, or raise, on attribute access). Every
section is capped, with what was left out counted, and lists what the test
itself waits on first: its own task, then the tasks that one awaits.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import CoroutineType, FrameType, GeneratorType
from typing import Any, Final, TypeVar, cast

import pytest

from asgiref_core.introspection import BridgeThread, BridgeWait, library_threads
from asgiref_core.testing import ApplicationCommunicator
from pytest_asgiref._blocking import BlockingCommunicator
from pytest_asgiref._hangs_cycles import (
    Deadlock,
    Scene,
    describe_loop,
    find_deadlock,
    look,
    possible_deadlocks,
    where,
)
from pytest_asgiref._hangs_frames import (
    async_to_sync_site,
    call_site,
    coroutine_frames,
    format_frame,
    innermost_frames,
    sync_to_async_site,
)
from pytest_asgiref._portal import PORTAL_THREAD_NAME
from pytest_asgiref._serving import Serving

__all__ = [
    "ReportInputs",
    "build_report",
    "communicators_in",
    "hang_report",
    "report_loops",
]

# Enough to see what is going on, not so much that the failure drowns.
_MAX_LOOPS: Final = 8
_MAX_TASKS: Final = 20  # per loop
_MAX_FRAMES: Final = 25
_THREAD_FRAMES: Final = 14
_MAX_THREADS: Final = 20
_MAX_COMMUNICATORS: Final = 10
_TRANSCRIPT_LINES: Final = 20
_MAX_BRIDGE_THREADS: Final = 20
_MAX_BRIDGE_WAITS: Final = 20
_MAX_POSSIBLE: Final = 10
# Frames of the test's thread searched for communicators it holds.
_TEST_FRAMES: Final = 40
# Tasks whose frames are searched for communicators, the test's own first.
_SCANNED_TASKS: Final = 200
# Tasks followed from the test's own, through what each awaits.
_MAX_AWAITED: Final = 1_000
_INDENT: Final = "  "

_RUN_UNTIL_COMPLETE: Final = asyncio.BaseEventLoop.run_until_complete.__code__
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


def _natural(name: str) -> list[Any]:
    """A sort key that puts ``Task-2`` before ``Task-10``."""
    # Splitting on digit runs alternates text and digits, so the items at
    # one position always have one type and compare.
    parts = _DIGITS.split(name)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


def _capped(items: list[_T], limit: int) -> tuple[list[_T], int]:
    """The first ``limit`` items and how many were left out."""
    return items[:limit], max(len(items) - limit, 0)


def _more(count: int, what: str = "", indent: str = _INDENT) -> list[str]:
    """``... and N more`` as a line, or nothing when nothing was left out."""
    return [f"{indent}... and {count} more{what}"] if count else []


def build_report(
    inputs: ReportInputs, scene: Scene, deadlock: Deadlock | None = None
) -> str:
    """The report's sections, in order, as one text (``deadlock``, already
    described, is not suggested again as a possible one)."""
    sections: list[tuple[str, Callable[[], list[str]]]] = [
        ("pending tasks", lambda: _tasks_section(inputs, scene)),
        ("waiting threads", lambda: _threads_section(inputs, scene)),
        ("communicators", lambda: _communicators_section(inputs)),
        ("bridges", lambda: _bridges_section(inputs, scene)),
        ("possible deadlocks", lambda: _possible_section(scene, deadlock)),
    ]
    lines: list[str] = []
    for name, section in sections:
        try:
            lines += section()
        except Exception as error:  # the process moved on under our feet
            lines.append(_unread(name, error))
    return "\n".join(lines)


def _unread(what: str, error: Exception) -> str:
    return f"({what}: could not be read: {type(error).__name__}: {error})"


# -- pending tasks -----------------------------------------------------------------


def _task_order(
    test_tasks: list[asyncio.Task[Any]],
) -> Callable[[asyncio.Task[Any]], tuple[int, list[Any]]]:
    """A sort key: the test's tasks in their order, then the rest by name."""
    rank = {id(task): index for index, task in enumerate(test_tasks)}
    last = len(rank)
    return lambda task: (rank.get(id(task), last), _natural(task.get_name()))


def _tasks_section(inputs: ReportInputs, scene: Scene) -> list[str]:
    lines: list[str] = []
    order = _task_order(inputs.test_tasks)
    loops = [pair for pair in report_loops(scene, inputs.loops) if _open(pair)]
    shown, left_out = _capped(loops, _MAX_LOOPS)
    for label, loop in shown:
        try:
            lines += _loop_tasks(label, loop, scene, order)
        except Exception as error:  # the loop closed or changed while read
            lines.append(
                _unread(f"tasks on {label}{describe_loop(loop, scene)}", error)
            )
    return lines + _more(left_out, " event loop(s)", "")


def _open(pair: tuple[str, asyncio.AbstractEventLoop]) -> bool:
    # A closed loop has no tasks to show; one that fails to answer is kept,
    # so that its section says why.
    loop = pair[1]
    try:
        return not loop.is_closed()
    except Exception:
        return True


def _loop_tasks(
    label: str,
    loop: asyncio.AbstractEventLoop,
    scene: Scene,
    order: Callable[[asyncio.Task[Any]], tuple[int, list[Any]]],
) -> list[str]:
    tasks = sorted(asyncio.all_tasks(loop), key=order)
    lines = [f"pending tasks on {label}{describe_loop(loop, scene)}: {len(tasks)}"]
    shown, left_out = _capped(tasks, _MAX_TASKS)
    # Many tasks stuck at the same place (a gather of one call) are listed
    # once with their stack, then by name.
    stacks: dict[tuple[tuple[str, int], ...], str] = {}
    for task in shown:
        try:
            lines += _task_lines(task, stacks)
        except Exception as error:  # finished while read
            lines.append(f"{_INDENT}" + _unread(f"task {task.get_name()!r}", error))
    return lines + _more(left_out)


def _task_lines(
    task: asyncio.Task[Any], stacks: dict[tuple[tuple[str, int], ...], str]
) -> list[str]:
    coroutine = task.get_coro()
    # By type: a custom awaitable's attributes could run anything.
    if type(coroutine) in (CoroutineType, GeneratorType):
        name = str(getattr(coroutine, "__qualname__", ""))
    else:
        name = type(coroutine).__qualname__
    head = f"{_INDENT}task {task.get_name()!r} running {name}"
    frames = coroutine_frames(coroutine, _MAX_FRAMES)
    if not frames:
        return [
            f"{head}:",
            f"{_INDENT * 2}(no coroutine frame: not started, or finishing)",
        ]
    stack = tuple((frame.f_code.co_filename, frame.f_lineno or 0) for frame in frames)
    same = stacks.get(stack)
    if same is not None:
        return [f"{head}: at the same place as task {same!r}"]
    stacks[stack] = task.get_name()
    lines = [f"{head}:"]
    for frame in frames:
        lines += format_frame(frame, _INDENT * 2)
    return lines


# -- waiting threads -----------------------------------------------------------------


def _threads_section(inputs: ReportInputs, scene: Scene) -> list[str]:
    lines = ["waiting threads:"]
    test_ident = inputs.test_thread.ident or 0
    waits = [pair for pair in scene.waits.items() if pair[1].kind != "idle loop"]
    waits.sort(
        key=lambda pair: (pair[0] != test_ident, _natural(scene.thread_name(pair[0])))
    )
    shown, left_out = _capped(waits, _MAX_THREADS)
    for ident, wait in shown:
        target = ""
        if wait.task is not None:
            target = f" for task {wait.task.get_name()!r}"
        if wait.loop is not None:
            target += f" on {describe_loop(wait.loop, scene)}"
        lines.append(
            f"{_INDENT}thread {scene.thread_name(ident)} {wait.describe()}"
            f"{target}{where(wait.site)}"
        )
    lines += _more(left_out, " waiting thread(s)")
    if not waits:
        lines.append(f"{_INDENT}(none)")
    frame = scene.frames.get(test_ident)
    if frame is not None:
        lines.append(
            f"the test's thread {inputs.test_thread.name!r} is at (innermost last):"
        )
        for each in _below_pytest(innermost_frames(frame, _THREAD_FRAMES)):
            lines += format_frame(each, _INDENT)
    return lines


def _below_pytest(frames: list[FrameType]) -> list[FrameType]:
    """The frames inside pytest's and pluggy's own, which say nothing here."""
    for index in range(len(frames) - 1, -1, -1):
        module = str(frames[index].f_globals.get("__name__", ""))
        if module.startswith(("_pytest.", "pluggy.")):
            return frames[index + 1 :]
    return frames


# -- communicators -----------------------------------------------------------------


def _communicators_section(inputs: ReportInputs) -> list[str]:
    lines = ["communicators (recent messages, oldest first):"]
    unique: list[tuple[str, ApplicationCommunicator]] = []
    seen: set[int] = set()
    for label, communicator in inputs.communicators:
        if id(communicator) not in seen:
            seen.add(id(communicator))
            unique.append((label, communicator))
    shown, left_out = _capped(unique, _MAX_COMMUNICATORS)
    for label, communicator in shown:
        try:
            lines.append(f"{_INDENT}{label}: {communicator!r}")
            lines += _transcript(communicator)
        except Exception as error:  # a subclass's repr, a message's repr
            lines.append(f"{_INDENT}{label}: " + _unread("communicator", error))
    lines += _more(left_out, " communicator(s)")
    if not unique:
        lines.append(f"{_INDENT}(none)")
    return lines


def _transcript(communicator: ApplicationCommunicator) -> list[str]:
    # The loop thread may append while we read; a retry gets a clean copy.
    for _ in range(5):
        try:
            text = communicator.transcript.format(indent=_INDENT * 2)
        except RuntimeError:
            continue
        lines = text.splitlines()
        left_out = max(len(lines) - _TRANSCRIPT_LINES, 0)
        if left_out:
            older = f"{_INDENT * 2}({left_out} older message(s) not shown)"
            return [older, *lines[left_out:]]
        return lines
    return [f"{_INDENT * 2}(the transcript kept changing while read)"]


# -- bridges ---------------------------------------------------------------------


def _bridges_section(inputs: ReportInputs, scene: Scene) -> list[str]:
    running_sites: dict[int | None, FrameType | None] = {}
    for wait in scene.bridge_waits:
        if wait.kind == "thread_sensitive" and wait.state == "running":
            site = None if wait.task is None else sync_to_async_site(wait.task)
            running_sites[wait.thread_ident] = site
    lines = ["asgiref_core bridge threads:"]
    threads = sorted(
        library_threads(),
        key=lambda bridge: (bridge.running is None, _natural(bridge.name)),
    )
    shown_threads, left_out = _capped(threads, _MAX_BRIDGE_THREADS)
    for bridge in shown_threads:
        lines.append(_bridge_thread_line(bridge, running_sites, scene))
    lines += _more(left_out, " bridge thread(s)")
    if not threads:
        lines.append(f"{_INDENT}(none)")
    lines.append("asgiref_core bridge waits:")
    waits = _test_first(inputs, scene.bridge_waits)
    shown_waits, left_out = _capped(waits, _MAX_BRIDGE_WAITS)
    for wait in shown_waits:
        if wait.kind == "async_to_sync":
            site = async_to_sync_site(scene.frames.get(wait.thread_ident or 0))
        else:
            site = None if wait.task is None else sync_to_async_site(wait.task)
        lines.append(f"{_INDENT}{wait.format()}{where(site)}")
    if left_out:
        states = Counter(wait.state for wait in waits[_MAX_BRIDGE_WAITS:])
        counts = ", ".join(f"{state}: {count}" for state, count in states.items())
        lines += _more(left_out, f" bridge wait(s) ({counts})")
    if not waits:
        lines.append(f"{_INDENT}(none)")
    return lines


def _test_first(inputs: ReportInputs, waits: list[BridgeWait]) -> list[BridgeWait]:
    """The bridge waits of the test's thread and tasks, then the others."""
    test_ident = inputs.test_thread.ident
    ours = {id(task) for task in inputs.test_tasks}

    def theirs(wait: BridgeWait) -> bool:
        if wait.kind == "async_to_sync":
            return wait.thread_ident != test_ident
        return wait.task is None or id(wait.task) not in ours

    return sorted(waits, key=theirs)


def _bridge_thread_line(
    bridge: BridgeThread,
    running_sites: dict[int | None, FrameType | None],
    scene: Scene,
) -> str:
    if bridge.running is None:
        return f"{_INDENT}{bridge.name} ({bridge.purpose}): idle"
    line = f"{_INDENT}{bridge.name} ({bridge.purpose}): running {bridge.running}"
    line += where(running_sites.get(bridge.ident))
    frame = call_site(scene.frames.get(bridge.ident or 0))
    if frame is not None:
        code = frame.f_code
        line += (
            f'; now at File "{code.co_filename}", line {frame.f_lineno}, '
            f"in {code.co_name}"
        )
    return line


def _possible_section(scene: Scene, deadlock: Deadlock | None) -> list[str]:
    found = possible_deadlocks(scene, deadlock)
    shown, left_out = _capped(found, _MAX_POSSIBLE)
    return shown + _more(left_out, " possible deadlock(s) like these", "")


# -- the test's part ---------------------------------------------------------------


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
    for frame in coroutine_frames(task.get_coro(), _MAX_FRAMES):
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
    return head + sorted(rest, key=lambda task: _natural(task.get_name()))


def _attempt(notes: list[str], what: str, read: Callable[[], _T], default: _T) -> _T:
    """``read()``, or ``default`` with a note saying why it failed."""
    try:
        return read()
    except Exception as error:  # the test moved on while we looked
        notes.append(_unread(what, error))
        return default


def _report_inputs(
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
            notes.append(_unread(label, error))
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
        others = sorted(asyncio.all_tasks(loop), key=lambda t: _natural(t.get_name()))
        for task in others:
            if id(task) not in seen and len(found) < _SCANNED_TASKS:
                seen.add(id(task))
                found.append(task)
    return found


def hang_report(
    item: pytest.Item,
    thread: threading.Thread,
    headline: str,
    scene: Scene | None = None,
    deadlock: Deadlock | None = None,
    *,
    search: bool = True,
) -> str:
    """The whole report on ``item``, whose ``thread`` is stuck: ``headline``,
    the deadlock if there is one, then the sections.

    ``deadlock`` is one already found; with ``search`` false, a caller that
    already searched the same ``scene`` and found none says so, and it is
    not searched again.
    """
    scene = scene or look()
    lines = [headline]
    if deadlock is None and search:
        try:
            deadlock = find_deadlock(scene, [thread], everywhere=True)
        except Exception as error:  # the process moved on under our feet
            lines.append(_unread("deadlocks", error))
    if deadlock is not None:
        lines.append(deadlock.format())
    inputs = _report_inputs(item, thread, scene)
    lines += inputs.notes
    lines.append(build_report(inputs, scene, deadlock))
    return "\n".join(lines)
