"""What the leak check found, in words: findings, warnings and the summary.

A leaked thread reads, in a failure or in the end-of-run summary::

    thread 'poller' (non-daemon) is still running
      belongs to: the test body of test_app.py::test_poll
      started by: thread 'MainThread'
      started at (most recent call last):
        File "test_app.py", line 12, in test_poll
          threading.Thread(target=poll, name="poller").start()
      now running (most recent call last):
        File "test_app.py", line 7, in poll
          stop.wait(60)

and a pending task the same way, with its coroutine stack.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from pytest_asgiref._outcomes import (
    PytestAsgiPendingTaskWarning,
    PytestAsgiThreadLeakWarning,
)

__all__ = [
    "ALLOW_HINT",
    "Finding",
    "Findings",
    "SUMMARY_TITLE",
    "task_stack",
]

STRICT_HINT: Final = (
    "To have this test only warn, mark it @pytest.mark.asgi_strict_threads(False)."
)

SUMMARY_TITLE: Final = "pytest-asgiref: threads and tasks left behind"

ALLOW_HINT: Final = (
    "A thread that lives on by design can be allowed by name: add a pattern to "
    "the asgi_allowed_threads ini key, or return it from the "
    "pytest_asgiref_allowed_threads hook."
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thread or task left behind, described."""

    kind: str  # "thread" or "task"
    headline: str  # "thread 'poller' (non-daemon) is still running"
    short: str  # "thread 'poller' (started in test_app.py:12)"
    details: tuple[str, ...]  # indented lines under the headline

    def format(self) -> list[str]:
        return [self.headline, *self.details]


@dataclass(slots=True)
class Findings:
    """Everything one test left behind."""

    nodeid: str
    threads: list[Finding] = field(default_factory=list)
    tasks: list[Finding] = field(default_factory=list)
    strict: bool = False

    def __bool__(self) -> bool:
        return bool(self.threads or self.tasks)

    def counts(self) -> str:
        parts = []
        if self.threads:
            n = len(self.threads)
            parts.append(f"{n} thread{'s' if n > 1 else ''} running")
        if self.tasks:
            n = len(self.tasks)
            parts.append(f"{n} task{'s' if n > 1 else ''} pending")
        return " and ".join(parts)

    def detail_lines(self) -> list[str]:
        lines: list[str] = []
        for finding in [*self.threads, *self.tasks]:
            lines += ["", *finding.format()]
        return lines

    def failure_message(self) -> str:
        """The teardown error of a strict test."""
        lines = [
            f"{self.nodeid}: left {self.counts()} after teardown "
            "(the thread and task leak check is strict for this test)",
            *self.detail_lines(),
        ]
        if self.threads:
            lines += ["", ALLOW_HINT]
        lines += ["", STRICT_HINT]
        return "\n".join(lines)

    def warnings(self) -> list[pytest.PytestWarning]:
        """The short warnings of a test that is not strict."""
        found: list[pytest.PytestWarning] = []
        tail = (
            f"; details under '{SUMMARY_TITLE}' at the end of the run, and "
            "--asgi-strict-threads makes it an error"
        )
        if self.threads:
            listed = "; ".join(finding.short for finding in self.threads)
            found.append(
                PytestAsgiThreadLeakWarning(
                    f"{self.nodeid} left {len(self.threads)} thread(s) running "
                    f"after teardown: {listed}{tail}"
                )
            )
        if self.tasks:
            listed = "; ".join(finding.short for finding in self.tasks)
            found.append(
                PytestAsgiPendingTaskWarning(
                    f"{self.nodeid} left {len(self.tasks)} task(s) pending after "
                    f"teardown: {listed}{tail}"
                )
            )
        return found

    def summary_lines(self) -> list[str]:
        """Full details for a warning; an error showed them already."""
        if self.strict:
            found = [f.headline for f in [*self.threads, *self.tasks]]
            return [
                f"{self.nodeid} (error, shown above): left {self.counts()}",
                *(f"  {headline}" for headline in found),
            ]
        return [
            f"{self.nodeid} (warning): left {self.counts()}",
            *("  " + line if line else "" for line in self.detail_lines()),
        ]


def task_stack(task: Any, limit: int) -> list[str]:
    """A task's coroutine stack as indented lines (what it awaits now)."""
    buffer = io.StringIO()
    try:
        task.print_stack(limit=limit, file=buffer)
    except Exception as error:  # a report must not fail the run
        return [f"    (its stack could not be read: {error!r})"]
    lines = buffer.getvalue().splitlines()
    # The first line is asyncio's own "Stack for <Task ...> (most recent ...)".
    return ["  " + line for line in lines[1:] if line.strip()]
