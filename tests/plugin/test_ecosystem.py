"""The fixtures among other plugins and a real framework.

pytest-timeout stops a test whose application hangs, and the run carries on;
pytest-xdist runs a mixed sync and async module with lifespans in two
workers; a blocking object used on the portal's own loop raises instead of
deadlocking; a Starlette application is tested through the fixtures in sync
and async tests alike. Everything touching threads, signals or worker
processes runs the inner session in a subprocess.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = pytest.mark.timeout(120)

Ini = Callable[..., None]

SLOW_APP = """
import asyncio
import time


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    if scope["path"] == "/blocks":
        time.sleep(3)  # a sync call that blocks the event loop it runs on
    elif scope["path"] == "/hangs":
        await asyncio.Event().wait()  # waits for something that never happens
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
"""


def test_timeout_stops_a_hanging_app_and_the_run_goes_on(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makepyfile(
        slow=SLOW_APP,
        test_slow="""
        import pytest

        import slow

        pytestmark = pytest.mark.asgi_app(app=slow.app)

        def test_app_blocks_in_a_sync_call(asgi_http):
            asgi_http.get("/blocks", timeout=60)

        def test_next_after_blocking(asgi_http):
            assert asgi_http.get("/").body == b"done"

        def test_app_hangs(asgi_http):
            asgi_http.get("/hangs", timeout=60)

        def test_next_after_hanging(asgi_http):
            assert asgi_http.get("/").body == b"done"

        @pytest.mark.asyncio
        async def test_async_app_hangs(asgi_http):
            await asgi_http.get("/hangs", timeout=60)

        @pytest.mark.asyncio
        async def test_next_async(asgi_http):
            assert (await asgi_http.get("/")).body == b"done"
        """,
    )
    result = pytester.runpytest_subprocess("--timeout", "2", timeout=60)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        [
            "FAILED test_slow.py::test_app_blocks_in_a_sync_call - Failed: Timeout*",
            "FAILED test_slow.py::test_app_hangs - Failed: Timeout*",
            "FAILED test_slow.py::test_async_app_hangs - Failed: Timeout*",
        ],
        consecutive=True,
    )
    # The stack dump shows where the application is stuck: in the portal.
    result.stdout.fnmatch_lines(["*Stack of pytest_asgiref-portal*", "*time.sleep(3)*"])


MIXED_TESTS = """
import asyncio
import threading

import pytest

import counted

pytestmark = pytest.mark.asgi_app(app=counted.app, lifespan_scope="{scope}")


@pytest.mark.parametrize("n", range(4))
def test_sync(asgi_http, asgi_state, n):
    assert asgi_http.get("/").body == b"on pytest_asgiref-portal"
    assert asgi_state["pid"] == counted.os.getpid()


@pytest.mark.parametrize("n", range(4))
@pytest.mark.asyncio(loop_scope="{scope}")
async def test_async(asgi_http, asgi_state, n):
    assert (await asgi_http.get("/")).body == b"on MainThread"
    assert asgi_state["loop"] is asyncio.get_running_loop()
"""

COUNTED_APP = """
import asyncio
import os
import threading


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        scope["state"].update(pid=os.getpid(), loop=asyncio.get_running_loop())
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    body = f"on {threading.current_thread().name}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def test_xdist_runs_mixed_sync_and_async_tests(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makepyfile(
        counted=COUNTED_APP,
        test_function_scope=MIXED_TESTS.replace("{scope}", "function"),
        test_module_scope=MIXED_TESTS.replace("{scope}", "module"),
        test_session_scope=MIXED_TESTS.replace("{scope}", "session"),
    )
    result = pytester.runpytest_subprocess("-n", "2", "-W", "error", timeout=60)
    result.assert_outcomes(passed=24)
    result.stdout.fnmatch_lines(["*2 workers [[]24 items[]]*"])


MISUSE_TESTS = """
import pytest

# What the application calls on /nested: a blocking fixture object's method,
# handed over by the test. The application runs on the portal's loop.
BORROWED = []


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] == "/nested":
        BORROWED[0]()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


pytestmark = pytest.mark.asgi_app(app=app)

MESSAGE = (
    "a blocking pytest-asgiref object was used on the portal's own event loop, "
    "where waiting for it would deadlock; inside the application or an async "
    "function, await the async API instead"
)


def test_blocking_client_inside_the_app(asgi_http):
    BORROWED[:] = [lambda: asgi_http.get("/")]
    with pytest.raises(RuntimeError) as raised:
        asgi_http.get("/nested")
    assert str(raised.value) == MESSAGE
    # The portal still serves the test.
    assert asgi_http.get("/").body == b"ok"


def test_blocking_communicator_inside_the_app(asgi_http, asgi_communicator):
    BORROWED[:] = [asgi_communicator.receive_nothing]
    with pytest.raises(RuntimeError, match="the portal's own event loop"):
        asgi_http.get("/nested")


def test_the_error_fails_an_unprepared_test(asgi_http, asgi_websocket):
    BORROWED[:] = [asgi_websocket("/").connect]
    asgi_http.get("/nested")
"""


def test_blocking_objects_refuse_the_portal_loop(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makepyfile(test_misuse=MISUSE_TESTS)
    result = pytester.runpytest_subprocess(timeout=60)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_the_error_fails_an_unprepared_test _*",
            "E   *RuntimeError: a blocking pytest-asgiref object was used on the "
            "portal's own event loop*",
        ]
    )


