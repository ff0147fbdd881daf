"""The application's lifespan around the tests that drive it.

Modes 'auto', 'on' and 'off'; failed startups and shutdowns; the state
reaching request scopes; how many lifespans each ``lifespan_scope`` runs, in
sync tests (through the portal) and in async tests (on pytest-asyncio's loop
of the same scope); and the one loop that runs the lifespan, the application
and the test.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("lifespan_apps")]

Ini = Callable[..., None]

LIFESPAN_APPS = r'''
"""Applications with every kind of lifespan, recording what happens."""
import asyncio
import threading

# What happened, in order: "startup", "request /path", "shutdown"...
EVENTS = []
# Lifespans started and stopped.
COUNTS = {"startup": 0, "shutdown": 0}
# The loop and thread each lifespan startup and each request ran on.
LOOPS = {"lifespan": [], "request": []}
THREADS = set()


async def respond(scope, receive, send):
    await receive()
    body = repr(sorted(scope.get("state", {}).items())).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    """A well-behaved lifespan that puts the startup number in the state."""
    THREADS.add(threading.current_thread().name)
    if scope["type"] == "lifespan":
        await receive()
        COUNTS["startup"] += 1
        EVENTS.append("startup")
        LOOPS["lifespan"].append(asyncio.get_running_loop())
        scope["state"]["startup"] = COUNTS["startup"]
        await send({"type": "lifespan.startup.complete"})
        await receive()
        COUNTS["shutdown"] += 1
        EVENTS.append("shutdown")
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        EVENTS.append(f"request {scope['path']}")
        LOOPS["request"].append(asyncio.get_running_loop())
        await respond(scope, receive, send)
    else:
        await receive()
        await send({"type": "websocket.accept"})
        state = sorted(scope.get("state", {}).items())
        await send({"type": "websocket.send", "text": repr(state)})
        await receive()


async def no_lifespan(scope, receive, send):
    """Raises on the lifespan scope: the usual way to say 'unsupported'."""
    if scope["type"] == "lifespan":
        raise ValueError("no lifespan here")
    await respond(scope, receive, send)


async def returns_at_once(scope, receive, send):
    """Returns on anything but HTTP: also a way to say 'unsupported'."""
    if scope["type"] == "http":
        await respond(scope, receive, send)


async def failing_startup(scope, receive, send):
    """Reports a failed startup, then raises, as frameworks often do."""
    if scope["type"] == "lifespan":
        await receive()
        COUNTS["startup"] += 1
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        raise ConnectionError("no database")
    await respond(scope, receive, send)


async def failing_shutdown(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "cache not flushed"})
        return
    await respond(scope, receive, send)


async def crashing_shutdown(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise OSError("disk went away")
    await respond(scope, receive, send)


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]
'''

HEADER = """
import asyncio

import pytest

import lifespan_apps
from lifespan_apps import COUNTS, EVENTS, LOOPS, THREADS
"""


@pytest.fixture
def lifespan_apps(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    pytester.makepyfile(lifespan_apps=LIFESPAN_APPS)


def run(
    pytester: pytest.Pytester, body: str, *args: str, subprocess: bool = False
) -> pytest.RunResult:
    """Run ``body`` (below the shared imports) as an inner test file.

    In this process by default; ``subprocess`` for a run whose thread leak
    check must see one copy of asgiref_core: an in-process run imports some
    modules afresh (pytester restores ``sys.modules`` after each), so its
    threads can live in a copy of the library's pools that an earlier copy
    of the check does not read.
    """
    pytester.makepyfile(test_inner=HEADER + textwrap.dedent(body))
    if subprocess:
        return pytester.runpytest_subprocess(*args)
    return pytester.runpytest(*args)


# -- auto, on, off -------------------------------------------------------------


def test_startup_before_the_test_and_shutdown_after(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(app=lifespan_apps.app)

        def test_sync(asgi_http):
            assert EVENTS == ["startup"]
            asgi_http.get("/sync")
            EVENTS.append("test")

        @pytest.mark.asyncio
        async def test_async(asgi_http):
            assert EVENTS[-1] == "startup"
            await asgi_http.get("/async")
            EVENTS.append("test")

        def test_order():
            assert EVENTS == [
                "startup", "request /sync", "test", "shutdown",
                "startup", "request /async", "test", "shutdown",
            ]
        """,
    )
    result.assert_outcomes(passed=3)


