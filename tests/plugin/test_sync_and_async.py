"""One test module, written once, passes as sync tests and as async tests.

``NOTES_TESTS`` below is a template: every test is written as
``{async_}def test_x(asgi_http):`` with ``{await_}`` before each call that
talks to the application. Rendered with empty strings it is a module of
plain sync tests, which get blocking objects driven through the portal;
rendered with ``async `` and ``await `` it is a module of async tests, which
get the async objects on pytest-asyncio's loop. Both renderings must pass in
full, in pytest-asyncio's strict and auto modes and with function-, module-
and session-scoped loops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("notes_app")]

Ini = Callable[..., None]

NOTES_APP = r'''
"""A small note-taking service in raw ASGI: lifespan state, JSON routes, a
streaming upload, a server-sent event feed and a WebSocket."""
import asyncio
import json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    else:
        await http(scope, receive, send)


async def lifespan(scope, receive, send):
    await receive()
    # The store lives in the lifespan state; each request sees the same dict.
    scope["state"]["notes"] = {}
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive):
    chunks = []
    more_body = True
    while more_body:
        message = await receive()
        chunks.append(message.get("body", b""))
        more_body = message.get("more_body", False)
    return chunks


async def reply(send, status, data=None, content_type=b"application/json"):
    body = b"" if data is None else json.dumps(data).encode()
    headers = [(b"content-type", content_type)] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def add_note(notes, text):
    note = {"id": len(notes) + 1, "text": text}
    notes[note["id"]] = note
    return note


async def http(scope, receive, send):
    notes = scope["state"]["notes"]
    method, path = scope["method"], scope["path"]
    if path == "/feed":
        await feed(send)
        return
    chunks = await read_body(receive)
    if path == "/upload":
        size = sum(len(chunk) for chunk in chunks)
        await reply(send, 200, {"bytes": size, "chunks": len(chunks)})
    elif path == "/notes" and method == "POST":
        text = json.loads(b"".join(chunks))["text"]
        await reply(send, 201, add_note(notes, text))
    elif path == "/notes":
        await reply(send, 200, sorted(notes.values(), key=lambda n: n["id"]))
    elif path.startswith("/notes/"):
        note = notes.get(int(path.removeprefix("/notes/")))
        if note is None:
            await reply(send, 404, {"error": "no such note"})
        elif method == "DELETE":
            del notes[note["id"]]
            await reply(send, 204)
        else:
            await reply(send, 200, note)
    elif path == "/whoami":
        headers = dict(scope["headers"])
        await reply(send, 200, {"user": headers.get(b"x-user", b"").decode()})
    elif path == "/crash":
        raise ZeroDivisionError("the note counter divided by zero")
    elif path == "/broken":
        await send({"type": "http.response.start", "status": "200", "headers": []})
    else:
        await reply(send, 404, {"error": "no such page"})


async def feed(send):
    """Server-sent events: a numbered event every 10 ms until the client leaves."""
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    number = 0
    while True:
        number += 1
        event = f"data: event {number}\n\n".encode()
        await send({"type": "http.response.body", "body": event, "more_body": True})
        await asyncio.sleep(0.01)


async def websocket(scope, receive, send):
    """Adds a note for each JSON message; 'bye' closes the connection."""
    notes = scope["state"]["notes"]
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 1000, "reason": "bye"})
            continue
        note = add_note(notes, json.loads(message["text"])["text"])
        answer = json.dumps({"added": note["id"]})
        await send({"type": "websocket.send", "text": answer})
'''

# The same tests for both worlds. {async_} is "" or "async ", {await_} is ""
# or "await ", {marks} adds pytest-asyncio's marker where the mode needs it.
NOTES_TESTS = """
import inspect

import pytest

import notes
from asgiref_core.validate import ASGIProtocolError

pytestmark = [pytest.mark.asgi_app(app=notes.app){marks}]


{async_}def test_the_fixtures_fit_the_test(asgi_http):
    is_async = inspect.iscoroutinefunction(test_the_fixtures_fit_the_test)
    pending = asgi_http.get("/notes")
    assert inspect.isawaitable(pending) is is_async
    response = {await_}pending
    assert response.status == 200


# -- asgi_http: one call per request -----------------------------------------

{async_}def test_create_then_read_a_note(asgi_http):
    created = {await_}asgi_http.post("/notes", json={"text": "buy tea"})
    assert created.status == 201
    assert created.json() == {"id": 1, "text": "buy tea"}
    fetched = {await_}asgi_http.get("/notes/1")
    assert fetched.json() == created.json()
    listed = {await_}asgi_http.get("/notes")
    assert listed.json() == [{"id": 1, "text": "buy tea"}]


{async_}def test_delete_a_note(asgi_http):
    {await_}asgi_http.post("/notes", json={"text": "old"})
    deleted = {await_}asgi_http.delete("/notes/1")
    assert (deleted.status, deleted.body) == (204, b"")
    missing = {await_}asgi_http.get("/notes/1")
    assert missing.status == 404
    assert missing.json() == {"error": "no such note"}


