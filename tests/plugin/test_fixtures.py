"""The application fixtures: asgi_app, asgi_state, asgi_communicator, asgi_http,
asgi_websocket and asgi_lifespan.

Each inner run imports ``shop.py``, a raw ASGI application with one route per
behaviour under test. Most inner tests here are sync (blocking objects driven
through the portal); ``test_sync_and_async.py`` runs the same bodies as async
tests. Teardown is covered too: what a test left open is closed, and what the
application did wrong after the test's last read fails the test then.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("shop")]

Ini = Callable[..., None]

SHOP = r'''
"""A raw ASGI application: a lifespan with state, HTTP and WebSocket routes."""
import asyncio
import json

# What happened, in order: lifespan phases and the requests served.
EVENTS = []
# The tasks that ran the HTTP and WebSocket conversations.
TASKS = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    TASKS.append(asyncio.current_task())
    EVENTS.append(f"{scope['type']} {scope['path']}")
    if scope["type"] == "websocket":
        await WEBSOCKET_ROUTES[scope["path"]](scope, receive, send)
    else:
        await HTTP_ROUTES.get(scope["path"], echo)(scope, receive, send)


async def lifespan(scope, receive, send):
    await receive()
    scope["state"]["greeting"] = "hello"
    EVENTS.append("startup")
    await send({"type": "lifespan.startup.complete"})
    await receive()
    EVENTS.append("shutdown")
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive):
    chunks = []
    more_body = True
    while more_body:
        message = await receive()
        chunks.append(message.get("body", b""))
        more_body = message.get("more_body", False)
    return chunks


async def start(send, content_type=b"application/json", status=200):
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def echo(scope, receive, send):
    """Answers with what it got, as JSON (no body for HEAD)."""
    chunks = await read_body(receive)
    reply = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "body": b"".join(chunks).decode(),
        "chunks": len(chunks),
        "headers": {name.decode(): value.decode() for name, value in scope["headers"]},
        "greeting": scope.get("state", {}).get("greeting"),
    }
    body = b"" if scope["method"] == "HEAD" else json.dumps(reply).encode()
    await start(send)
    await send({"type": "http.response.body", "body": body})


async def event_stream(scope, receive, send):
    """Server-sent events, one every 10 ms, until the client leaves."""
    await start(send, b"text/event-stream")
    number = 0
    while True:
        number += 1
        chunk = f"data: {number}\n\n".encode()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(0.01)


async def late_error(scope, receive, send):
    await start(send, b"text/plain")
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    raise LookupError("the price list went missing")


async def late_violation(scope, receive, send):
    await start(send, b"text/plain")
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await start(send, b"text/plain")


async def bad_status(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": "200", "headers": []})
    await send({"type": "http.response.body", "body": b"bad"})


async def body_first(scope, receive, send):
    await receive()
    await send({"type": "http.response.body", "body": b"too soon"})


async def ws_echo(scope, receive, send):
    """Echoes text (JSON objects as JSON), reverses bytes; 'close' closes."""
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(f"disconnect {message['code']}")
            return
        text = message.get("text")
        if text == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
        elif text is not None and text.startswith("{"):
            reply = json.dumps({"echo": json.loads(text)})
            await send({"type": "websocket.send", "text": reply})
        elif text is not None:
            await send({"type": "websocket.send", "text": "echo: " + text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


async def ws_deny(scope, receive, send):
    await receive()
    headers = [(b"content-type", b"text/plain")]
    await send(
        {"type": "websocket.http.response.start", "status": 403, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": b"members only"})


HTTP_ROUTES = {
    "/events": event_stream,
    "/late-error": late_error,
    "/late-violation": late_violation,
    "/bad-status": bad_status,
    "/body-first": body_first,
}
WEBSOCKET_ROUTES = {"/ws": ws_echo, "/ws/members": ws_deny}


async def no_lifespan_app(scope, receive, send):
    if scope["type"] == "lifespan":
        raise ValueError("lifespan is not supported")
    await app(scope, receive, send)


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi saw " + environ["PATH_INFO"].encode()]
'''

HEADER = """
import asyncio
import json

import pytest

import shop
from shop import EVENTS, TASKS

