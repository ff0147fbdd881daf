"""Deadlock detection: waits that form a cycle, or wait on a dead loop.

A *wait graph* is built from one look at the process: threads waiting in a
portal call or ``async_to_sync`` for a task; tasks awaiting other tasks
(directly or through ``asyncio.gather``), an application task through its
communicator, or a thread-sensitive call that a blocked thread holds; tasks
on a loop whose thread is itself blocked. Only waits that cannot end by
themselves become edges, so a cycle is a deadlock: no member can move
before another one does. Waits the bridges cannot see (an ``asyncio.Event``,
a lock, a queue) add no edge; a thread-sensitive call queued behind a
thread that waits for the caller's loop is reported as a *possible*
deadlock in the hang report instead.

A look is not atomic: the threads' frames are read first, the bridges'
bookkeeping a moment later. A thread that serves many short thread-sensitive
calls may be seen idle between two of them while the bookkeeping already
names the next one (or still names one that has returned and waits for its
loop). So a task waits for the thread running its call only if that
thread's frames show it inside that very call; and a cycle is confirmed only
when a second look finds the same calls and tasks, not merely the same
threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from asgiref_core._sync_call import SyncCall
from asgiref_core.introspection import BridgeWait, pending_waits
from asgiref_core.testing import ApplicationCommunicator
from pytest_asgiref._hangs_frames import (
    ThreadWait,
    coroutine_frames,
    loops_by_thread,
    thread_frames,
    thread_wait,
)

__all__ = [
    "Deadlock",
    "Scene",
    "describe_loop",
    "find_deadlock",
    "look",
    "possible_deadlocks",
    "tasks_run_by",
    "where",
]

# A node of the wait graph: ("thread", ident) or ("task", id(task)).
Node = tuple[str, int]

_MAX_NODES: Final = 2_000

# The frame a thread-sensitive call runs in, on its thread.
_SYNC_CALL_RUN: Final = SyncCall.run.__code__
_RUN_UNTIL_COMPLETE: Final = asyncio.BaseEventLoop.run_until_complete.__code__


@dataclass(slots=True)
class Scene:
    """One look at the process: threads, their waits, loops, bridge waits."""

    threads: dict[int, threading.Thread]
    frames: dict[int, FrameType]
    waits: dict[int, ThreadWait]
    loop_threads: dict[asyncio.AbstractEventLoop, int]
    bridge_waits: list[BridgeWait]

    def thread_name(self, ident: int | None) -> str:
        thread = self.threads.get(ident or 0)
        return repr(thread.name if thread is not None else f"<thread {ident}>")


def look(here: FrameType | None = None) -> Scene:
    """Take the look (cheap: a few dict walks, no formatting).

    ``here``, if given, stands for the calling thread's frame: a signal
    handler passes the frame it interrupted, so that the look shows what the
    thread was doing rather than the handler.
    """
    frames = thread_frames()
    if here is not None:
        frames[threading.get_ident()] = here
    threads = {t.ident: t for t in threading.enumerate() if t.ident is not None}
    waits: dict[int, ThreadWait] = {}
    for ident, frame in frames.items():
        thread = threads.get(ident)
        if thread is not None:
            wait = thread_wait(thread, frame)
            if wait is not None:
                waits[ident] = wait
    return Scene(threads, frames, waits, loops_by_thread(frames), pending_waits())


def describe_loop(loop: asyncio.AbstractEventLoop | None, scene: Scene) -> str:
    """``event loop 0x7f... (run by thread 'name')``, or why nobody runs it."""
    if loop is None:
        return "an unknown event loop"
    name = f"event loop {id(loop):#x}"
    if loop.is_closed():
        return f"{name} (closed)"
    ident = scene.loop_threads.get(loop)
    if ident is None:
        return f"{name} ({'running' if loop.is_running() else 'stopped'})"
    return f"{name} (run by thread {scene.thread_name(ident)})"


def where(frame: FrameType | None) -> str:
    if frame is None:
        return ""
    code = frame.f_code
    return (
        f', called at File "{code.co_filename}", line {frame.f_lineno}, '
        f"in {code.co_name}"
    )


@dataclass(frozen=True, slots=True)
class Deadlock:
    """A cycle of waits (or a wait on a dead loop), in words."""

    headline: str
    steps: tuple[str, ...]
    #: Threads in the cycle, whose waits may be cancelled to break it.
    threads: tuple[threading.Thread, ...]
    #: Identifies the cycle across looks, to confirm it before failing: its
    #: threads, and the very tasks and calls (objects, not ids, which a new
    #: object may reuse).
    key: tuple[object, ...]

    def format(self) -> str:
        lines = [f"deadlock: {self.headline}"]
        lines += [f"  {step}" for step in self.steps]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Edge:
    target: Node
    text: str
    #: The thread-sensitive call the wait is for, if any (part of the key).
    call: object = None


class _Graph:
    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        self.calls: dict[int, list[BridgeWait]] = {}
        # Thread ident -> ids of the calls its frames show it running.
        self._running: dict[int, set[int]] = {}
        for wait in scene.bridge_waits:
            if wait.kind == "thread_sensitive" and wait.task is not None:
                self.calls.setdefault(id(wait.task), []).append(wait)

    def task_node(self, task: asyncio.Task[Any]) -> Node:
        self.tasks[id(task)] = task
        return ("task", id(task))

    def name(self, node: Node) -> str:
        kind, ident = node
        if kind == "thread":
            return f"thread {self.scene.thread_name(ident)}"
        return f"task {self.tasks[ident].get_name()!r}"

    def edges(self, node: Node) -> list[_Edge]:
        kind, ident = node
        if kind == "thread":
            return self._thread_edges(ident)
        task = self.tasks[ident]
        if task.done():
            return []
        return self._task_edges(task)

    def _thread_edges(self, ident: int) -> list[_Edge]:
        wait = self.scene.waits.get(ident)
        if wait is None or wait.task is None or wait.task.done():
            return []
        if wait.kind not in ("portal", "async_to_sync"):
            return []
        text = (
            f"{self.name(('thread', ident))} {wait.describe()} for task "
            f"{wait.task.get_name()!r} on {describe_loop(wait.loop, self.scene)}"
            f"{where(wait.site)}"
        )
        return [_Edge(self.task_node(wait.task), text)]

    def _task_edges(self, task: asyncio.Task[Any]) -> list[_Edge]:
        me = self.name(self.task_node(task))
        edges: list[_Edge] = []
        waiter = getattr(task, "_fut_waiter", None)
        if isinstance(waiter, asyncio.Task) and not waiter.done():
            edges.append(
                _Edge(self.task_node(waiter), f"{me} awaits task {waiter.get_name()!r}")
            )
        for child in getattr(waiter, "_children", None) or ():
            if isinstance(child, asyncio.Task) and not child.done():
                edges.append(
                    _Edge(
                        self.task_node(child),
                        f"{me} awaits task {child.get_name()!r} through asyncio.gather",
                    )
                )
        for app_task in _communicator_apps(task):
            edges.append(
                _Edge(
                    self.task_node(app_task),
                    f"{me} waits for the application task "
                    f"{app_task.get_name()!r} through its communicator",
                )
            )
        for call in self.calls.get(id(task), ()):
            edge = self._call_edge(me, call)
            if edge is not None:
                edges.append(edge)
        edge = self._blocked_loop_edge(me, task)
        if edge is not None:
            edges.append(edge)
        return edges

    def _call_edge(self, me: str, call: BridgeWait) -> _Edge | None:
        ident = call.thread_ident
        if ident is None or call.call is None:
            return None
        holder = self.scene.waits.get(ident)
        if holder is None:
            # A thread that runs code will get to the call, or finish it.
            return None
        thread = self.scene.thread_name(ident)
        head = f"{me} awaits thread-sensitive sync_to_async({call.target}), "
        if call.state == "queued":
            if holder.serving:
                return None  # the thread runs its queue while it waits
            text = (
                f"{head}queued on thread {thread}, which cannot run it before "
                "its own wait ends"
            )
        elif call.state == "running" and self._runs(ident, call.call):
            text = f"{head}running on thread {thread}"
        else:
            # Returned (its result waits for the loop), or the thread was
            # seen outside it: whatever the thread waits for, it is not in
            # the call's way.
            return None
        return _Edge(("thread", ident), text, call.call)

    def _runs(self, ident: int, call: object) -> bool:
        """Whether thread ``ident`` was seen inside ``call``."""
        running = self._running.get(ident)
        if running is None:
            running = set()
            frame = self.scene.frames.get(ident)
            while frame is not None:
                if frame.f_code is _SYNC_CALL_RUN:
                    found = _frame_local(frame, "self")
                    if found is not None:
                        running.add(id(found))
                frame = frame.f_back
            self._running[ident] = running
        return id(call) in running

    def _blocked_loop_edge(self, me: str, task: asyncio.Task[Any]) -> _Edge | None:
        loop = task.get_loop()
        ident = self.scene.loop_threads.get(loop)
        if ident is None:
            return None
        holder = self.scene.waits.get(ident)
        if holder is None or holder.kind == "idle loop":
            return None
        text = (
            f"{me} cannot run: its {describe_loop(loop, self.scene)} is "
            f"blocked, as that thread {holder.describe()}"
        )
        return _Edge(("thread", ident), text)


def _frame_local(frame: FrameType, name: str) -> object:
    try:
        return frame.f_locals.get(name)
    except Exception:  # a frame torn down while read
        return None


def _communicator_apps(task: asyncio.Task[Any]) -> Iterable[asyncio.Task[Any]]:
    """Application tasks ``task`` waits on through a communicator's methods."""
    found: list[asyncio.Task[Any]] = []
    for frame in coroutine_frames(task.get_coro()):
        code = frame.f_code
        if not code.co_argcount or code.co_varnames[0] != "self":
            continue  # not a method: reading its locals would be wasted
        candidate = _frame_local(frame, "self")
        if isinstance(candidate, ApplicationCommunicator):
            app_task = getattr(candidate, "_future", None)
            if (
                isinstance(app_task, asyncio.Task)
                and app_task is not task
                and not app_task.done()
                and app_task not in found
            ):
                found.append(app_task)
    return found


