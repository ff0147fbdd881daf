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
itself waits on first: its own task, then the tasks that one awaits. What
the report is about (loops, tasks, communicators) is gathered by
:mod:`pytest_asgiref._hangs_inputs`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from types import CoroutineType, FrameType, GeneratorType
from typing import Any, Final, TypeVar

import pytest

from asgiref_core.introspection import BridgeThread, BridgeWait, library_threads
from asgiref_core.testing import ApplicationCommunicator
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
from pytest_asgiref._hangs_inputs import (
    MAX_FRAMES,
    ReportInputs,
    communicators_in,
    natural,
    report_inputs,
    report_loops,
    unread,
)

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
_THREAD_FRAMES: Final = 14
_MAX_THREADS: Final = 20
_MAX_COMMUNICATORS: Final = 10
_TRANSCRIPT_LINES: Final = 20
_MAX_BRIDGE_THREADS: Final = 20
_MAX_BRIDGE_WAITS: Final = 20
_MAX_POSSIBLE: Final = 10
_INDENT: Final = "  "


_T = TypeVar("_T")


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
            lines.append(unread(name, error))
    return "\n".join(lines)


# -- pending tasks -----------------------------------------------------------------


def _task_order(
    test_tasks: list[asyncio.Task[Any]],
) -> Callable[[asyncio.Task[Any]], tuple[int, list[Any]]]:
    """A sort key: the test's tasks in their order, then the rest by name."""
    rank = {id(task): index for index, task in enumerate(test_tasks)}
    last = len(rank)
    return lambda task: (rank.get(id(task), last), natural(task.get_name()))


def _tasks_section(inputs: ReportInputs, scene: Scene) -> list[str]:
    lines: list[str] = []
    order = _task_order(inputs.test_tasks)
    loops = [pair for pair in report_loops(scene, inputs.loops) if _open(pair)]
    shown, left_out = _capped(loops, _MAX_LOOPS)
    for label, loop in shown:
        try:
            lines += _loop_tasks(label, loop, scene, order)
        except Exception as error:  # the loop closed or changed while read
            lines.append(unread(f"tasks on {label}{describe_loop(loop, scene)}", error))
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
            lines.append(f"{_INDENT}" + unread(f"task {task.get_name()!r}", error))
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
    frames = coroutine_frames(coroutine, MAX_FRAMES)
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
        key=lambda pair: (pair[0] != test_ident, natural(scene.thread_name(pair[0])))
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
            lines.append(f"{_INDENT}{label}: " + unread("communicator", error))
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
        key=lambda bridge: (bridge.running is None, natural(bridge.name)),
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


# -- the whole report ------------------------------------------------------------


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
            lines.append(unread("deadlocks", error))
    if deadlock is not None:
        lines.append(deadlock.format())
    inputs = report_inputs(item, thread, scene)
    lines += inputs.notes
    lines.append(build_report(inputs, scene, deadlock))
    return "\n".join(lines)