pytestmark = pytest.mark.asgi_app(app=shop.app)
"""


@pytest.fixture
def shop(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    pytester.makepyfile(shop=SHOP)


def run(
    pytester: pytest.Pytester, body: str, *args: str, subprocess: bool = False
) -> pytest.RunResult:
    """Run ``body`` (below the shared imports and marker) as an inner test file.

    In process unless ``subprocess``: warnings raised in an in-process run
    meet this run's own ``filterwarnings = error``.
    """
    pytester.makepyfile(test_shop=HEADER + textwrap.dedent(body))
    if subprocess:
        return pytester.runpytest_subprocess(*args)
    return pytester.runpytest(*args)


# -- asgi_app ------------------------------------------------------------------


def test_asgi_app_is_the_marked_application(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_sync(asgi_app):
            assert asgi_app is shop.app

        @pytest.mark.asyncio
        async def test_async(asgi_app):
            assert asgi_app is shop.app

        def test_no_lifespan_for_asgi_app_alone(asgi_app):
            assert EVENTS == []
        """,
    )
    result.assert_outcomes(passed=3)


def test_asgi_app_wraps_a_wsgi_application(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from asgiref_core.wsgi import WsgiToAsgi

        @pytest.mark.asgi_app(app=shop.wsgi)
        def test_wrapped(asgi_app, asgi_http):
            assert isinstance(asgi_app, WsgiToAsgi)
            assert asgi_app.wsgi_application is shop.wsgi
            assert asgi_http.get("/hello").body == b"wsgi saw /hello"
        """,
    )
    result.assert_outcomes(passed=1)


# -- asgi_state ----------------------------------------------------------------


def test_asgi_state_is_the_lifespan_state(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_state(asgi_state, asgi_http):
            assert asgi_state == {"greeting": "hello"}
            assert asgi_http.get("/").json()["greeting"] == "hello"

        def test_requests_get_a_shallow_copy(asgi_state, asgi_communicator):
            scope_state = asgi_communicator.scope["state"]
            assert scope_state == asgi_state
            assert scope_state is not asgi_state
        """,
    )
    result.assert_outcomes(passed=2)


def test_asgi_state_fails_when_there_is_no_lifespan(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.asgi_app(lifespan="off")
        def test_off(asgi_state):
            pass

        @pytest.mark.asgi_app(app=shop.no_lifespan_app)
        def test_unsupported(asgi_state):
            pass

        @pytest.mark.asgi_app(app=shop.wsgi)
        def test_wsgi(asgi_state):
            pass
        """,
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "test_shop.py::test_off: asgi_state: there is no lifespan state: "
            "the test runs with lifespan='off'; use lifespan='auto' or 'on' to "
            "run the application's lifespan",
            "test_shop.py::test_unsupported: asgi_state: there is no lifespan "
            "state: the application from @pytest.mark.asgi_app on "
            "test_shop.py::test_unsupported does not support the lifespan "
            "protocol; use lifespan='on' to fail such a test at setup instead",
            "test_shop.py::test_wsgi: asgi_state: there is no lifespan state: "
            "the application from * is a WSGI application, and WSGI has no "
            "lifespan",
        ]
    )


# -- asgi_communicator ---------------------------------------------------------


def test_asgi_communicator_has_a_default_get_scope(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_scope(asgi_communicator):
            scope = asgi_communicator.scope
            assert scope["type"] == "http"
            assert (scope["method"], scope["path"]) == ("GET", "/")
            assert scope["state"] == {"greeting": "hello"}

        @pytest.mark.asgi_app(lifespan="off")
        def test_no_state_without_lifespan(asgi_communicator):
            assert "state" not in asgi_communicator.scope
        """,
    )
    result.assert_outcomes(passed=2)