def test_an_app_that_ignores_cancellation_does_not_hang_the_session(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makepyfile(
        test_stubborn="""
        import asyncio

        import pytest

        async def app(scope, receive, send):
            if scope["type"] != "websocket":
                return
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    pass  # never do this

        @pytest.mark.asgi_app(app=app)
        def test_left_open(asgi_websocket):
            asgi_websocket("/").connect()

        def test_next():
            pass
        """
    )
    result = pytester.runpytest_subprocess(timeout=30)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_stubborn.py::test_left_open: asgi_websocket: the application "
            "raised after the test's last read: RuntimeError: the application "
            "test_stubborn.app was cancelled but did not stop within 1.0s; it "
            "must let asyncio.CancelledError propagate*",
        ]
    )


def test_an_anyio_test_is_told_what_to_do(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytest.importorskip("anyio")
    pytester.makepyfile(
        test_anyio="""
        import pytest

        async def app(scope, receive, send):
            pass

        @pytest.mark.asgi_app(app=app)
        @pytest.mark.anyio
        async def test_run_by_anyio(asgi_http):
            await asgi_http.get("/")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_anyio.py::test_run_by_anyio[[]asyncio]: this async test is not "
            "run by pytest-asyncio (it is unmarked, or another plugin such as "
            "anyio's runs it), so the asgi_* fixtures cannot serve it on its "
            "event loop; mark it with @pytest.mark.asyncio or set "
            "asyncio_mode = auto",
        ]
    )


STARLETTE_APP = """
import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

STARTED = []


@contextlib.asynccontextmanager
async def lifespan(app):
    STARTED.append("startup")
    yield {"menu": {"tea": 3, "cake": 4}}
    STARTED.append("shutdown")


async def menu(request):
    return JSONResponse(request.state.menu)


async def order(request):
    wanted = await request.json()
    prices = request.state.menu
    missing = [item for item in wanted if item not in prices]
    if missing:
        return JSONResponse({"unknown": missing}, status_code=422)
    return JSONResponse({"total": sum(prices[item] for item in wanted)}, 201)


async def kitchen(websocket):
    await websocket.accept()
    async for item in websocket.iter_json():
        if item not in websocket.state.menu:
            await websocket.close(code=4004, reason=f"no {item}")
            return
        await websocket.send_json({"cooking": item})


app = Starlette(
    routes=[
        Route("/menu", menu),
        Route("/orders", order, methods=["POST"]),
        WebSocketRoute("/kitchen", kitchen),
    ],
    lifespan=lifespan,
)
"""

STARLETTE_TESTS = """
import asyncio

import pytest

import cafe

pytestmark = [pytest.mark.asgi_app(app=cafe.app){marks}]


{async_}def test_menu_comes_from_the_lifespan_state(asgi_http, asgi_state):
    assert cafe.STARTED == ["startup"]
    response = {await_}asgi_http.get("/menu")
    assert response.status == 200
    assert response.json() == asgi_state["menu"] == {"tea": 3, "cake": 4}


{async_}def test_order(asgi_http):
    response = {await_}asgi_http.post("/orders", json=["tea", "cake"])
    assert (response.status, response.json()) == (201, {"total": 7})


{async_}def test_order_something_missing(asgi_http):
    response = {await_}asgi_http.post("/orders", json=["soup"])
    assert (response.status, response.json()) == (422, {"unknown": ["soup"]})


{async_}def test_wrong_method(asgi_http):
    response = {await_}asgi_http.put("/orders", json=[])
    assert response.status == 405


{async_}def test_kitchen(asgi_websocket):
    ws = asgi_websocket("/kitchen")
    assert ({await_}ws.connect()).accepted
    {await_}ws.send_json_to("tea")
    assert {await_}ws.receive_json_from() == {"cooking": "tea"}
    {await_}ws.send_json_to("soup")
    assert {await_}ws.receive_close() == (4004, "no soup")


{async_}def test_kitchen_client_leaves(asgi_websocket):
    ws = asgi_websocket("/kitchen")
    {await_}ws.connect()
    {await_}ws.disconnect()


{async_}def test_every_lifespan_ended():
    assert cafe.STARTED == ["startup", "shutdown"] * 6
"""


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_starlette_app(
    pytester: pytest.Pytester, inner_ini: Ini, is_async: bool
) -> None:
    pytest.importorskip("starlette")
    tests = (
        STARLETTE_TESTS.replace("{async_}", "async " if is_async else "")
        .replace("{await_}", "await " if is_async else "")
        .replace("{marks}", ", pytest.mark.asyncio" if is_async else "")
    )
    pytester.makepyfile(cafe=STARLETTE_APP, test_cafe=tests)
    result = pytester.runpytest_subprocess("-W", "error")
    result.assert_outcomes(passed=7)


def test_a_starlette_app_with_a_module_wide_lifespan(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytest.importorskip("starlette")
    pytester.makepyfile(
        cafe=STARLETTE_APP,
        test_cafe="""
        import asyncio

        import pytest

        import cafe

        pytestmark = [
            pytest.mark.asgi_app(app=cafe.app, lifespan_scope="module"),
            pytest.mark.asyncio(loop_scope="module"),
        ]

        async def test_one(asgi_http):
            assert (await asgi_http.get("/menu")).json()["tea"] == 3

        async def test_two(asgi_state):
            asgi_state["menu"]["soup"] = 5

        async def test_three(asgi_http):
            response = await asgi_http.post("/orders", json=["soup"])
            assert response.json() == {"total": 5}
            assert cafe.STARTED == ["startup"]
        """,
    )
    result = pytester.runpytest_subprocess("-W", "error")
    result.assert_outcomes(passed=3)