def tasks_run_by(scene: Scene, ident: int | None) -> list[asyncio.Task[Any]]:
    """The tasks thread ``ident`` runs to completion on its event loop
    (``run_until_complete``), innermost first: for an async test, the
    test's own task or an async fixture's."""
    found: list[asyncio.Task[Any]] = []
    frame = scene.frames.get(ident or 0)
    while frame is not None:
        if frame.f_code is _RUN_UNTIL_COMPLETE:
            task = _frame_local(frame, "future")
            if isinstance(task, asyncio.Task) and not task.done():
                found.append(task)
        frame = frame.f_back
    return found


def find_deadlock(
    scene: Scene,
    threads: Iterable[threading.Thread] = (),
    tasks: Iterable[Any] = (),
    *,
    everywhere: bool = False,
) -> Deadlock | None:
    """A cycle of waits that ``threads`` or ``tasks`` (the test's) wait on,
    directly or not, or one of them waiting for a loop that is closed or
    stopped; with ``everywhere``, any cycle in the process.

    A thread that runs an event loop waits for the tasks it runs to
    completion there (see :func:`tasks_run_by`): they are searched from as
    well, so ``tasks`` need only name others."""
    idents = [t.ident for t in threads if t.ident is not None]
    dead = _dead_loop_wait(scene, None if everywhere else set(idents))
    if dead is not None:
        return dead
    graph = _Graph(scene)
    starts: list[Node] = [("thread", ident) for ident in idents]
    for ident in idents:
        starts += [graph.task_node(t) for t in tasks_run_by(scene, ident)]
    starts += [graph.task_node(t) for t in tasks if isinstance(t, asyncio.Task)]
    if everywhere:
        starts += [("thread", ident) for ident in scene.waits]
    done: set[Node] = set()
    for start in starts:
        cycle = _cycle_from(graph, start, done)
        if cycle is not None:
            return _describe_cycle(graph, cycle)
    return None


