"""Deadlock detection under ``--asgi-timeout``: cycles of waits that are
real fail the test at once; busy tests that only look like one pass.

A thread-sensitive call is part of a cycle only while its thread is inside
it. Healthy tests that make many such calls inside ``async_to_sync`` (a
Django view doing ORM work) catch the serving thread between two calls, or
a call that has returned while its result waits for the loop; neither may
be reported. Every inner run is a subprocess (threads and timeouts) with
pytest-timeout's ``--timeout`` as a backstop.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("inner_ini")]

BACKSTOP = "--timeout=60"

AFTER = """

def test_after():
    assert True
"""

MANY_CALLS = """
import asyncio
import time

import pytest

from asgiref_core.sync import async_to_sync, sync_to_async


def work():
    return 1


def work_with_a_nested_bridge():
    return async_to_sync(asyncio.sleep)(0, 1)


async def many_calls(function, seconds):
    # A healthy async_to_sync call making many short thread-sensitive calls,
    # all of which run on the test's own thread.
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        total += await sync_to_async(function)()
    return total


@pytest.mark.parametrize("run", range(3))
def test_many_calls(run):
    assert async_to_sync(many_calls)(work, 3) > 0


def test_many_calls_that_bridge_back():
    assert async_to_sync(many_calls)(work_with_a_nested_bridge, 2) > 0


@pytest.mark.asyncio
async def test_many_calls_from_an_async_test():
    assert await many_calls(work, 2) > 0
"""

BUSY_LOOP = """
import asyncio
import threading
import time

from asgiref_core.sync import async_to_sync, sync_to_async


def hand_back_to_a_busy_loop(loop):
    # Keep the loop busy for a while: this call's result waits for it, and
    # the test's thread meanwhile goes back to serving async_to_sync.
    started = threading.Event()

    def busy():
        started.set()
        time.sleep(1.5)

    loop.call_soon_threadsafe(busy)
    started.wait()
    return "handed back"


async def outer():
    loop = asyncio.get_running_loop()
    return await sync_to_async(hand_back_to_a_busy_loop)(loop)


def test_result_waits_for_a_busy_loop():
    assert async_to_sync(outer)() == "handed back"
"""

RUNNING_CYCLE = (
    """
import pytest

from asgiref_core.sync import async_to_sync, sync_to_async
from asgiref_core.testing import ApplicationCommunicator

COMMUNICATOR = []


def view():
    # Runs on the thread the application task waits for, and waits there
    # for that application to finish: nobody can move.
    async_to_sync(COMMUNICATOR[0].wait)(60)
    return {"type": "http.response.start", "status": 200, "headers": []}


async def app(scope, receive, send):
    await receive()
    await send(await sync_to_async(view)())


async def ask():
    communicator = ApplicationCommunicator(app, {"type": "http"})
    COMMUNICATOR[:] = [communicator]
    await communicator.send_input({"type": "http.request"})
    return await communicator.receive_output(60)


def test_cycle():
    async_to_sync(ask)()


@pytest.mark.asyncio
async def test_cycle_in_an_async_test():
    await ask()
"""
    + AFTER
)


LOOKS = """
import asyncio
import threading
import time

import pytest

from asgiref_core.sync import async_to_sync, sync_to_async
from asgiref_core.testing import ApplicationCommunicator
from pytest_asgiref._hangs_cycles import find_deadlock, look


def work():
    return 1


async def many_calls(seconds):
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        total += await sync_to_async(work)()
    return total


def test_no_look_sees_a_cycle():
    test_thread = threading.current_thread()
    seen = []
    looks = []
    stop = threading.Event()

    def keep_looking():
        while not stop.wait(0.001):
            looks.append(1)
            deadlock = find_deadlock(look(), [test_thread])
            if deadlock is not None:
                seen.append(deadlock.format())

    looker = threading.Thread(target=keep_looking)
    looker.start()
    try:
        assert async_to_sync(many_calls)(2) > 0
    finally:
        stop.set()
        looker.join()
    assert len(looks) > 100
    assert seen == []


COMMUNICATOR = []


def view():
    # The application task waits for this call; the call waits for the
    # application to finish.
    async_to_sync(COMMUNICATOR[0].wait)(60)


async def app(scope, receive, send):
    await receive()
    await sync_to_async(view)()