def test_auto_is_the_default_and_skips_what_has_no_lifespan(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.asgi_app(app=lifespan_apps.app)
        def test_supported(asgi_http):
            assert COUNTS["startup"] == 1

        @pytest.mark.asgi_app(app=lifespan_apps.no_lifespan)
        def test_raises_on_lifespan(asgi_http):
            assert asgi_http.get("/").body == b"[]"

        @pytest.mark.asgi_app(app=lifespan_apps.no_lifespan)
        @pytest.mark.asyncio
        async def test_raises_on_lifespan_async(asgi_http):
            assert (await asgi_http.get("/")).body == b"[]"

        @pytest.mark.asgi_app(app=lifespan_apps.returns_at_once)
        def test_returns_at_once(asgi_http):
            assert asgi_http.get("/").body == b"[]"

        @pytest.mark.asgi_app(app=lifespan_apps.wsgi)
        def test_wsgi(asgi_http):
            assert asgi_http.get("/").body == b"wsgi"
        """,
        "-W",
        "error",
        subprocess=True,
    )
    result.assert_outcomes(passed=5)


def test_on_fails_for_an_app_without_lifespan(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.asgi_app(app=lifespan_apps.no_lifespan, lifespan="on")
        def test_unsupported(asgi_http):
            pass

        @pytest.mark.asgi_app(app=lifespan_apps.wsgi, lifespan="on")
        def test_wsgi(asgi_http):
            pass

        @pytest.mark.asgi_app(app=lifespan_apps.app, lifespan="on")
        def test_supported(asgi_http):
            assert EVENTS == ["startup"]
        """,
    )
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "test_inner.py::test_unsupported: @pytest.mark.asgi_app on "
            "test_inner.py::test_unsupported (lifespan='on'): the application "
            "does not support the lifespan protocol (lifespan not supported: the "
            "application lifespan_apps.no_lifespan raised ValueError('no "
            "lifespan here') on the lifespan scope); use lifespan='auto' to run "
            "without it",
            "test_inner.py::test_wsgi: * (lifespan='on'): a WSGI application "
            "has no lifespan; use lifespan='auto' or 'off'",
        ]
    )


def test_off_runs_no_lifespan(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(app=lifespan_apps.app, lifespan="off")

        def test_http(asgi_http, asgi_communicator):
            assert asgi_http.get("/").body == b"[]"
            assert "state" not in asgi_communicator.scope

        @pytest.mark.asyncio
        async def test_async(asgi_websocket):
            ws = asgi_websocket("/")
            await ws.connect()
            assert await ws.receive_from() == "[]"

        def test_nothing_ran():
            assert COUNTS == {"startup": 0, "shutdown": 0}
        """,
    )
    result.assert_outcomes(passed=3)


# -- failures ------------------------------------------------------------------


def test_a_failed_startup_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.asgi_app(app=lifespan_apps.failing_startup)
        def test_sync(asgi_http):
            pass

        @pytest.mark.asgi_app(app=lifespan_apps.failing_startup)
        @pytest.mark.asyncio
        async def test_async(asgi_http):
            pass
        """,
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_sync*",
            "test_inner.py::test_sync: @pytest.mark.asgi_app on "
            "test_inner.py::test_sync (lifespan='auto'): the application's "
            "lifespan startup failed: no database",
            "*ERROR at setup of test_async*",
            "test_inner.py::test_async: * the application's lifespan startup "
            "failed: no database",
        ]
    )
    # The application's own ConnectionError is not what the test reports.
    result.stdout.no_fnmatch_line("*ConnectionError*")