def _cycle_from(
    graph: _Graph, start: Node, done: set[Node]
) -> list[tuple[Node, _Edge]] | None:
    """Depth-first search; the cycle as (node, edge out of it) pairs."""
    path: list[tuple[Node, _Edge]] = []
    on_path: dict[Node, int] = {}
    stack: list[tuple[Node, list[_Edge]]] = []
    if start in done:
        return None
    stack.append((start, graph.edges(start)))
    on_path[start] = 0
    while stack:
        node, pending = stack[-1]
        if not pending or len(done) > _MAX_NODES:
            stack.pop()
            on_path.pop(node, None)
            done.add(node)
            if path:
                path.pop()
            continue
        edge = pending.pop()
        if edge.target in on_path:
            cycle = [*path, (node, edge)]
            return cycle[on_path[edge.target] :]
        if edge.target in done:
            continue
        path.append((node, edge))
        on_path[edge.target] = len(path)
        stack.append((edge.target, graph.edges(edge.target)))
    return None


def _describe_cycle(graph: _Graph, cycle: list[tuple[Node, _Edge]]) -> Deadlock:
    # Start at a thread, if there is one: that is where a reader looks first.
    starts = [i for i, (node, _) in enumerate(cycle) if node[0] == "thread"]
    if starts:
        cycle = cycle[starts[0] :] + cycle[: starts[0]]
    steps = tuple(edge.text for _, edge in cycle)
    nodes = [node for node, _ in cycle]
    threads = tuple(
        graph.scene.threads[ident]
        for kind, ident in nodes
        if kind == "thread" and ident in graph.scene.threads
    )
    objects = frozenset(
        [graph.tasks[ident] for kind, ident in nodes if kind == "task"]
        + [edge.call for _, edge in cycle if edge.call is not None]
    )
    key = (*sorted(nodes), objects)
    return Deadlock(_headline(graph, nodes), steps, threads, key)


