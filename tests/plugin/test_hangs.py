"""--asgi-timeout, the asgi_timeout marker, deadlock detection and the hang
report, alone and with pytest-timeout.

Every inner run is a subprocess (threads, signals and timeouts). Each hung
inner test is followed by one that passes, to show the session survived; the
inner runs also get pytest-timeout's ``--timeout 25`` as a backstop, so that a
report from pytest-asgiref proves it ended the test well before that.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from textwrap import dedent

import pytest

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("inner_ini")]

Ini = Callable[..., None]

BACKSTOP = "--timeout=25"

AFTER = """

def test_after():
    assert True
"""

HUNG_COROUTINE = (
    """
import asyncio

import pytest


@pytest.mark.asyncio
async def test_hung():
    event = asyncio.Event()
    await event.wait()
"""
    + AFTER
)

HUNG_BRIDGE = (
    """
import asyncio

from asgiref_core.sync import async_to_sync


async def never():
    await asyncio.Event().wait()


def test_bridge():
    async_to_sync(never)()
"""
    + AFTER
)

SILENT_APP = """
import asyncio

import pytest


async def silent(scope, receive, send):
    await receive()
    await asyncio.Event().wait()  # never answers
"""

HUNG_HTTP = (
    SILENT_APP
    + """

@pytest.mark.asgi_app(app=silent, lifespan="off")
def test_http(asgi_http):
    asgi_http.get("/slow", timeout=60)
"""
    + AFTER
)

DEADLOCK = """
import concurrent.futures

import pytest

from asgiref_core.sync import sync_to_async

CLIENT = []


def view(path):
    if path == "/outer":
        # On the thread-sensitive thread: call the application back and wait
        # for it. Its view needs this very thread, which is busy waiting.
        try:
            return CLIENT[0].get("/inner", timeout=60).body
        except concurrent.futures.CancelledError:
            return b"given up"
    return b"inner"