def test_a_failed_wide_startup_runs_once(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(
            app=lifespan_apps.failing_startup, lifespan_scope="module"
        )

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_each(asgi_http, n):
            pass

        def test_started_once():
            assert COUNTS["startup"] == 1
        """,
    )
    result.assert_outcomes(passed=1, errors=3)
    assert result.stdout.str().count("lifespan startup failed: no database") >= 3


SHUTDOWN_FAILURES = """
@pytest.mark.asgi_app(app=lifespan_apps.failing_shutdown)
{mark}
{async_}def test_failed(asgi_http):
    pass

@pytest.mark.asgi_app(app=lifespan_apps.crashing_shutdown, lifespan_scope="module")
{mark}
{async_}def test_crashed(asgi_http):
    pass
"""


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_failed_shutdown_is_reported(
    pytester: pytest.Pytester, is_async: bool
) -> None:
    body = SHUTDOWN_FAILURES.format(
        mark='@pytest.mark.asyncio(loop_scope="module")' if is_async else "",
        async_="async " if is_async else "",
    )
    result = run(pytester, body)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_failed*",
            "test_inner.py::test_failed: @pytest.mark.asgi_app on "
            "test_inner.py::test_failed (lifespan='auto'): the application's "
            "lifespan shutdown failed: cache not flushed",
            "*ERROR at teardown of test_crashed*",
            "test_inner.py: @pytest.mark.asgi_app on "
            "test_inner.py::test_crashed (lifespan='auto'): the application "
            "raised during lifespan shutdown: OSError: disk went away",
        ]
    )


# -- state ---------------------------------------------------------------------


def test_the_state_reaches_every_request_scope(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(app=lifespan_apps.app)

        def test_http(asgi_http, asgi_state):
            assert asgi_state == {"startup": 1}
            assert asgi_http.get("/").body == b"[('startup', 1)]"

        def test_websocket(asgi_websocket):
            ws = asgi_websocket("/")
            ws.connect()
            assert ws.receive_from() == "[('startup', 2)]"

        @pytest.mark.asyncio
        async def test_communicator(asgi_communicator, asgi_state):
            asgi_state["added by the test"] = True
            assert asgi_communicator.scope["state"] == {"startup": 3}
        """,
    )
    result.assert_outcomes(passed=3)


# -- lifespan_scope ------------------------------------------------------------

# Two packages of two modules, each with two plain tests and a class of two.
SCOPED_TESTS = """
import lifespan_apps

{mark}
{async_}def test_one(asgi_http):
    {await_}asgi_http.get("/")

{mark}
{async_}def test_two(asgi_state):
    assert asgi_state["startup"] == lifespan_apps.COUNTS["startup"]

class TestGroup:
    {mark}
    {async_}def test_three(self, asgi_http):
        {await_}asgi_http.get("/")

    {mark}
    {async_}def test_four(self, asgi_http, asgi_state):
        assert asgi_state["startup"] == lifespan_apps.COUNTS["startup"]
"""

SUMMARY = """
import lifespan_apps

def pytest_terminal_summary(terminalreporter):
    counts = lifespan_apps.COUNTS
    terminalreporter.write_line(
        f"lifespans: {counts['startup']} started, {counts['shutdown']} stopped"
    )
"""

# How many lifespans the 16 tests above run, for each lifespan_scope. A test
# outside a class is a class of its own, as for pytest's class fixtures.
EXPECTED_LIFESPANS = {
    "function": 16,
    "class": 12,
    "module": 4,
    "package": 2,
    "session": 1,
}


def write_scoped_tests(pytester: pytest.Pytester, *, is_async: bool) -> None:
    text = SCOPED_TESTS.format(
        mark="@pytest.mark.asyncio" if is_async else "",
        async_="async " if is_async else "",
        await_="await " if is_async else "",
    )
    text = "import pytest\n" + text
    pytester.makeconftest(SUMMARY)
    for package in ("shop", "till"):
        pytester.mkpydir(package)
        for module in ("test_a", "test_b"):
            pytester.path.joinpath(package, f"{module}.py").write_text(text)


@pytest.mark.parametrize("scope", list(EXPECTED_LIFESPANS))
def test_lifespan_scope_in_sync_tests(
    pytester: pytest.Pytester, inner_ini: Ini, scope: str
) -> None:
    inner_ini("asgi_app = lifespan_apps:app", f"asgi_lifespan_scope = {scope}")
    write_scoped_tests(pytester, is_async=False)
    result = pytester.runpytest()
    result.assert_outcomes(passed=16)
    expected = EXPECTED_LIFESPANS[scope]
    result.stdout.fnmatch_lines([f"lifespans: {expected} started, {expected} stopped"])


@pytest.mark.parametrize("scope", list(EXPECTED_LIFESPANS))
def test_lifespan_scope_in_async_tests(
    pytester: pytest.Pytester, inner_ini: Ini, scope: str
) -> None:
    inner_ini(
        "asgi_app = lifespan_apps:app",
        f"asgi_lifespan_scope = {scope}",
        f"asyncio_default_test_loop_scope = {scope}",
    )
    write_scoped_tests(pytester, is_async=True)
    result = pytester.runpytest()
    result.assert_outcomes(passed=16)
    expected = EXPECTED_LIFESPANS[scope]
    result.stdout.fnmatch_lines([f"lifespans: {expected} started, {expected} stopped"])