{async_}def test_headers_reach_the_app(asgi_http):
    response = {await_}asgi_http.get("/whoami", headers=[(b"x-user", b"alice")])
    assert response.json() == {"user": "alice"}
    assert response.header("content-type") == "application/json"


{async_}def test_application_errors_reach_the_test(asgi_http):
    with pytest.raises(ZeroDivisionError, match="divided by zero"):
        {await_}asgi_http.get("/crash")


{async_}def test_protocol_violations_reach_the_test(asgi_http):
    with pytest.raises(ASGIProtocolError, match="http.response.start.status"):
        {await_}asgi_http.get("/broken")


# -- asgi_http: step by step ---------------------------------------------------

{async_}def test_upload_in_chunks(asgi_http):
    upload = asgi_http("POST", "/upload")
    {await_}upload.send_body(b"first,", more_body=True)
    {await_}upload.send_body(b"second")
    response = {await_}upload.get_response()
    assert response.json() == {"bytes": 12, "chunks": 2}


{async_}def test_read_three_events_then_leave(asgi_http):
    feed = asgi_http("GET", "/feed")
    response = {await_}feed.receive_response_start()
    assert response.header("content-type") == "text/event-stream"
    events = []
    {async_}for chunk in feed.iter_body():
        events.append(chunk.decode())
        if len(events) == 3:
            break
    {await_}feed.disconnect()
    assert events == [f"data: event {n}\\n\\n" for n in (1, 2, 3)]


{async_}def test_a_feed_left_open_is_closed_at_teardown(asgi_http):
    feed = asgi_http("GET", "/feed")
    assert {await_}feed.receive_body() == b"data: event 1\\n\\n"


# -- asgi_websocket ------------------------------------------------------------

{async_}def test_websocket_adds_notes(asgi_websocket, asgi_http):
    ws = asgi_websocket("/ws/notes")
    connection = {await_}ws.connect()
    assert connection.accepted
    {await_}ws.send_json_to({"text": "call mum"})
    assert {await_}ws.receive_json_from() == {"added": 1}
    {await_}ws.send_to("bye")
    assert {await_}ws.receive_close() == (1000, "bye")
    listed = {await_}asgi_http.get("/notes")
    assert listed.json() == [{"id": 1, "text": "call mum"}]


{async_}def test_websocket_client_leaves(asgi_websocket):
    ws = asgi_websocket("/ws/notes")
    {await_}ws.connect()
    {await_}ws.send_json_to({"text": "brb"})
    assert {await_}ws.receive_from() == '{"added": 1}'
    {await_}ws.disconnect()


{async_}def test_a_websocket_left_open_is_closed_at_teardown(asgi_websocket):
    ws = asgi_websocket("/ws/notes")
    assert ({await_}ws.connect()).accepted


# -- asgi_communicator ---------------------------------------------------------

{async_}def test_communicator_plays_the_server(asgi_communicator):
    assert asgi_communicator.scope["path"] == "/"
    assert {await_}asgi_communicator.receive_nothing()
    {await_}asgi_communicator.send_input({"type": "http.request", "body": b""})
    start = {await_}asgi_communicator.receive_output()
    assert (start["type"], start["status"]) == ("http.response.start", 404)
    body = {await_}asgi_communicator.receive_output()
    assert body["body"] == b'{"error": "no such page"}'
    {await_}asgi_communicator.wait()


# -- lifespan state ------------------------------------------------------------

{async_}def test_state_is_shared_with_the_app(asgi_state, asgi_http):
    assert asgi_state == {"notes": {}}
    asgi_state["notes"][7] = {"id": 7, "text": "put there by the test"}
    response = {await_}asgi_http.get("/notes/7")
    assert response.json()["text"] == "put there by the test"


{async_}def test_each_test_starts_with_a_fresh_state(asgi_state):
    assert asgi_state == {"notes": {}}


@pytest.mark.asgi_app(lifespan="off")
{async_}def test_driving_the_lifespan_by_hand(asgi_lifespan):
    {async_}with asgi_lifespan() as lifespan:
        assert lifespan.startup_outcome.complete
        assert lifespan.state == {"notes": {}}
    assert lifespan.shutdown_outcome.complete