async def app(scope, receive, send):
    await receive()
    body = await sync_to_async(view)(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


pytestmark = pytest.mark.asgi_app(app=app, lifespan="off")


def test_deadlock(asgi_http):
    CLIENT.append(asgi_http)
    asgi_http.get("/outer", timeout=60)


def test_thread_sensitive_thread_is_free_again(asgi_http):
    assert asgi_http.get("/inner").body == b"inner"
"""


# -- the three kinds of hang ---------------------------------------------------


def test_hung_coroutine_is_cancelled_on_its_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hung=HUNG_COROUTINE)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_hung.py::test_hung: the test's call ran longer than 1s "
            "(the limit set by the --asgi-timeout option), so pytest-asgiref "
            "ended it. If it needs longer, raise the limit with "
            "@pytest.mark.asgi_timeout(N) or --asgi-timeout N (0 turns it "
            "off). What it was waiting for:",
            "pending tasks on the test's event loop 0x* "
            "(run by thread 'MainThread'): 1",
            "  task 'Task-*' running test_hung:",
            '    File "*test_hung.py", line *, in test_hung',
            "      await event.wait()",
            '    File "*locks.py", line *, in wait',
            "waiting threads:",
            "  (none)",
            "communicators (recent messages, oldest first):",
            "  (none)",
            "asgiref_core bridge threads:",
            "asgiref_core bridge waits:",
            "  (none)",
            "what pytest-asgiref did to end the test:",
            "  the test's thread 'MainThread': raised HangTimeout in task "
            "'Task-*' (at the await it is stuck in) on its event loop",
        ]
    )
    result.stdout.no_fnmatch_line("*from pytest-timeout*")


def test_hung_bridge_is_cancelled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bridge=HUNG_BRIDGE)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_bridge.py::test_bridge: the test's call ran longer than 1s *",
            "pending tasks on event loop 0x* (run by thread 'asgiref_core-loop-*'): 1",
            "  task 'Task-*' running _drive:",
            '    File "*test_bridge.py", line *, in never',
            "      await asyncio.Event().wait()",
            "waiting threads:",
            "  thread 'MainThread' waits in async_to_sync for task 'Task-*' on "
            "event loop 0x* (run by thread 'asgiref_core-loop-*'), called at "
            'File "*test_bridge.py", line *, in test_bridge',
            "asgiref_core bridge threads:",
            "  asgiref_core-loop-* (loop): idle",
            "asgiref_core bridge waits:",
            "  thread 'MainThread' is blocked in async_to_sync(test_bridge.never) "
            "until its coroutine finishes on <*>, called at "
            'File "*test_bridge.py", line *, in test_bridge',
            "what pytest-asgiref did to end the test:",
            "  the test's thread 'MainThread': raised HangTimeout in task "
            "'Task-*' (at the await it is stuck in), which its async_to_sync "
            "call awaited",
        ]
    )
    result.stdout.no_fnmatch_line("*from pytest-timeout*")


def test_hung_request_in_a_sync_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_http=HUNG_HTTP)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_http.py::test_http: the test's call ran longer than 1s *",
            "pending tasks on the portal's event loop 0x* "
            "(run by thread 'pytest_asgiref-portal'): 2",
            "  task 'ASGI http application test_http.silent' running silent:",
            '    File "*test_http.py", line *, in silent',
            "      await asyncio.Event().wait()  # never answers",
            "  task 'Task-*' running AsyncHttpClient.request:",
            "waiting threads:",
            "  thread 'MainThread' waits in a blocking pytest-asgiref call (the "
            "portal) for task 'Task-*' on event loop 0x* (run by thread "
            "'pytest_asgiref-portal'), called at File \"*test_http.py\", line *, "
            "in test_http",
            "the test's thread 'MainThread' is at (innermost last):",
            '  File "*test_http.py", line *, in test_http',
            '    asgi_http.get("/slow", timeout=60)',
            "communicators (recent messages, oldest first):",
            "  held by task 'Task-*': <HttpCommunicator test_http.silent running, "
            "1 message(s) in transcript>",
            "     *s ago  to app    {'type': 'http.request', 'body': b'', "
            "'more_body': False}",
            "what pytest-asgiref did to end the test:",
            "  the test's thread 'MainThread': cancelled its blocking call on the "
            "portal's event loop",
        ]
    )
    result.stdout.no_fnmatch_line("*from pytest-timeout*")


def test_hung_websocket_in_an_async_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ws=dedent(
            """
        import pytest


        async def app(scope, receive, send):
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hello"})
            await receive()  # waits for the client for good


        @pytest.mark.asyncio
        @pytest.mark.asgi_app(app=app, lifespan="off")
        async def test_ws(asgi_websocket):
            socket = asgi_websocket("/chat")
            await socket.connect()
            assert await socket.receive_from() == "hello"
            await socket.receive_from(timeout=60)
        """
        )
        + AFTER
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_ws.py::test_ws: the test's call ran longer than 1s *",
            "pending tasks on the test's event loop 0x* "
            "(run by thread 'MainThread'): 2",
            "  task 'Task-*' running test_ws:",
            '    File "*test_ws.py", line *, in test_ws',
            "      await socket.receive_from(timeout=60)",
            "  task 'ASGI websocket application test_ws.app' running app:",
            "      await receive()  # waits for the client for good",
            "communicators (recent messages, oldest first):",
            "  asgi_websocket: <WebsocketCommunicator test_ws.app running, "
            "3 message(s) in transcript>",
            "     *s ago  to app    {'type': 'websocket.connect'}",
            "     *s ago  from app  {'type': 'websocket.accept'}",
            "     *s ago  from app  {'type': 'websocket.send', 'text': 'hello'}",
            "asgiref_core bridge threads:",
        ]
    )


def test_hung_async_fixture_fails_the_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_setup=dedent(
            """
        import asyncio

        import pytest
        import pytest_asyncio


        @pytest_asyncio.fixture
        async def database():
            await asyncio.Event().wait()


        @pytest.mark.asyncio
        async def test_uses_it(database):
            pass
        """
        )
        + AFTER
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_uses_it*",
            "test_setup.py::test_uses_it: the test's setup ran longer than 1s *",
            "  task 'Task-*' running *setup:",
            '    File "*test_setup.py", line *, in database',
            "      await asyncio.Event().wait()",
        ]
    )


def test_test_that_ignores_cancellation_is_interrupted(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_plain=dedent(
            """
        import threading


        def test_waits_for_good():
            threading.Event().wait()
        """
        )
        + AFTER
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=0.5", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_plain.py::test_waits_for_good: the test's call ran longer than "
            "0.5s *",
            "the test's thread 'MainThread' is at (innermost last):",
            '  File "*test_plain.py", line *, in test_waits_for_good',
            "    threading.Event().wait()",
            "  the test's thread 'MainThread': waits in nothing that can be cancelled",
            "The test did not end when cancelled; its thread was interrupted "
            "with signal SIGUSR2.",
        ]
    )


# -- deadlocks ---------------------------------------------------------------------


def test_deadlock_cycle_fails_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cycle=DEADLOCK)
    result = pytester.runpytest_subprocess("--asgi-timeout=20", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_cycle.py::test_deadlock: a deadlock stopped the test's call "
            "after *s, so pytest-asgiref failed it without waiting for the 20s "
            "limit set by the --asgi-timeout option:",
            "deadlock: thread 'asgiref_core-thread-sensitive-*' waits for event "
            "loop 0x* (run by thread 'pytest_asgiref-portal'), which waits for "
            "thread 'asgiref_core-thread-sensitive-*'",
            "  thread 'asgiref_core-thread-sensitive-*' waits in a blocking "
            "pytest-asgiref call (the portal) for task 'Task-*' on event loop 0x* "
            "(run by thread 'pytest_asgiref-portal'), called at "
            'File "*test_cycle.py", line *, in view',
            "  task 'Task-*' waits for the application task 'ASGI http "
            "application test_cycle.app' through its communicator",
            "  task 'ASGI http application test_cycle.app' awaits thread-sensitive "
            "sync_to_async(test_cycle.view), queued on thread "
            "'asgiref_core-thread-sensitive-*', which cannot run it before its "
            "own wait ends",
            "asgiref_core bridge threads:",
            "  asgiref_core-thread-sensitive-* (thread-sensitive): running "
            'test_cycle.view, called at File "*test_cycle.py", line *, in app; '
            'now at File "*test_cycle.py", line *, in view',
            "what pytest-asgiref did to end the test:",
            "  the test's thread 'MainThread': cancelled its blocking call on the "
            "portal's event loop",
            "  thread 'asgiref_core-thread-sensitive-*': cancelled its blocking "
            "call on the portal's event loop",
        ]
    )
    result.stdout.no_fnmatch_line("*possible deadlock*")
    result.stdout.no_fnmatch_line("*ran longer than*")


def test_a_deadlock_late_in_a_long_phase_is_still_caught_early(
    pytester: pytest.Pytester,
) -> None:
    # Four healthy seconds first: the checks have spaced out by then.
    late = "import time\n" + DEADLOCK.replace(
        "    CLIENT.append(asgi_http)\n",
        "    time.sleep(4)\n    CLIENT.append(asgi_http)\n",
    )
    assert late != "import time\n" + DEADLOCK
    pytester.makepyfile(test_late=late)
    result = pytester.runpytest_subprocess("--asgi-timeout=20", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["test_late.py::test_deadlock: a deadlock stopped the test's call after *"]
    )
    after = re.search(r"stopped the test's call after ([\d.]+)s", result.stdout.str())
    assert after is not None
    # Four seconds of sleep, then at most two between checks and a second
    # look to confirm: well under the 20 s limit.
    assert 4 <= float(after.group(1)) < 8


def test_no_deadlock_is_reported_for_a_slow_test(pytester: pytest.Pytester) -> None:
    """Waits that end by themselves (a slow app, a bridge) are no deadlock."""
    pytester.makepyfile(
        test_slow="""
        import asyncio
        import time

        import pytest

        from asgiref_core.sync import async_to_sync, sync_to_async


        def work():
            time.sleep(0.4)
            return async_to_sync(asyncio.sleep)(0.4, "slept")


        async def app(scope, receive, send):
            await receive()
            body = (await sync_to_async(work)()).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})


        @pytest.mark.asgi_app(app=app, lifespan="off")
        def test_slow_sync(asgi_http):
            assert asgi_http.get("/", timeout=10).body == b"slept"


        @pytest.mark.asyncio
        @pytest.mark.asgi_app(app=app, lifespan="off")
        async def test_slow_async(asgi_http):
            assert (await asgi_http.get("/", timeout=10)).body == b"slept"
        """
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=10", BACKSTOP)
    result.assert_outcomes(passed=2)


# -- pytest-timeout ----------------------------------------------------------------


def test_pytest_timeout_signal_method_gets_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_http=HUNG_HTTP)
    result = pytester.runpytest_subprocess("--timeout=1", "--timeout-method=signal")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "E*Failed: Timeout (>1.0s) from pytest-timeout.",
            "*- asgiref hang report -*",
            "test_http.py::test_http: pytest-timeout fired after 1s (signal "
            "method). What the test was waiting for:",
            "pending tasks on the portal's event loop 0x* (run by thread "
            "'pytest_asgiref-portal'): 2",
            "  task 'ASGI http application test_http.silent' running silent:",
            "  thread 'MainThread' waits in a blocking pytest-asgiref call (the "
            "portal) for task 'Task-*' *",
            '  File "*test_http.py", line *, in test_http',
            "  held by task 'Task-*': <HttpCommunicator test_http.silent running, "
            "1 message(s) in transcript>",
            "     *s ago  to app    {'type': 'http.request', *}",
        ]
    )


def test_pytest_timeout_thread_method_gets_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_hung=HUNG_COROUTINE)
    result = pytester.runpytest_subprocess("--timeout=1", "--timeout-method=thread")
    # The thread method ends the process; the report comes before its dump.
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*+ asgiref hang report +*",
            "test_hung.py::test_hung: pytest-timeout fired after 1s (thread "
            "method). What the test was waiting for:",
            "pending tasks on the test's event loop 0x* (run by thread "
            "'MainThread'): 1",
            "  task 'Task-*' running test_hung:",
            "      await event.wait()",
            "*+ Timeout +*",
        ]
    )


def test_asgi_timeout_fires_before_a_longer_pytest_timeout(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_bridge=HUNG_BRIDGE)
    result = pytester.runpytest_subprocess(
        "--asgi-timeout=1", "--timeout=20", "--timeout-method=thread"
    )
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*the test's call ran longer than 1s*"])
    result.stdout.no_fnmatch_line("*pytest-timeout fired*")


# -- the marker, the ini key and bad values ------------------------------------------


MARKED = """
import asyncio
import time