def test_asgi_communicator_blocks_in_sync_tests(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from pytest_asgiref._blocking import BlockingCommunicator

        def test_conversation(asgi_communicator):
            assert isinstance(asgi_communicator, BlockingCommunicator)
            assert asgi_communicator.receive_nothing() is True
            asgi_communicator.send_input(
                {"type": "http.request", "body": b"hi", "more_body": False}
            )
            start = asgi_communicator.receive_output()
            assert (start["type"], start["status"]) == ("http.response.start", 200)
            body = asgi_communicator.receive_output()
            assert json.loads(body["body"])["body"] == "hi"
            asgi_communicator.wait()
            assert asgi_communicator.receive_nothing() is True
            kinds = [entry.message["type"] for entry in
                     asgi_communicator.transcript.entries()]
            assert kinds == ["http.request", "http.response.start",
                             "http.response.body"]

        def test_close_cancels_the_app(asgi_communicator):
            assert asgi_communicator.receive_nothing(timeout=0.05)
            asgi_communicator.close()
            with pytest.raises(RuntimeError, match="was cancelled"):
                asgi_communicator.send_input({"type": "http.request"})

        def test_wait_times_out(asgi_communicator):
            with pytest.raises(TimeoutError, match="did not return within 0.05s"):
                asgi_communicator.wait(0.05)
        """,
    )
    result.assert_outcomes(passed=3)


def test_asgi_communicator_is_async_in_async_tests(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from asgiref_core.testing import ApplicationCommunicator

        @pytest.mark.asyncio
        async def test_conversation(asgi_communicator):
            assert isinstance(asgi_communicator, ApplicationCommunicator)
            await asgi_communicator.send_input({"type": "http.request"})
            start = await asgi_communicator.receive_output()
            assert start["status"] == 200
            body = await asgi_communicator.receive_output()
            assert json.loads(body["body"])["greeting"] == "hello"
            await asgi_communicator.wait()
        """,
    )
    result.assert_outcomes(passed=1)


# -- asgi_http -----------------------------------------------------------------


def test_asgi_http_method_shortcuts(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.parametrize(
            "method", ["get", "post", "put", "patch", "delete", "options"]
        )
        def test_method(asgi_http, method):
            response = getattr(asgi_http, method)("/items?page=2")
            assert response.status == 200
            assert response.header("Content-Type") == "application/json"
            reply = response.json()
            assert reply["method"] == method.upper()
            assert (reply["path"], reply["query"]) == ("/items", "page=2")

        def test_head(asgi_http):
            response = asgi_http.head("/items")
            assert (response.status, response.body) == (200, b"")

        def test_request(asgi_http):
            assert asgi_http.request("PURGE", "/cache").json()["method"] == "PURGE"
        """,
    )
    result.assert_outcomes(passed=8)


def test_asgi_http_bodies_and_headers(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_json(asgi_http):
            reply = asgi_http.post("/", json={"name": "tea", "price": 3}).json()
            assert json.loads(reply["body"]) == {"name": "tea", "price": 3}
            assert reply["headers"]["content-type"] == "application/json"

        def test_json_keeps_a_given_content_type(asgi_http):
            headers = [(b"Content-Type", b"application/merge-patch+json")]
            reply = asgi_http.patch("/", json=[1], headers=headers).json()
            assert reply["headers"]["content-type"] == "application/merge-patch+json"

        def test_body_and_headers(asgi_http):
            reply = asgi_http.put(
                "/", body=b"raw bytes", headers=[(b"x-request-id", b"42")]
            ).json()
            assert reply["body"] == "raw bytes"
            assert reply["headers"]["x-request-id"] == "42"

        def test_body_in_chunks(asgi_http):
            reply = asgi_http.post("/", body=[b"a", b"b", b"c"]).json()
            assert (reply["body"], reply["chunks"]) == ("abc", 3)

        def test_json_with_headers_as_a_dict(asgi_http):
            reply = asgi_http.post("/", json=[], headers={"x-user": "alice"}).json()
            assert reply["headers"]["x-user"] == "alice"
            assert reply["headers"]["content-type"] == "application/json"

        def test_body_and_json_together(asgi_http):
            with pytest.raises(TypeError, match="as body= or as json=, not both"):
                asgi_http.post("/", body=b"x", json={})
        """,
    )
    result.assert_outcomes(passed=6)


def test_asgi_http_streams_the_request(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from pytest_asgiref._blocking import BlockingHttpCommunicator

        def test_upload(asgi_http):
            upload = asgi_http("POST", "/upload")
            assert isinstance(upload, BlockingHttpCommunicator)
            upload.send_body(b"first ", more_body=True)
            upload.send_body(b"second")
            response = upload.receive_response_start()
            assert response.status == 200
            assert upload.response_complete is False
            body = b"".join(upload.iter_body())
            assert upload.response_complete is True
            reply = json.loads(body)
            assert (reply["body"], reply["chunks"]) == ("first second", 2)

        def test_get_response(asgi_http):
            response = asgi_http("GET", "/", headers=[(b"x-a", b"1")]).get_response()
            assert response.json()["headers"]["x-a"] == "1"

        def test_json(asgi_http):
            response = asgi_http("PUT", "/", json={"a": 1}).get_response()
            assert response.json()["body"] == '{"a": 1}'
            assert response.json()["headers"]["content-type"] == "application/json"

        @pytest.mark.asyncio
        async def test_json_async(asgi_http):
            response = await asgi_http("PUT", "/", json=[2]).get_response()
            assert response.json()["body"] == "[2]"
        """,
    )
    result.assert_outcomes(passed=4)


def test_asgi_http_reads_server_sent_events(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_three_events_then_leave(asgi_http):
            stream = asgi_http("GET", "/events")
            response = stream.receive_response_start()
            assert response.header("content-type") == "text/event-stream"
            events = []
            for chunk in stream.iter_body():
                events.append(chunk)
                if len(events) == 3:
                    break
            stream.disconnect()
            assert events == [b"data: 1\\n\\n", b"data: 2\\n\\n", b"data: 3\\n\\n"]
            assert stream.body_complete is False
            assert TASKS[-1].done()
        """,
    )
    result.assert_outcomes(passed=1)