def test_module_lifespan_stops_when_the_module_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_first=HEADER
        + textwrap.dedent(
            """
            pytestmark = pytest.mark.asgi_app(
                app=lifespan_apps.app, lifespan_scope="module"
            )

            def test_one(asgi_http):
                asgi_http.get("/first-1")

            def test_two(asgi_http):
                asgi_http.get("/first-2")
            """
        ),
        test_second=HEADER
        + textwrap.dedent(
            """
            def test_order():
                assert EVENTS == [
                    "startup", "request /first-1", "request /first-2", "shutdown"
                ]
            """
        ),
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)


def test_sync_and_async_tests_each_get_a_lifespan_on_their_loop(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(
            app=lifespan_apps.app, lifespan_scope="module"
        )

        def test_sync_one(asgi_state):
            assert asgi_state["startup"] == 1

        @pytest.mark.asyncio(loop_scope="module")
        async def test_async_one(asgi_state):
            assert asgi_state["startup"] == 2
            assert LOOPS["lifespan"][-1] is asyncio.get_running_loop()

        def test_sync_two(asgi_state):
            assert asgi_state["startup"] == 1

        @pytest.mark.asyncio(loop_scope="module")
        async def test_async_two(asgi_state):
            assert asgi_state["startup"] == 2
        """,
    )
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize("scope", ["class", "module", "package", "session"])
def test_a_wide_lifespan_needs_a_wide_enough_async_loop(
    pytester: pytest.Pytester, scope: str
) -> None:
    result = run(
        pytester,
        f"""
        pytestmark = pytest.mark.asgi_app(
            app=lifespan_apps.app, lifespan_scope={scope!r}
        )

        class TestShop:
            @pytest.mark.asyncio
            async def test_function_loop(self, asgi_http):
                pass

            @pytest.mark.asyncio(loop_scope={scope!r})
            async def test_wide_loop(self, asgi_http):
                pass
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_inner.py::TestShop::test_function_loop: @pytest.mark.asgi_app "
            f"on test_inner.py (lifespan='auto'): lifespan_scope={scope!r} "
            "needs this async test's event loop to live as long, but "
            "pytest-asyncio runs it in a 'function'-scoped loop. Mark the tests "
            f"with @pytest.mark.asyncio(loop_scope={scope!r}) (or set "
            "asyncio_default_test_loop_scope), or use lifespan_scope='function'",
        ]
    )


def test_a_wider_async_loop_serves_a_narrower_lifespan(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        pytestmark = [
            pytest.mark.asgi_app(app=lifespan_apps.app, lifespan_scope="module"),
            pytest.mark.asyncio(loop_scope="session"),
        ]

        async def test_one(asgi_state):
            assert asgi_state["startup"] == 1

        async def test_two(asgi_state):
            assert asgi_state["startup"] == 1
        """,
    )
    result.assert_outcomes(passed=2)


# -- one loop ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loop_scope", "lifespan_scope"),
    [("function", "function"), ("module", "function"), ("module", "module")],
)
def test_async_tests_share_their_loop_with_the_app(
    pytester: pytest.Pytester, loop_scope: str, lifespan_scope: str
) -> None:
    result = run(
        pytester,
        f"""
        pytestmark = [
            pytest.mark.asgi_app(
                app=lifespan_apps.app, lifespan_scope={lifespan_scope!r}
            ),
            pytest.mark.asyncio(loop_scope={loop_scope!r}),
        ]

        @pytest.mark.parametrize("n", [1, 2])
        async def test_one_loop(asgi_http, asgi_websocket, n):
            loop = asyncio.get_running_loop()
            assert LOOPS["lifespan"][-1] is loop
            await asgi_http.get("/")
            assert LOOPS["request"][-1] is loop
            ws = asgi_websocket("/")
            await ws.connect()
            assert asyncio.current_task() is not None
            assert THREADS == {{"MainThread"}}
        """,
    )
    result.assert_outcomes(passed=2)


def test_sync_tests_share_the_portal_loop(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(app=lifespan_apps.app)

        def test_one(asgi_http):
            asgi_http.get("/")

        def test_two(asgi_http):
            asgi_http.get("/")
            asgi_http.get("/")

        def test_one_loop_for_all():
            loops = LOOPS["lifespan"] + LOOPS["request"]
            assert len(loops) == 5
            assert len(set(loops)) == 1
            assert THREADS == {"pytest_asgiref-portal"}
            with pytest.raises(RuntimeError):
                asyncio.get_running_loop()
        """,
    )
    result.assert_outcomes(passed=3)