@pytest.mark.asyncio
async def test_cycle_is_found_from_the_test_thread():
    # Only the test's thread is named: the search starts from the task it
    # runs (this test) as well.
    test_thread = threading.current_thread()
    loop = asyncio.get_running_loop()
    communicator = ApplicationCommunicator(app, {"type": "http"})
    COMMUNICATOR[:] = [communicator]
    found = []

    def look_then_break_the_cycle():
        time.sleep(0.5)
        found.append(find_deadlock(look(), [test_thread]))
        loop.call_soon_threadsafe(communicator.future.cancel)

    looker = threading.Thread(target=look_then_break_the_cycle)
    looker.start()
    await communicator.send_input({"type": "http.request"})
    with pytest.raises(BaseException):
        await communicator.receive_output(60)
    looker.join()
    assert found[0] is not None
    print(found[0].format())
"""


def test_find_deadlock_called_directly(pytester: pytest.Pytester) -> None:
    """Looks taken as often as possible see no cycle in a busy test (not just
    the watchdog's two looks a quarter of a second apart); a real one is
    found from the test's thread alone."""
    pytester.makepyfile(test_looks=LOOKS)
    result = pytester.runpytest_subprocess(BACKSTOP, "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*deadlock: thread 'asgiref_core-thread-sensitive-*' waits for event "
            "loop 0x* (run by thread 'MainThread'), which waits for thread "
            "'asgiref_core-thread-sensitive-*'",
            "  thread 'asgiref_core-thread-sensitive-*' waits in async_to_sync for "
            "task 'Task-*' on event loop 0x* (run by thread 'MainThread'), called "
            'at File "*test_looks.py", line *, in view',
            "  task 'Task-*' waits for the application task 'ASGI http "
            "application test_looks.app' through its communicator",
            "  task 'ASGI http application test_looks.app' awaits thread-sensitive "
            "sync_to_async(test_looks.view), running on thread "
            "'asgiref_core-thread-sensitive-*'",
        ]
    )


def test_many_thread_sensitive_calls_are_no_deadlock(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_busy=MANY_CALLS)
    result = pytester.runpytest_subprocess("--asgi-timeout=30", BACKSTOP)
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*a deadlock stopped*")


def test_a_returned_call_waiting_for_its_loop_is_no_deadlock(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_busy_loop=BUSY_LOOP)
    result = pytester.runpytest_subprocess("--asgi-timeout=30", BACKSTOP)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*a deadlock stopped*")


def test_cycle_through_a_running_call_fails_at_once(
    pytester: pytest.Pytester,
) -> None:
    """A thread inside a call that its own caller's chain waits for."""
    pytester.makepyfile(test_cycle=RUNNING_CYCLE)
    result = pytester.runpytest_subprocess("--asgi-timeout=30", BACKSTOP)
    result.assert_outcomes(failed=2, passed=1)
    app_task = "task 'ASGI http application test_cycle.app'"
    result.stdout.fnmatch_lines(
        [
            "test_cycle.py::test_cycle: a deadlock stopped the test's call after "
            "*s, so pytest-asgiref failed it without waiting for the 30s limit*",
            "deadlock: thread 'MainThread' waits for event loop 0x* (run by "
            "thread 'asgiref_core-loop-*'), which waits for thread 'MainThread'",
            "  thread 'MainThread' waits in async_to_sync for task 'Task-*' on "
            "event loop 0x* (run by thread 'asgiref_core-loop-*'), called at "
            'File "*test_cycle.py", line *, in view',
            f"  task 'Task-*' waits for the application {app_task} through "
            "its communicator",
            f"  {app_task} awaits thread-sensitive sync_to_async(test_cycle.view), "
            "running on thread 'MainThread'",
            "test_cycle.py::test_cycle_in_an_async_test: a deadlock stopped the "
            "test's call after *s, so pytest-asgiref failed it without waiting "
            "for the 30s limit*",
            "deadlock: thread 'asgiref_core-thread-sensitive-*' waits for event "
            "loop 0x* (run by thread 'MainThread'), which waits for thread "
            "'asgiref_core-thread-sensitive-*'",
            "  thread 'asgiref_core-thread-sensitive-*' waits in async_to_sync for "
            "task 'Task-*' on event loop 0x* (run by thread 'MainThread'), called "
            'at File "*test_cycle.py", line *, in view',
            f"  task 'Task-*' waits for the application {app_task} through "
            "its communicator",
            f"  {app_task} awaits thread-sensitive sync_to_async(test_cycle.view), "
            "running on thread 'asgiref_core-thread-sensitive-*'",
        ]
    )
    result.stdout.no_fnmatch_line("*ran longer than*")
