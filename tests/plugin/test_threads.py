"""The thread and task leak check: --asgi-strict-threads and its warnings.

Every inner run is a subprocess: the check wraps ``threading.Thread.start``
and watches real threads. Leaked threads in the inner tests wait on an event
with a timeout, so that each inner run ends on its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("sample_apps")]

Ini = Callable[..., None]

SUMMARY = "*= pytest-asgiref: threads and tasks left behind =*"

# Applications for the inner runs, next to the shared sample apps.
LEAKY_APPS = '''
import asyncio
import threading

from asgiref_core.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

from apps import run_lifespan

STOP = threading.Event()


def work():
    return async_to_sync(asyncio.sleep)(0)


async def bridged(scope, receive, send):
    """Crosses every bridge on each request, and cleans up after itself."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    await receive()
    await sync_to_async(work)()
    await sync_to_async(work, thread_sensitive=False)()
    async with ThreadSensitiveContext():
        await sync_to_async(work)()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def spawning(scope, receive, send):
    """Starts a thread per request and never stops it."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    await receive()
    poller = threading.Thread(target=STOP.wait, args=(2,), name="app-poller")
    poller.daemon = False  # not a daemon like the thread that starts it
    poller.start()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def backgrounding(scope, receive, send):
    """Leaves a task behind on its loop for each request."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    await receive()
    asyncio.get_running_loop().create_task(ticker(), name="app-ticker")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def ticker():
    while True:
        await asyncio.sleep(60)