# -- asgi_websocket ------------------------------------------------------------


def test_asgi_websocket_conversation(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_talk_then_disconnect(asgi_websocket):
            ws = asgi_websocket("/ws")
            connection = ws.connect()
            assert connection.accepted
            ws.send_to("hi")
            assert ws.receive_from() == "echo: hi"
            ws.send_to(bytes_data=b"abc")
            assert ws.receive_from() == b"cba"
            ws.send_json_to({"basket": ["tea"]})
            assert ws.receive_json_from() == {"echo": {"basket": ["tea"]}}
            ws.disconnect(code=1001)
            assert EVENTS[-1] == "disconnect 1001"

        def test_the_app_closes(asgi_websocket):
            ws = asgi_websocket("/ws")
            ws.connect()
            ws.send_to("close")
            assert ws.receive_close() == (4001, "asked to")

        def test_denial_response(asgi_websocket):
            ws = asgi_websocket("/ws/members")
            accepted, status = ws.connect()
            assert (accepted, status) == (False, 403)
            assert ws.connection.denial.body == b"members only"
            assert ws.connection.denial.header("content-type") == "text/plain"
        """,
    )
    result.assert_outcomes(passed=3)


# -- asgi_lifespan -------------------------------------------------------------


def test_asgi_lifespan_drives_the_lifespan_by_hand(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(app=shop.app, lifespan="off")

        @pytest.fixture(autouse=True)
        def fresh_events():
            EVENTS.clear()

        def test_step_by_step(asgi_lifespan):
            assert EVENTS == []
            lifespan = asgi_lifespan()
            assert lifespan.startup().complete
            assert lifespan.state == {"greeting": "hello"}
            assert EVENTS == ["startup"]
            assert lifespan.shutdown().complete
            assert EVENTS == ["startup", "shutdown"]

        def test_as_a_context_manager(asgi_lifespan):
            with asgi_lifespan(state={"seeded": True}) as lifespan:
                assert lifespan.state == {"seeded": True, "greeting": "hello"}
                assert EVENTS == ["startup"]
            assert EVENTS == ["startup", "shutdown"]

        @pytest.mark.asyncio
        async def test_async(asgi_lifespan):
            async with asgi_lifespan() as lifespan:
                assert lifespan.startup_outcome.complete
            assert lifespan.shutdown_outcome.complete
        """,
    )
    result.assert_outcomes(passed=3)


def test_asgi_lifespan_left_running_is_closed(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.asgi_app(app=shop.app, lifespan="off")

        def test_start_only(asgi_lifespan):
            asgi_lifespan().startup()

        def test_then():
            assert EVENTS == ["startup"]
        """,
    )
    result.assert_outcomes(passed=2)


# -- teardown ------------------------------------------------------------------


def test_teardown_closes_what_sync_tests_left_open(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_leave_things_open(asgi_websocket, asgi_http, asgi_communicator):
            ws = asgi_websocket("/ws")
            ws.connect()
            ws.send_to("hi")
            assert ws.receive_from() == "echo: hi"
            stream = asgi_http("GET", "/events")
            stream.receive_response_start()
            asgi_communicator.receive_nothing()
            assert len(TASKS) == 3
            assert not any(task.done() for task in TASKS)

        def test_every_conversation_ended():
            assert len(TASKS) == 3
            assert all(task.done() for task in TASKS)
        """,
    )
    result.assert_outcomes(passed=2)


