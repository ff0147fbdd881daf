"""The leak check's verdict on one test that may have left something behind.

Reached only past the leak check's quick path (a thread was started, a
loop or a library thread is involved, or something wider than the test
ended), so it may take its time: it classifies the threads, gives finishing threads
and tasks a grace period, and describes what is left.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from asgiref_core._bridge_state import THREAD_NAME_PREFIX
from pytest_asgiref._threads import pending_tasks
from pytest_asgiref._threads_classify import (
    active_library_threads,
    baseline_threads,
    suspect,
)
from pytest_asgiref._threads_findings import (
    settle_tasks,
    settle_threads,
    task_finding,
    thread_finding,
)
from pytest_asgiref._threads_report import Findings
from pytest_asgiref._threads_tracking import Owner

if TYPE_CHECKING:
    from pytest_asgiref._threads import LeakCheck, Loop, PerTestState

__all__ = ["examine"]


def examine(
    check: LeakCheck,
    item: pytest.Item,
    state: PerTestState,
    after: Sequence[threading.Thread],
    ended: list[Owner],
    loops: dict[Loop, str],
) -> Findings:
    """What the test left: threads and tasks still there after a grace period,
    that nothing wider holds, reported once."""
    findings = Findings(item.nodeid)
    findings.strict = state.strict
    # Threads.
    active = active_library_threads(after)
    reported = set(check.reported_threads)
    candidates = [
        thread
        for thread in after
        if (
            thread in active and thread not in state.active_before
            if thread.name.startswith(THREAD_NAME_PREFIX)
            else thread not in state.threads_before
        )
    ]
    records = dict(check.tracker.snapshot())
    if ended:
        # What the wider things that just ended started, or held.
        candidates += [
            thread
            for thread, record in records.items()
            if record.phase is not None
            and record.phase.owner in ended
            and not thread.name.startswith(THREAD_NAME_PREFIX)
            and thread.is_alive()
        ]
        candidates += [
            thread for owner in ended for thread in owner.threads if thread in active
        ]
    candidates = [t for t in dict.fromkeys(candidates) if t not in reported]
    if candidates:
        baseline = baseline_threads([*loops, *check.runner_loops.values()])
        held = {
            t for owner in check.owners if not owner.finished() for t in owner.threads
        }
        allowed = check.allowed()
        candidates = [
            thread
            for thread in candidates
            if suspect(thread, baseline, allowed, records.get(thread), held)
        ]
    if candidates:
        left = settle_threads(candidates)
        check.reported_threads.update(left)
        frames = sys._current_frames()
        for thread in left:
            record = records.get(thread)
            findings.threads.append(thread_finding(thread, record, frames))
    # Tasks.
    findings.tasks += state.closing
    owned = check.accounted_tasks()
    late = {t for owner in ended for t in owner.tasks if not t.done()}
    for loop, description in loops.items():
        if loop.is_closed():
            continue
        suspects = pending_tasks(loop) - state.tasks_before.get(loop, set())
        suspects = (suspects | {t for t in late if t.get_loop() is loop}) - owned
        left_tasks = settle_tasks(loop, suspects)
        check.reported_tasks.update(left_tasks)
        for task in left_tasks:
            findings.tasks.append(task_finding(task, loop, description))
    return findings