def _headline(graph: _Graph, nodes: list[Node]) -> str:
    thread_positions = [i for i, node in enumerate(nodes) if node[0] == "thread"]
    if not thread_positions:
        names = [graph.name(node) for node in nodes]
        return ", which awaits ".join([*names, names[0]])
    parts: list[str] = []
    for position in thread_positions:
        ident = nodes[position][1]
        wait = graph.scene.waits.get(ident)
        loop = None if wait is None else wait.loop
        parts.append(
            f"{graph.name(nodes[position])} waits for "
            f"{describe_loop(loop, graph.scene)}"
        )
    first = graph.name(nodes[thread_positions[0]])
    return ", which waits for ".join([*parts, first])


def _dead_loop_wait(scene: Scene, idents: set[int] | None) -> Deadlock | None:
    """A portal call whose loop is closed or stopped can never return."""
    for ident, wait in scene.waits.items():
        loop = wait.loop
        if wait.kind != "portal" or loop is None:
            continue
        if idents is not None and ident not in idents:
            continue
        if loop.is_closed() or not loop.is_running():
            state = "closed" if loop.is_closed() else "stopped"
            name = f"thread {scene.thread_name(ident)}"
            headline = (
                f"{name} waits for {describe_loop(loop, scene)}, which is "
                f"{state}, so the wait can never end"
            )
            step = f"{name} {wait.describe()}{where(wait.site)}"
            return Deadlock(
                headline, (step,), (wait.thread,), ("dead", ident, id(loop))
            )
    return None


def possible_deadlocks(scene: Scene, known: Deadlock | None = None) -> list[str]:
    """Thread-sensitive calls queued behind a thread that waits for the very
    loop they came from: a deadlock if that thread's wait needs them. The
    threads of the ``known`` deadlock are left out."""
    found = []
    skip = set() if known is None else {t.ident for t in known.threads}
    for call in scene.bridge_waits:
        if call.kind != "thread_sensitive" or call.state != "queued":
            continue
        holder = scene.waits.get(call.thread_ident or 0)
        if holder is None or holder.serving or holder.loop is not call.loop:
            continue
        if call.thread_ident in skip:
            continue
        task = call.task.get_name() if call.task is not None else "a callback"
        found.append(
            f"possible deadlock: thread {scene.thread_name(call.thread_ident)} "
            f"{holder.describe()} for {describe_loop(call.loop, scene)}, where "
            f"task {task!r} awaits thread-sensitive sync_to_async({call.target}), "
            f"queued on that same thread{where(holder.site)}"
        )
    return found