def test_teardown_closes_what_async_tests_left_open(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = [
            pytest.mark.asgi_app(app=shop.app, lifespan="off"),
            pytest.mark.asyncio(loop_scope="module"),
        ]

        async def test_leave_things_open(asgi_websocket, asgi_http):
            ws = asgi_websocket("/ws")
            await ws.connect()
            stream = asgi_http("GET", "/events")
            await stream.receive_response_start()
            assert len(asyncio.all_tasks()) == 3

        async def test_no_task_left_pending():
            assert asyncio.all_tasks() == {asyncio.current_task()}
            assert all(task.done() for task in TASKS)
        """,
    )
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*Task was destroyed*")


def test_teardown_reports_an_error_after_the_last_read(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        def test_stop_reading_early(asgi_http):
            stream = asgi_http("GET", "/late-error")
            stream.receive_response_start()
            assert stream.receive_body() == b"part"

        def test_saw_it(asgi_http):
            stream = asgi_http("GET", "/late-error")
            stream.receive_response_start()
            stream.receive_body()
            with pytest.raises(LookupError, match="price list"):
                stream.receive_body()

        @pytest.mark.asyncio
        async def test_stop_reading_early_async(asgi_http):
            stream = asgi_http("GET", "/late-error")
            await stream.receive_response_start()
            assert await stream.receive_body() == b"part"
            await asyncio.sleep(0.01)
        """,
    )
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_stop_reading_early _*",
            "test_shop.py::test_stop_reading_early: asgi_http: the application "
            "raised after the test's last read: LookupError: the price list "
            "went missing",
            "*ERROR at teardown of test_stop_reading_early_async _*",
            "test_shop.py::test_stop_reading_early_async: asgi_http: the "
            "application raised after the test's last read: LookupError: *",
        ]
    )
    result.stdout.no_fnmatch_line("*teardown of test_saw_it*")


def test_teardown_reports_a_violation_after_the_last_read(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        from asgiref_core.validate import ASGIProtocolError

        def test_stop_reading_early(asgi_http):
            stream = asgi_http("GET", "/late-violation")
            stream.receive_response_start()
            assert stream.receive_body() == b"part"

        def test_saw_it(asgi_http):
            stream = asgi_http("GET", "/late-violation")
            stream.receive_response_start()
            stream.receive_body()
            with pytest.raises(ASGIProtocolError, match="http.response.start.order"):
                stream.receive_body()
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_stop_reading_early _*",
            "test_shop.py::test_stop_reading_early: asgi_http: the application "
            "broke the ASGI protocol after the test's last read:",
            "sent 'http.response.start' message: *[[]rule http.response.start.order]",
            "Last 3 message(s), oldest first:",
            "*from app  {'type': 'http.response.start', *",
        ]
    )
    result.stdout.no_fnmatch_line("*teardown of test_saw_it*")


# -- validation ----------------------------------------------------------------


def test_validation_fails_a_protocol_breaking_app(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_status_as_text(asgi_http):
            asgi_http.get("/bad-status")

        @pytest.mark.asyncio
        async def test_body_before_start(asgi_http):
            await asgi_http.get("/body-first")
        """,
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*ASGIProtocolError: sent 'http.response.start' message: 'status' "
            "must be int (got '200'); expected an int HTTP status code such as "
            "200 [[]rule http.response.start.status]",
            "E*Last 2 message(s), oldest first:",
            "E*to app    {'type': 'http.request', 'body': b'', 'more_body': False}",
            "E*from app  {'type': 'http.response.start', 'status': '200', *}",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ASGIProtocolError: sent 'http.response.body' message:*"
            "[[]rule http.response.body.order]",
            "E*from app  {'type': 'http.response.body', 'body': b'too soon'}",
        ]
    )


def test_validation_can_warn_instead(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.asgi_app(validate="warn")
        def test_status_as_text(asgi_http):
            assert asgi_http.get("/bad-status").body == b"bad"
        """,
        subprocess=True,
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*ASGIProtocolWarning: sent 'http.response.start' message: 'status' "
            "must be int (got '200')*[[]rule http.response.start.status]",
        ]
    )


def test_validation_can_be_off(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        @pytest.mark.asgi_app(validate="off")
        def test_status_as_text(asgi_http):
            assert asgi_http.get("/bad-status").status == "200"
        """,
        "-W",
        "error::Warning",
        subprocess=True,
    )
    result.assert_outcomes(passed=1)


def test_asgi_communicator_validates_too(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_bad_input(asgi_communicator):
            asgi_communicator.send_input({"type": "http.request", "body": "text"})
            asgi_communicator.receive_output()
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*[[]rule http.request.body]*"])
