"""The hang report: what a stuck test was waiting for, in plain text.

Built from another thread while the test is stuck (or from pytest-timeout's
handler), before anything is cancelled, so the stacks show where things
hung. Sections: the pending tasks of the loops involved, each with its
coroutine stack; the threads that wait, and where; each communicator's
recent messages; the bridges' threads and waits from
:mod:`asgiref_core.introspection`, with the call sites; and the possible
deadlocks. Reading a section can fail while the test moves on; that section
then says so and the rest is still shown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

import pytest

from asgiref_core.introspection import BridgeThread, library_threads
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
_MAX_TASKS: Final = 40
_MAX_FRAMES: Final = 25
_THREAD_FRAMES: Final = 14
# Frames of the test's thread searched for communicators it holds.
_TEST_FRAMES: Final = 40
_INDENT: Final = "  "


@dataclass(slots=True)
class ReportInputs:
    """What the report is about: the test's thread, loops and communicators."""

    test_thread: threading.Thread
    #: (label, loop), the test's own loop first; a label is a prefix such as
    #: ``"the portal's "`` for :func:`describe_loop`'s text.
    loops: list[tuple[str, asyncio.AbstractEventLoop]]
    #: (label, communicator), the fixtures' first.
    communicators: list[tuple[str, ApplicationCommunicator]]


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
    if ident is not None and scene.threads[ident].name == PORTAL_THREAD_NAME:
        return "the portal's "
    return ""


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
            inner = getattr(value, "communicator", value)
            if isinstance(inner, ApplicationCommunicator):
                yield label, inner


def build_report(
    inputs: ReportInputs, scene: Scene, deadlock: Deadlock | None = None
) -> str:
    """The report's sections, in order, as one text (``deadlock``, already
    described, is not suggested again as a possible one)."""
    sections: list[tuple[str, Callable[[], list[str]]]] = [
        ("pending tasks", lambda: _tasks_section(inputs, scene)),
        ("waiting threads", lambda: _threads_section(inputs, scene)),
        ("communicators", lambda: _communicators_section(inputs)),
        ("bridges", lambda: _bridges_section(scene)),
        ("possible deadlocks", lambda: possible_deadlocks(scene, deadlock)),
    ]
    lines: list[str] = []
    for name, section in sections:
        try:
            lines += section()
        except Exception as error:  # the process moved on under our feet
            lines.append(
                f"({name}: could not be read: {type(error).__name__}: {error})"
            )
    return "\n".join(lines)


def _tasks_section(inputs: ReportInputs, scene: Scene) -> list[str]:
    lines: list[str] = []
    for label, loop in report_loops(scene, inputs.loops):
        if loop.is_closed():
            continue
        tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
        lines.append(
            f"pending tasks on {label}{describe_loop(loop, scene)}: {len(tasks)}"
        )
        for task in tasks[:_MAX_TASKS]:
            lines += _task_lines(task)
        if len(tasks) > _MAX_TASKS:
            lines.append(f"{_INDENT}... and {len(tasks) - _MAX_TASKS} more")
    return lines


def _task_lines(task: asyncio.Task[Any]) -> list[str]:
    coroutine = task.get_coro()
    name = getattr(coroutine, "__qualname__", type(coroutine).__name__)
    lines = [f"{_INDENT}task {task.get_name()!r} running {name}:"]
    frames = coroutine_frames(coroutine, _MAX_FRAMES)
    for frame in frames:
        lines += format_frame(frame, _INDENT * 2)
    if not frames:
        lines.append(f"{_INDENT * 2}(no coroutine frame: not started, or finishing)")
    return lines


