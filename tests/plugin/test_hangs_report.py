"""The hang report's text: it never runs the test's code, it stays short when
hundreds of things wait, and it lists what the test itself waits on first.

Every inner run is a subprocess (threads, signals and timeouts) with
pytest-timeout's ``--timeout 25`` as a backstop.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("inner_ini")]

BACKSTOP = "--timeout=25"


def report_of(result: pytest.RunResult, nodeid: str) -> list[str]:
    """The lines of the hang report for ``nodeid``: from its headline to
    the line before what pytest-asgiref did to end the test."""
    lines = result.stdout.lines
    starts = [i for i, line in enumerate(lines) if line.startswith(f"{nodeid}: ")]
    assert starts, f"no hang report for {nodeid} in:\n{result.stdout.str()}"
    start = starts[0]
    end = lines.index("what pytest-asgiref did to end the test:", start)
    return lines[start:end]


def task_lines(report: list[str]) -> list[str]:
    """The ``task '...'`` lines of the first loop's pending tasks."""
    start = next(i for i, line in enumerate(report) if line.startswith("pending"))
    found = []
    for line in report[start + 1 :]:
        if not line.startswith("  "):
            break
        if line.startswith("  task "):
            found.append(line)
    return found


# -- the report runs nothing of the test's ----------------------------------------

LAZY = """
import asyncio
import threading

import pytest

# (attribute, thread) for every attribute looked up on a Lazy object.
TOUCHED = []


class Lazy:
    \"\"\"Runs code on any attribute lookup, as lazy objects and mocks do.\"\"\"

    def __getattribute__(self, name):
        TOUCHED.append((name, threading.current_thread().name))
        raise RuntimeError(f"Lazy.{name} was evaluated")


async def silent(scope, receive, send):
    await receive()
    await asyncio.Event().wait()  # never answers


@pytest.mark.asgi_app(app=silent, lifespan="off")
def test_sync(asgi_http):
    lazy = Lazy()
    asgi_http.get("/slow", timeout=60)


@pytest.mark.asyncio
@pytest.mark.asgi_app(app=silent, lifespan="off")
async def test_async(asgi_http):
    lazy = Lazy()
    await asgi_http.get("/slow", timeout=60)


def test_nothing_was_touched():
    assert TOUCHED == []
"""


def test_locals_that_run_code_are_not_touched(pytester: pytest.Pytester) -> None:
    """A local whose attribute lookup runs code and raises: the report is
    complete, and nothing of that object ran on the watchdog's thread."""
    pytester.makepyfile(test_lazy=LAZY)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.no_fnmatch_line("*could not*")
    result.stdout.no_fnmatch_line("*Lazy.* was evaluated*")
    sync = report_of(result, "test_lazy.py::test_sync")
    pytest.LineMatcher(sync).fnmatch_lines(
        [
            "pending tasks on the portal's event loop 0x* "
            "(run by thread 'pytest_asgiref-portal'): 2",
            "  task 'ASGI http application test_lazy.silent' running silent:",
            "the test's thread 'MainThread' is at (innermost last):",
            '  File "*test_lazy.py", line *, in test_sync',
            "communicators (recent messages, oldest first):",
            "  held by task 'Task-*': <HttpCommunicator test_lazy.silent running, "
            "1 message(s) in transcript>",
        ]
    )
    asynchronous = report_of(result, "test_lazy.py::test_async")
    pytest.LineMatcher(asynchronous).fnmatch_lines(
        [
            "pending tasks on the test's event loop 0x* "
            "(run by thread 'MainThread'): 2",
            "  task 'Task-*' running test_async:",
            "communicators (recent messages, oldest first):",
            "  held by task 'Task-*': <HttpCommunicator test_lazy.silent running, "
            "1 message(s) in transcript>",
        ]
    )


# -- the report stays short --------------------------------------------------------

CROWDED = """
import asyncio
import threading

import pytest

from asgiref_core.sync import sync_to_async

RELEASE = threading.Event()


def slow():
    RELEASE.wait(20)


@pytest.fixture
def release():
    yield
    RELEASE.set()  # lets the thread-sensitive thread go before teardown ends


async def app(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.Event().wait()


@pytest.mark.asyncio
@pytest.mark.asgi_app(app=app, lifespan="off")
async def test_crowded(release, asgi_websocket):
    for room in range(30):
        await asgi_websocket(f"/room/{room}").connect()
    await asyncio.gather(*[sync_to_async(slow)() for _ in range(300)])


def test_after():
    assert True
"""


def test_report_is_bounded(pytester: pytest.Pytester) -> None:
    """Hundreds of pending tasks and bridge calls, tens of communicators:
    each section shows a few and counts the others."""
    pytester.makepyfile(test_crowded=CROWDED)
    result = pytester.runpytest_subprocess("--asgi-timeout=1.5", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    report = report_of(result, "test_crowded.py::test_crowded")
    assert len(report) < 250, "\n".join(report)
    matcher = pytest.LineMatcher(report)
    matcher.fnmatch_lines(
        [
            "pending tasks on the test's event loop 0x* "
            "(run by thread 'MainThread'): 331",
            "  task 'Task-*' running test_crowded:",
            "  ... and 311 more",
            "communicators (recent messages, oldest first):",
            "  ... and 20 more communicator(s)",
            "asgiref_core bridge waits:",
            "  ... and 280 more bridge wait(s) (queued: 280)",
        ]
    )
    # The test's own task comes first, before the waits it started.
    assert task_lines(report)[0].startswith("  task 'Task-"), report
    assert " running test_crowded:" in task_lines(report)[0], report
    assert len(task_lines(report)) == 20, report
    communicators = [line for line in report if line.startswith("  asgi_websocket")]
    assert len(communicators) == 10, report
    waits = [line for line in report if "awaits thread-sensitive" in line]
    assert len(waits) == 20, report


ORDER = """
import asyncio

import pytest


async def forever():
    await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_waits_for_worker():
    idle = [asyncio.create_task(forever(), name=f"Idle-{n}") for n in range(50)]
    await asyncio.create_task(forever(), name="worker")
"""


def test_the_tests_own_task_comes_first(pytester: pytest.Pytester) -> None:
    """The test's task, then the task it awaits, then the others by name with
    numbers in order (Idle-2 before Idle-10); the cap drops the others."""
    pytester.makepyfile(test_order=ORDER)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1)
    report = report_of(result, "test_order.py::test_waits_for_worker")
    tasks = task_lines(report)
    assert re.fullmatch(r"  task 'Task-\d+' running test_waits_for_worker:", tasks[0])
    assert tasks[1] == "  task 'worker' running forever:"
    names = [line.split("'")[1] for line in tasks[2:]]
    assert names == [f"Idle-{n}" for n in range(18)]
    assert (
        tasks[2]
        == "  task 'Idle-0' running forever: at the same place as task 'worker'"
    )
    pytest.LineMatcher(report).fnmatch_lines(
        [
            "pending tasks on the test's event loop 0x* "
            "(run by thread 'MainThread'): 52",
            "  ... and 32 more",
            "waiting threads:",
        ]
    )