import pytest


@pytest.mark.asgi_timeout(0.5)
@pytest.mark.asyncio
async def test_marked():
    await asyncio.Event().wait()


@pytest.mark.asgi_timeout(0)
def test_unlimited():
    time.sleep(1.5)
"""


def test_marker_overrides_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_marked.py::test_marked: the test's call ran longer than 0.5s "
            "(the limit set by @pytest.mark.asgi_timeout(0.5)), so "
            "pytest-asgiref ended it. *",
        ]
    )


def test_marker_works_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_subprocess(BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*ran longer than 0.5s (the limit set by @pytest.mark.asgi_timeout(0.5))*"]
    )


def test_marker_accepts_seconds_by_keyword(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_kw="""
        import time

        import pytest


        @pytest.mark.asgi_timeout(seconds=0.5)
        def test_kw():
            time.sleep(30)
        """
    )
    result = pytester.runpytest_subprocess(BACKSTOP)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ran longer than 0.5s (the limit set by @pytest.mark.asgi_timeout(0.5))*"]
    )


def test_ini_key_sets_the_limit(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_timeout = 1")
    pytester.makepyfile(test_hung=HUNG_COROUTINE)
    result = pytester.runpytest_subprocess(BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*the test's call ran longer than 1s (the limit set by the "
            "asgi_timeout ini key in tox.ini)*"
        ]
    )


def test_option_beats_ini_key(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_timeout = 20")
    pytester.makepyfile(test_hung=HUNG_COROUTINE)
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*ran longer than 1s (the limit set by the --asgi-timeout option)*"]
    )


def test_zero_turns_the_limit_off(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_timeout = 0.2")
    pytester.makepyfile(
        test_slow="""
        import time


        def test_slow():
            time.sleep(0.6)
        """
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=0")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["asgiref: * timeout=off"])


def test_report_header_shows_the_limit(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--asgi-timeout=2.5")
    result.stdout.fnmatch_lines(["asgiref: * timeout=2.5s"])


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", ""])
def test_bad_option_value_is_a_usage_error(
    pytester: pytest.Pytester, value: str
) -> None:
    result = pytester.runpytest_subprocess(f"--asgi-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the --asgi-timeout option: {value!r} is not a valid "
            "asgi_timeout; give a number of seconds such as 30 or 2.5, or 0 to "
            "turn the limit off"
        ]
    )


def test_bad_ini_value_is_a_usage_error(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_timeout = a minute")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the asgi_timeout ini key in tox.ini: 'a minute' is not a "
            "valid asgi_timeout; *"
        ]
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            "'soon'",
            "@pytest.mark.asgi_timeout: 'soon' is not a valid time limit; give "
            "a number of seconds such as 5 or 2.5, or 0 to turn the limit off "
            "for this test",
        ),
        ("-2", "@pytest.mark.asgi_timeout: -2 is not a valid time limit; *"),
        ("True", "@pytest.mark.asgi_timeout: True is not a valid time limit; *"),
        (
            "1, 2",
            "@pytest.mark.asgi_timeout: takes one number of seconds, such as "
            "@pytest.mark.asgi_timeout(5) (got args=(1, 2), kwargs={})",
        ),
        (
            "1, seconds=2",
            "@pytest.mark.asgi_timeout: takes one number of seconds, *",
        ),
        (
            "limit=2",
            "@pytest.mark.asgi_timeout: unknown option(s) limit (valid: seconds)",
        ),
    ],
)
def test_bad_marker_fails_the_test(
    pytester: pytest.Pytester, arguments: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=dedent(
            f"""
        import pytest


        @pytest.mark.asgi_timeout({arguments})
        def test_marked():
            pass
        """
        )
        + AFTER
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=5")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([f"test_bad.py::test_marked: {message}"])