def _threads_section(inputs: ReportInputs, scene: Scene) -> list[str]:
    lines = ["waiting threads:"]
    test_ident = inputs.test_thread.ident or 0
    for ident, wait in scene.waits.items():
        if wait.kind == "idle loop":
            continue
        target = ""
        if wait.task is not None:
            target = f" for task {wait.task.get_name()!r}"
        if wait.loop is not None:
            target += f" on {describe_loop(wait.loop, scene)}"
        lines.append(
            f"{_INDENT}thread {scene.thread_name(ident)} {wait.describe()}"
            f"{target}{where(wait.site)}"
        )
    if len(lines) == 1:
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


def _communicators_section(inputs: ReportInputs) -> list[str]:
    lines = ["communicators (recent messages, oldest first):"]
    seen: set[int] = set()
    for label, communicator in inputs.communicators:
        if id(communicator) in seen:
            continue
        seen.add(id(communicator))
        lines.append(f"{_INDENT}{label}: {communicator!r}")
        lines.append(_transcript(communicator))
    if len(lines) == 1:
        lines.append(f"{_INDENT}(none)")
    return lines


def _transcript(communicator: ApplicationCommunicator) -> str:
    # The loop thread may append while we read; a retry gets a clean copy.
    for _ in range(5):
        try:
            return communicator.transcript.format(indent=_INDENT * 2)
        except RuntimeError:
            continue
    return f"{_INDENT * 2}(the transcript kept changing while read)"


def _bridges_section(scene: Scene) -> list[str]:
    running_sites: dict[int | None, FrameType | None] = {}
    for wait in scene.bridge_waits:
        if wait.kind == "thread_sensitive" and wait.state == "running":
            site = None if wait.task is None else sync_to_async_site(wait.task)
            running_sites[wait.thread_ident] = site
    lines = ["asgiref_core bridge threads:"]
    threads = library_threads()
    for bridge in threads:
        lines.append(_bridge_thread_line(bridge, running_sites, scene))
    if not threads:
        lines.append(f"{_INDENT}(none)")
    lines.append("asgiref_core bridge waits:")
    for wait in scene.bridge_waits:
        if wait.kind == "async_to_sync":
            site = async_to_sync_site(scene.frames.get(wait.thread_ident or 0))
        else:
            site = None if wait.task is None else sync_to_async_site(wait.task)
        lines.append(f"{_INDENT}{wait.format()}{where(site)}")
    if not scene.bridge_waits:
        lines.append(f"{_INDENT}(none)")
    return lines


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


def _report_inputs(
    item: pytest.Item, thread: threading.Thread, scene: Scene
) -> ReportInputs:
    loops = report_loops(scene, _own_loops(item, thread, scene))
    communicators: list[tuple[str, ApplicationCommunicator]] = []
    serving = _serving_of(item)
    if serving is not None:
        communicators += serving.opened
    frame = scene.frames.get(thread.ident or 0)
    communicators += communicators_in(
        innermost_frames(frame, _TEST_FRAMES), "held by the test"
    )
    for _, loop in loops:
        if loop.is_closed():
            continue
        for task in asyncio.all_tasks(loop):
            frames = coroutine_frames(task.get_coro())
            communicators += communicators_in(
                frames, f"held by task {task.get_name()!r}"
            )
    return ReportInputs(thread, loops, communicators)


def hang_report(
    item: pytest.Item,
    thread: threading.Thread,
    headline: str,
    scene: Scene | None = None,
    deadlock: Deadlock | None = None,
) -> str:
    """The whole report on ``item``, whose ``thread`` is stuck: ``headline``,
    the deadlock if there is one, then the sections."""
    scene = scene or look()
    lines = [headline]
    if deadlock is None:
        deadlock = find_deadlock(scene, [thread], everywhere=True)
    if deadlock is not None:
        lines.append(deadlock.format())
    try:
        inputs = _report_inputs(item, thread, scene)
    except Exception as error:  # the test moved on while we looked
        inputs = ReportInputs(thread, [], [])
        lines.append(f"(could not find the test's loops: {error!r})")
    lines.append(build_report(inputs, scene, deadlock))
    return "\n".join(lines)