'''

CLEAN_TESTS = """
import asyncio
import io

import pytest
from asgiref_core.server import StatelessServer
from asgiref_core.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

pytestmark = pytest.mark.asgi_app("leaky_apps:bridged")


class EchoServer(StatelessServer):
    pass


async def echo_server_app(scope, receive, send):
    while True:
        message = await receive()
        await send({"type": "reply", "text": message["text"]})


def environ():
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "test",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
    }


def test_http(asgi_http):
    assert asgi_http.get("/").status == 200


@pytest.mark.asyncio
async def test_http_async(asgi_http):
    assert (await asgi_http.get("/")).status == 200


@pytest.mark.asgi_app("apps:echo")
def test_websocket(asgi_websocket):
    with asgi_websocket("/ws") as socket:
        socket.connect()
        socket.receive_from()


@pytest.mark.asyncio
@pytest.mark.asgi_app("apps:echo")
async def test_websocket_async(asgi_websocket):
    socket = asgi_websocket("/ws")
    await socket.connect()
    await socket.receive_from()
    await socket.disconnect()


def test_communicator(asgi_communicator):
    asgi_communicator.send_input({"type": "http.request"})
    assert asgi_communicator.receive_output()["status"] == 200


def test_channel_layer(asgi_channel_layer):
    asgi_channel_layer.send("chat", {"type": "hello"})
    assert asgi_channel_layer.receive("chat") == {"type": "hello"}


@pytest.mark.asyncio
async def test_channel_layer_async(asgi_channel_layer):
    await asgi_channel_layer.send("chat", {"type": "hello"})
    assert await asgi_channel_layer.receive("chat") == {"type": "hello"}


@pytest.mark.asgi_app(app=echo_server_app)
def test_server(asgi_server):
    server = asgi_server(EchoServer)
    server.send("a", {"type": "chat"}, {"type": "message", "text": "hi"})
    assert server.receive("a")["text"] == "hi"


@pytest.mark.asyncio
@pytest.mark.asgi_app(app=echo_server_app)
async def test_server_async(asgi_server):
    server = asgi_server(EchoServer)
    await server.send("a", {"type": "chat"}, {"type": "message", "text": "hi"})
    assert (await server.receive("a"))["text"] == "hi"


def test_wsgi_view(asgi_wsgi_app):
    assert b"".join(asgi_wsgi_app(environ(), lambda *args: None)) == b"ok"


@pytest.mark.asgi_app("apps:wsgi")
def test_wrapped_wsgi_app(asgi_http):
    assert asgi_http.get("/x").body == b"wsgi saw /x"


def test_bridges_from_a_sync_test():
    async def inner():
        await sync_to_async(lambda: 1)()
        await sync_to_async(lambda: 1, thread_sensitive=False)()
        async with ThreadSensitiveContext():
            await sync_to_async(lambda: async_to_sync(asyncio.sleep)(0))()
    for _ in range(10):
        assert async_to_sync(inner)() is None


@pytest.mark.asyncio
async def test_bridges_from_an_async_test():
    await sync_to_async(lambda: 1)()
    await sync_to_async(lambda: 1, thread_sensitive=False)()
    await asyncio.get_running_loop().run_in_executor(None, lambda: 1)
    async with ThreadSensitiveContext():
        await sync_to_async(lambda: async_to_sync(asyncio.sleep)(0))()
"""

WIDE_LIFESPANS = """
import pytest
from asgiref_core.sync import sync_to_async

pytestmark = pytest.mark.asgi_app("leaky_apps:bridged", lifespan_scope="session")


def test_first(asgi_http):
    assert asgi_http.get("/").status == 200


def test_second(asgi_http):
    assert asgi_http.get("/").status == 200
"""

MODULE_LOOP = """
import pytest
from asgiref_core.sync import sync_to_async

pytestmark = [
    pytest.mark.asgi_app("leaky_apps:bridged", lifespan_scope="module"),
    pytest.mark.asyncio(loop_scope="module"),
]


async def test_first(asgi_http):
    # The module loop's default executor lives as long as the loop.
    await sync_to_async(lambda: 1, thread_sensitive=False)()
    assert (await asgi_http.get("/")).status == 200


async def test_second(asgi_http):
    assert (await asgi_http.get("/")).status == 200
"""


def _leaky_apps(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(leaky_apps=LEAKY_APPS)


# -- no false alarms -----------------------------------------------------------


def test_normal_bridge_use_passes_clean_under_the_flag(
    pytester: pytest.Pytester,
) -> None:
    _leaky_apps(pytester)
    pytester.makepyfile(
        test_clean=CLEAN_TESTS,
        test_wide_lifespans=WIDE_LIFESPANS,
        test_module_loop=MODULE_LOOP,
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads", "-W", "error"
    )
    result.assert_outcomes(passed=17)
    result.stdout.no_fnmatch_line(SUMMARY)
    result.stdout.fnmatch_lines(["asgiref: * strict_threads=on*"])


def test_finishing_threads_and_module_state_are_no_leaks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        started_on_import="""
        import threading

        STOP = threading.Event()
        threading.Thread(target=STOP.wait, args=(5,), name="import-time").start()
        """,
        test_grace="""
        import gc
        import threading
        import time
        from concurrent.futures import ThreadPoolExecutor


        def test_a_thread_that_ends_soon():
            threading.Thread(target=time.sleep, args=(0.2,), name="brief").start()


        def test_an_executor_left_to_the_garbage_collector():
            class Holder:
                pass

            holder = Holder()
            holder.me = holder  # a cycle: only the collector frees it
            holder.executor = ThreadPoolExecutor(thread_name_prefix="dropped")
            assert holder.executor.submit(lambda: 1).result() == 1
            gc.disable()


        def test_import_time_thread():
            gc.enable()
            import started_on_import

            started_on_import.STOP.set()
        """,
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line(SUMMARY)


# -- leaks caught ---------------------------------------------------------------


def test_a_thread_left_by_the_test_body_errors_at_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_leak="""
        import threading

        STOP = threading.Event()


        def test_leak():
            threading.Thread(target=STOP.wait, args=(3,), name="leaky").start()
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leak*",
            "test_leak.py::test_leak: left 1 thread running after teardown (the "
            "thread and task leak check is strict for this test)",
            "",
            "thread 'leaky' (non-daemon) is still running",
            "  belongs to: the test body of test_leak.py::test_leak",
            "  started by: thread 'MainThread'",
            "  started at (most recent call last):",
            '    File "*test_leak.py", line 7, in test_leak',
            '      threading.Thread(target=STOP.wait, args=(3,), name="leaky").start()',
            "  now running (most recent call last):",
            '    File "*threading.py", line *, in wait',
            "*",
            "A thread that lives on by design can be allowed by name: add a pattern "
            "to the asgi_allowed_threads ini key, or return it from the "
            "pytest_asgiref_allowed_threads hook.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            SUMMARY,
            "test_leak.py::test_leak (error, shown above): left 1 thread running",
            "  thread 'leaky' (non-daemon) is still running",
        ]
    )


def test_a_thread_started_in_a_fixture_is_blamed_on_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_fixture_leak="""
        import threading

        import pytest

        STOP = threading.Event()


        @pytest.fixture
        def poller():
            thread = threading.Thread(target=STOP.wait, args=(3,), name="poller")
            thread.daemon = True
            thread.start()
            yield thread


        def test_uses_it(poller):
            assert poller.is_alive()
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "thread 'poller' (daemon) is still running",
            "  belongs to: the setup of fixture 'poller'",
            "  started by: thread 'MainThread'",
            "  started at (most recent call last):",
            '    File "*test_fixture_leak.py", line 12, in poller',
            "      thread.start()",
        ]
    )


def test_a_wider_fixture_is_checked_when_it_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_module_fixture="""
        import threading

        import pytest


        @pytest.fixture(scope="session")
        def tidy():
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait, name="tidy")
            thread.start()
            yield
            stop.set()
            thread.join()


        @pytest.fixture(scope="module")
        def untidy():
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait, args=(3,), name="untidy")
            thread.daemon = True
            thread.start()
            yield


        def test_first(tidy, untidy):
            pass


        def test_second(tidy, untidy):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads", "-v"
    )
    # Neither fails the test that set it up; the module's thread outlives
    # the module, so the test whose teardown ended the module errors.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_first PASSED*",
            "*::test_second PASSED*",
            "*::test_second ERROR*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "test_module_fixture.py::test_second: left 1 thread running after *",
            "",
            "thread 'untidy' (daemon) is still running",
            "  belongs to: the setup of fixture 'untidy' (module scope)",
        ]
    )
    result.stdout.no_fnmatch_line("*thread 'tidy'*")


def test_a_thread_the_app_starts_is_caught(pytester: pytest.Pytester) -> None:
    _leaky_apps(pytester)
    pytester.makepyfile(
        test_app_leak="""
        import pytest


        @pytest.mark.asgi_app("leaky_apps:spawning")
        def test_request(asgi_http):
            assert asgi_http.get("/").status == 200
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "thread 'app-poller' (non-daemon) is still running",
            "  belongs to: the test body of test_app_leak.py::test_request",
            "  started by: thread 'pytest_asgiref-portal' (the portal's event "
            "loop, for sync tests)",
            "  started at (most recent call last):",
            '    File "*leaky_apps.py", line *, in spawning',
            "      poller.start()",
        ]
    )


def test_pending_tasks_are_reported_with_their_coroutine_stacks(
    pytester: pytest.Pytester,
) -> None:
    _leaky_apps(pytester)
    pytester.makepyfile(
        test_tasks="""
        import asyncio

        import pytest


        async def forever():
            await asyncio.sleep(3600)


        @pytest.mark.asyncio
        async def test_async():
            asyncio.get_running_loop().create_task(forever(), name="forgotten")


        @pytest.mark.asgi_app("leaky_apps:backgrounding")
        def test_sync_app(asgi_http):
            assert asgi_http.get("/").status == 200
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "test_tasks.py::test_async: left 1 task pending after teardown *",
            "",
            "task 'forgotten' (forever) is still pending",
            "  on: the test's event loop (function loop scope)",
            "  coroutine stack (most recent call last):",
            '    File "*test_tasks.py", line 7, in forever',
            "      await asyncio.sleep(3600)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "test_tasks.py::test_sync_app: left 1 task pending after teardown *",
            "",
            "task 'app-ticker' (ticker) is still pending",
            "  on: the portal's event loop (sync tests and their app)",
            "  coroutine stack (most recent call last):",
            '    File "*leaky_apps.py", line *, in ticker',
            "      await asyncio.sleep(60)",
        ]
    )


def test_leaked_bridge_executors_are_caught(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bridges="""
        import asyncio
        import threading

        import pytest
        from asgiref_core.sync import ThreadSensitiveContext, sync_to_async

        RELEASE = threading.Event()


        def stuck():
            RELEASE.wait(3)


        @pytest.mark.asyncio
        async def test_context_never_exited():
            context = ThreadSensitiveContext()
            await context.__aenter__()
            await sync_to_async(lambda: None)()


        @pytest.mark.asyncio
        async def test_call_still_running():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sync_to_async(stuck)(), 0.05)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "thread 'asgiref_core-thread-sensitive-context-*' (daemon) is still "
            "running",
            "  belongs to: the thread of a ThreadSensitiveContext that was never "
            "exited, which holds the thread until it is",
            "  first started during: the test body of "
            "test_bridges.py::test_context_never_exited",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "thread 'asgiref_core-thread-sensitive-*' (daemon) is still running",
            "  belongs to: asgiref_core's process-wide thread-sensitive executor, "
            "still running test_bridges.stuck",
            "*",
            "  now running (most recent call last):",
            "*",
            '    File "*test_bridges.py", line 11, in stuck',
            "      RELEASE.wait(3)",
        ]
    )


# -- warnings, markers, options -------------------------------------------------

LEAK = """
import asyncio
import threading

import pytest

STOP = threading.Event()


def test_leak():
    threading.Thread(target=STOP.wait, args=(3,), name="leaky", daemon=True).start()
"""


def test_without_the_flag_leaks_are_warnings_and_summarised(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_warned=LEAK
        + """

@pytest.mark.asyncio
async def test_task():
    asyncio.get_running_loop().create_task(asyncio.sleep(60), name="sleeper")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*PytestAsgiThreadLeakWarning: test_warned.py::test_leak left 1 "
            "thread(s) running after teardown: thread 'leaky' (started at "
            "test_warned.py:10); details under 'pytest-asgiref: threads and tasks "
            "left behind' at the end of the run, and --asgi-strict-threads makes "
            "it an error",
            "*PytestAsgiPendingTaskWarning: test_warned.py::test_task left 1 "
            "task(s) pending after teardown: task 'sleeper' (sleep)*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            SUMMARY,
            "test_warned.py::test_leak (warning): left 1 thread running",
            "",
            "  thread 'leaky' (daemon) is still running",
            "    belongs to: the test body of test_warned.py::test_leak",
            "*",
            "test_warned.py::test_task (warning): left 1 task pending",
            "",
            "  task 'sleeper' (sleep) is still pending",
        ]
    )


@pytest.mark.parametrize(
    "category",
    ["pytest_asgiref.PytestAsgiThreadLeakWarning", "pytest.PytestWarning"],
)
def test_a_warning_filter_makes_it_an_error(
    pytester: pytest.Pytester, category: str
) -> None:
    pytester.makepyfile(test_filtered=LEAK)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", f"error::{category}"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leak*",
            "pytest_asgiref.PytestAsgiThreadLeakWarning: test_filtered.py::"
            "test_leak left 1 thread(s) running after teardown: *",
            "",
            "thread 'leaky' (daemon) is still running",
            SUMMARY,
            "test_filtered.py::test_leak (error, shown above): left 1 thread running",
        ]
    )


def test_the_marker_opts_a_test_in_or_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import threading

        import pytest

        STOP = threading.Event()


        def leak(name):
            thread = threading.Thread(target=STOP.wait, args=(3,), name=name)
            thread.daemon = True
            thread.start()


        @pytest.mark.asgi_strict_threads(False)
        def test_opted_out():
            leak("out")


        @pytest.mark.asgi_strict_threads
        def test_bare_marker():
            leak("bare")


        @pytest.mark.asgi_strict_threads(strict=True)
        def test_opted_in():
            leak("in")


        def test_unmarked():
            leak("unmarked")
        """
    )
    flagged = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads", "-v"
    )
    flagged.assert_outcomes(passed=4, errors=3, warnings=1)
    flagged.stdout.fnmatch_lines(["*::test_opted_out PASSED*"])
    flagged.stdout.no_fnmatch_line("*ERROR at teardown of test_opted_out*")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    plain.assert_outcomes(passed=4, errors=2, warnings=2)
    plain.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_bare_marker*",
            "*ERROR at teardown of test_opted_in*",
        ]
    )


def test_the_marker_on_a_module_a_class_or_added_by_a_hook(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest


        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_marked_by_the_hook":
                    item.add_marker(pytest.mark.asgi_strict_threads)
        """
    )
    pytester.makepyfile(
        test_module_marked="""
        import threading

        import pytest

        pytestmark = pytest.mark.asgi_strict_threads

        STOP = threading.Event()


        def test_module_marker():
            threading.Thread(target=STOP.wait, args=(3,), name="module").start()
        """,
        test_class_marked="""
        import threading

        import pytest

        STOP = threading.Event()


        @pytest.mark.asgi_strict_threads
        class TestMarked:
            def test_class_marker(self):
                threading.Thread(target=STOP.wait, args=(3,), name="class").start()


        def test_marked_by_the_hook():
            threading.Thread(target=STOP.wait, args=(3,), name="hooked").start()


        def test_unmarked():
            threading.Thread(target=STOP.wait, args=(3,), name="unmarked").start()
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4, errors=3, warnings=1)
    result.stdout.fnmatch_lines_random(
        [
            "*ERROR at teardown of test_module_marker*",
            "*ERROR at teardown of TestMarked.test_class_marker*",
            "*ERROR at teardown of test_marked_by_the_hook*",
            "*PytestAsgiThreadLeakWarning: test_class_marked.py::test_unmarked left 1 "
            "thread(s) running*",
        ]
    )


def test_leaks_of_a_test_whose_teardown_failed_are_only_warnings(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_broken="""
        import threading

        import pytest

        STOP = threading.Event()


        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("the fixture's own teardown failed")


        def test_it(broken):
            threading.Thread(target=STOP.wait, args=(3,), name="leaky").start()
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    # One error, the fixture's: the leak does not replace it.
    result.assert_outcomes(passed=1, errors=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "*RuntimeError: the fixture's own teardown failed",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            SUMMARY,
            "test_broken.py::test_it (warning): left 1 thread running",
            "  thread 'leaky' (non-daemon) is still running",
        ]
    )


def test_a_misused_marker_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_misused="""
        import pytest


        @pytest.mark.asgi_strict_threads("yes")
        def test_it():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_misused.py::test_it: @pytest.mark.asgi_strict_threads takes one "
            "optional True or False (got args=('yes',), kwargs={}); write "
            "@pytest.mark.asgi_strict_threads(False) to only warn",
        ]
    )


def test_the_ini_key_turns_it_on(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_strict_threads = true")
    pytester.makepyfile(test_ini=LEAK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["asgiref: * strict_threads=on*"])


def test_the_header_says_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["asgiref: * strict_threads=off*"])


def test_a_bad_ini_value_is_a_usage_error(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_strict_threads = sometimes")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the asgi_strict_threads ini key in tox.ini: 'sometimes' is not "
            "a valid asgi_strict_threads (choose 'true', 'yes', 'on', '1', "
            "'false', 'no', 'off', '0')"
        ]
    )


def test_threads_allowed_by_the_ini_key_and_the_hook(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_allowed_threads =", "    cache-refresher-*")
    pytester.makeconftest(
        """
        def pytest_asgiref_allowed_threads(config):
            return ["metrics-pusher"]
        """
    )
    pytester.makepyfile(
        test_allowed="""
        import threading

        STOP = threading.Event()


        def start(name):
            thread = threading.Thread(target=STOP.wait, args=(3,), name=name)
            thread.daemon = True
            thread.start()


        def test_allowed():
            start("cache-refresher-1")
            start("metrics-pusher")


        def test_not_allowed():
            start("cache-refresher")
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads"
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_not_allowed*"])
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_allowed*")