"""

NOTES_TEST_COUNT = NOTES_TESTS.count("{async_}def test_")


def render(*, is_async: bool, marks: str = "") -> str:
    """The notes tests as sync or as async tests.

    Plain replacement rather than ``str.format``: the tests' own braces
    (dicts, f-strings) stay as they are.
    """
    return (
        NOTES_TESTS.replace("{async_}", "async " if is_async else "")
        .replace("{await_}", "await " if is_async else "")
        .replace("{marks}", marks)
    )


@pytest.fixture
def notes_app(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    pytester.makepyfile(notes=NOTES_APP)


def test_the_template_renders_both_ways() -> None:
    sync = render(is_async=False)
    for keyword in ("async def", "async for", "async with", "await "):
        assert keyword not in sync
    assert sync.count("\ndef test_") == NOTES_TEST_COUNT
    asynchronous = render(is_async=True)
    assert asynchronous.count("\nasync def test_") == NOTES_TEST_COUNT
    assert "async for chunk" in asynchronous
    assert "async with asgi_lifespan()" in asynchronous


def test_notes_as_sync_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_notes=render(is_async=False))
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=NOTES_TEST_COUNT)


@pytest.mark.parametrize("loop_scope", ["function", "module", "session"])
def test_notes_as_async_tests_in_strict_mode(
    pytester: pytest.Pytester, loop_scope: str
) -> None:
    marks = f", pytest.mark.asyncio(loop_scope={loop_scope!r})"
    pytester.makepyfile(test_notes=render(is_async=True, marks=marks))
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=NOTES_TEST_COUNT)


@pytest.mark.parametrize("loop_scope", ["function", "module", "session"])
def test_notes_as_async_tests_in_auto_mode(
    pytester: pytest.Pytester, inner_ini: Ini, loop_scope: str
) -> None:
    inner_ini("asyncio_mode = auto", f"asyncio_default_test_loop_scope = {loop_scope}")
    pytester.makepyfile(test_notes=render(is_async=True))
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=NOTES_TEST_COUNT)


def test_notes_both_ways_in_one_run(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asyncio_mode = auto")
    pytester.makepyfile(
        test_sync_notes=render(is_async=False),
        test_async_notes=render(is_async=True),
    )
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=2 * NOTES_TEST_COUNT)


def test_notes_both_ways_in_a_subprocess(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asyncio_mode = auto")
    pytester.makepyfile(
        test_sync_notes=render(is_async=False),
        test_async_notes=render(is_async=True),
    )
    result = pytester.runpytest_subprocess("-W", "error")
    result.assert_outcomes(passed=2 * NOTES_TEST_COUNT)


def test_fixtures_of_the_suite_build_on_the_plugin_fixtures(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_own_fixtures="""
        import pytest
        import pytest_asyncio

        import notes

        pytestmark = pytest.mark.asgi_app(app=notes.app)

        @pytest.fixture
        def first_note(asgi_http):
            return asgi_http.post("/notes", json={"text": "sync"}).json()

        @pytest_asyncio.fixture
        async def first_note_async(asgi_http):
            return (await asgi_http.post("/notes", json={"text": "async"})).json()

        def test_sync(first_note, asgi_http):
            assert asgi_http.get("/notes").json() == [first_note]

        @pytest.mark.asyncio
        async def test_async(first_note_async, asgi_http):
            assert (await asgi_http.get("/notes")).json() == [first_note_async]
        """
    )
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=2)


# -- which object a test gets --------------------------------------------------


def test_auto_mode_gives_unmarked_async_tests_the_async_objects(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asyncio_mode = auto")
    pytester.makepyfile(
        test_objects="""
        import pytest

        import notes
        from asgiref_core.testing import (
            ApplicationCommunicator,
            LifespanCommunicator,
            WebsocketCommunicator,
        )
        from pytest_asgiref._blocking import (
            BlockingCommunicator,
            BlockingHttpClient,
            BlockingLifespanFactory,
            BlockingWebsocketFactory,
        )
        from pytest_asgiref._clients import (
            AsyncHttpClient,
            AsyncLifespanFactory,
            AsyncWebsocketFactory,
        )

        pytestmark = pytest.mark.asgi_app(app=notes.app)

        FIXTURES = "asgi_http, asgi_websocket, asgi_communicator, asgi_lifespan"

        async def test_async(asgi_http, asgi_websocket, asgi_communicator,
                             asgi_lifespan):
            assert type(asgi_http) is AsyncHttpClient
            assert type(asgi_websocket) is AsyncWebsocketFactory
            assert type(asgi_websocket("/ws/notes")) is WebsocketCommunicator
            assert type(asgi_communicator) is ApplicationCommunicator
            assert type(asgi_lifespan) is AsyncLifespanFactory
            assert type(asgi_lifespan()) is LifespanCommunicator

        def test_sync(asgi_http, asgi_websocket, asgi_communicator, asgi_lifespan):
            assert type(asgi_http) is BlockingHttpClient
            assert type(asgi_websocket) is BlockingWebsocketFactory
            assert type(asgi_communicator) is BlockingCommunicator
            assert type(asgi_lifespan) is BlockingLifespanFactory
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_strict_mode_unmarked_async_tests_are_told_to_mark(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_unmarked="""
        import pytest

        import notes

        @pytest.mark.asgi_app(app=notes.app)
        async def test_unmarked(asgi_http):
            raise AssertionError("never runs")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_unmarked.py::test_unmarked: this async test is not run by "
            "pytest-asyncio (it is unmarked, or another plugin such as anyio's "
            "runs it), so the asgi_* fixtures cannot serve it on its event loop; "
            "mark it with @pytest.mark.asyncio or set asyncio_mode = auto",
        ]
    )
    result.stdout.no_fnmatch_line("*never runs*")


def test_the_portal_thread_ends_with_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_notes=render(is_async=False))
    result = pytester.runpytest()
    result.assert_outcomes(passed=NOTES_TEST_COUNT)
    portals = [t for t in threading.enumerate() if t.name == "pytest_asgiref-portal"]
    assert portals == []
