"""``validator()`` end to end, and the exception and warning it reports with.

The applications here are small hand-written ASGI apps, driven by hand-written
``receive`` and ``send`` callables standing in for a server.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asgiref_core import validate
from asgiref_core.validate import (
    ASGIProtocolError,
    ASGIProtocolWarning,
    Checker,
    check_scope,
    validator,
)

pytestmark = pytest.mark.timeout(20)

Message = dict[str, Any]
App = Callable[[Any, Any, Any], Awaitable[None]]

HTTP_SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"example.com")],
    "client": ["127.0.0.1", 50000],
    "server": ["127.0.0.1", 8000],
}


class FakeServer:
    """Plays the server: hands out queued messages and records what was sent."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.incoming:
            return self.incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def run(self, app: App, scope: Any = None) -> None:
        await app(HTTP_SCOPE if scope is None else scope, self.receive, self.send)


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def string_status(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": "200"})
    await send({"type": "http.response.body", "body": b"hello"})


REQUEST = {"type": "http.request", "body": b"", "more_body": False}


# -- raise mode -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_correct_application_runs_unchanged() -> None:
    server = FakeServer(REQUEST)
    await server.run(validator(hello))
    assert server.sent == [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"hello"},
    ]


@pytest.mark.asyncio
async def test_a_bad_message_raises_out_of_send_and_is_not_passed_on() -> None:
    server = FakeServer(REQUEST)
    with pytest.raises(ASGIProtocolError) as caught:
        await server.run(validator(string_status))
    error = caught.value
    assert error.rule == "http.response.start.status"
    assert error.direction == "send"
    assert error.message == {"type": "http.response.start", "status": "200"}
    assert str(error).startswith(
        "sent 'http.response.start' message: 'status' must be int (got '200'); "
        "expected an int HTTP status code such as 200 "
        "[rule http.response.start.status]"
    )
    assert server.sent == []
    # Raised inside the application's send() call: the traceback shows it.
    frames = [entry.name for entry in caught.traceback]
    assert "string_status" in frames


@pytest.mark.asyncio
async def test_the_application_sees_the_error_from_send() -> None:
    seen: list[ASGIProtocolError] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.body", "body": b"too early"})
        except ASGIProtocolError as error:
            seen.append(error)
            raise

    with pytest.raises(ASGIProtocolError):
        await FakeServer().run(validator(app))
    assert [error.rule for error in seen] == ["http.response.body.order"]


@pytest.mark.asyncio
async def test_a_swallowed_violation_is_raised_when_the_application_returns() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        # An over-eager error handler.
        with contextlib.suppress(ASGIProtocolError):
            await send({"type": "http.response.start", "status": 200, "headers": "x"})
        await send({"type": "http.response.body"})

    with pytest.raises(ASGIProtocolError, match=r"rule http\.response\.start\.headers"):
        await FakeServer().run(validator(app))


@pytest.mark.asyncio
async def test_a_bad_scope_raises_before_the_application_runs() -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    with pytest.raises(ASGIProtocolError) as caught:
        await FakeServer().run(validator(app), {**HTTP_SCOPE, "method": "get"})
    assert caught.value.rule == "scope.method"
    assert caught.value.direction == "scope"
    assert not called


@pytest.mark.asyncio
async def test_a_bad_message_from_the_server_raises_out_of_the_call() -> None:
    server = FakeServer({"type": "http.request", "body": "not bytes"})
    with pytest.raises(ASGIProtocolError) as caught:
        await server.run(validator(hello))
    assert caught.value.rule == "http.request.body"
    assert caught.value.direction == "receive"
    assert server.sent == []


@pytest.mark.asyncio
async def test_returning_without_a_response_raises_out_of_the_call() -> None:
    async def forgetful(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204})

    server = FakeServer(REQUEST)
    with pytest.raises(ASGIProtocolError) as caught:
        # The fake server never reports a disconnect unless asked to.
        await validator(forgetful)(HTTP_SCOPE, server.receive, server.send)
    assert caught.value.rule == "http.returned"
    assert caught.value.direction == "return"
    assert caught.value.message is None
    assert server.sent == [{"type": "http.response.start", "status": 204}]


@pytest.mark.asyncio
async def test_returning_after_a_disconnect_is_fine() -> None:
    async def gives_up(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    await FakeServer(REQUEST).run(validator(gives_up))


@pytest.mark.asyncio
async def test_application_exceptions_pass_through_untouched() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match=r"boom"):
        await FakeServer().run(validator(broken))


@pytest.mark.asyncio
async def test_each_call_checks_its_own_connection() -> None:
    app = validator(hello)
    for _ in range(3):
        server = FakeServer(REQUEST)
        await server.run(app)
        assert len(server.sent) == 2


# -- warn mode ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_warn_mode_warns_and_passes_the_message_on() -> None:
    server = FakeServer(REQUEST)
    with pytest.warns(ASGIProtocolWarning) as record:
        await server.run(validator(string_status, mode="warn"))
    assert len(record) == 1
    text = str(record[0].message)
    assert text.startswith("sent 'http.response.start' message: 'status' must be int")
    assert "[rule http.response.start.status]" in text
    assert server.sent[0]["status"] == "200"
    assert len(server.sent) == 2
    # The warning points at the application's own send() call.
    assert record[0].filename == __file__


@pytest.mark.asyncio
async def test_warn_mode_reports_each_mistake_once_and_keeps_checking() -> None:
    async def sloppy(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": bytearray(b"b")})
        await send({"type": "http.response.body", "body": b"c"})

    with pytest.warns(ASGIProtocolWarning) as record:
        await FakeServer().run(validator(sloppy, mode="warn"))
    rules = [
        str(warning.message).split("[rule ")[1].split("]")[0] for warning in record
    ]
    assert rules == [
        "http.response.body.order",  # no start
        "http.response.body.body",  # bytearray
        "http.response.body.order",  # after the final body
    ]


@pytest.mark.asyncio
async def test_warn_mode_reports_every_scope_problem_then_runs_the_app() -> None:
    server = FakeServer(REQUEST)
    bad_scope = {**HTTP_SCOPE, "method": "get", "path": b"/"}
    with pytest.warns(ASGIProtocolWarning) as record:
        await server.run(validator(hello, mode="warn"), bad_scope)
    assert ["rule scope.method" in str(w.message) for w in record] == [True, False]
    assert "rule scope.path" in str(record[1].message)
    assert len(server.sent) == 2


@pytest.mark.asyncio
async def test_warn_mode_with_a_scope_that_is_not_a_dict() -> None:
    seen: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "whatever"})

    server = FakeServer()
    with pytest.warns(ASGIProtocolWarning, match=r"rule scope\.dict"):
        await server.run(validator(app, mode="warn"), ["not", "a", "dict"])
    assert seen == [["not", "a", "dict"]]
    assert server.sent == [{"type": "whatever"}]


@pytest.mark.asyncio
async def test_warn_mode_reports_the_return_and_bad_server_messages() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    server = FakeServer({"type": "http.request", "more_body": "yes"})
    with pytest.warns(ASGIProtocolWarning) as record:
        await validator(app, mode="warn")(HTTP_SCOPE, server.receive, server.send)
    texts = [str(warning.message) for warning in record]
    assert "[rule http.request.more_body]" in texts[0]
    assert texts[0].startswith("received 'http.request' message:")
    assert "[rule http.returned]" in texts[1]


def test_warnings_can_be_made_errors() -> None:
    # The project's own test configuration turns warnings into errors; users
    # can do the same with -W error::asgiref_core.validate.ASGIProtocolWarning.
    assert issubclass(ASGIProtocolWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ASGIProtocolWarning)
        with pytest.raises(ASGIProtocolWarning):
            warnings.warn(ASGIProtocolWarning("x"), stacklevel=1)


# -- application styles and arguments ---------------------------------------------


class DoubleCallable:
    """An ASGI 2 application: built from the scope, then awaited."""

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": self.scope["path"].encode()})


class BadDoubleCallable(DoubleCallable):
    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})


@pytest.mark.asyncio
async def test_an_asgi2_application_is_adapted() -> None:
    server = FakeServer(REQUEST)
    await server.run(validator(DoubleCallable))
    assert server.sent[1] == {"type": "http.response.body", "body": b"/"}


@pytest.mark.asyncio
async def test_an_asgi2_application_is_checked() -> None:
    with pytest.raises(
        ASGIProtocolError, match=r"rule http\.response\.start\.trailers"
    ):
        await FakeServer(REQUEST).run(validator(BadDoubleCallable))


@pytest.mark.asyncio
async def test_an_application_instance_with_async_call() -> None:
    class Instance:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await hello(scope, receive, send)

    server = FakeServer(REQUEST)
    await server.run(validator(Instance()))
    assert len(server.sent) == 2


def test_an_unknown_mode_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'raise' or 'warn' \(got 'strict'\)"):
        validator(hello, mode="strict")


def test_a_non_callable_application_is_refused() -> None:
    with pytest.raises(TypeError, match=r"needs an ASGI application.*got dict"):
        validator({"not": "an app"})


def test_the_wrapper_is_a_single_callable() -> None:
    from asgiref_core.compatibility import is_double_callable

    assert not is_double_callable(validator(hello))
    assert not is_double_callable(validator(DoubleCallable))


# -- websocket and lifespan through the wrapper ------------------------------------


@pytest.mark.asyncio
async def test_a_websocket_conversation() -> None:
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/echo",
        "headers": [],
        "subprotocols": ["echo"],
    }
    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "echo"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    await validator(echo)(scope, receive, send)
    assert sent == [
        {"type": "websocket.accept", "subprotocol": "echo"},
        {"type": "websocket.send", "text": "ping"},
    ]


@pytest.mark.asyncio
async def test_a_lifespan_conversation_and_a_forgotten_answer() -> None:
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}

    def server() -> tuple[Any, Any, list[Message]]:
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[Message] = []

        async def receive() -> Message:
            return incoming.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        return receive, send, sent

    async def good(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def forgetful(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()

    receive, send, sent = server()
    await validator(good)(scope, receive, send)
    assert len(sent) == 2
    receive, send, sent = server()
    with pytest.raises(ASGIProtocolError, match=r"rule lifespan\.returned"):
        await validator(forgetful)(scope, receive, send)


# -- the exception itself --------------------------------------------------------------


def test_the_error_keeps_its_parts_and_survives_pickling() -> None:
    error = ASGIProtocolError(
        "http.response.start.status",
        "send",
        {"type": "http.response.start", "status": "200"},
        "an int HTTP status code such as 200",
        "'status' must be int (got '200')",
    )
    error.add_note("a note")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ASGIProtocolError
    for attribute in ("rule", "direction", "message", "expected", "problem"):
        assert getattr(copy, attribute) == getattr(error, attribute)
    assert str(copy) == str(error)
    assert copy.__notes__ == ["a note"]


def test_the_public_classes_name_the_public_module() -> None:
    for public in (ASGIProtocolError, ASGIProtocolWarning, Checker):
        assert public.__module__ == "asgiref_core.validate"
    assert sorted(validate.__all__) == validate.__all__


@pytest.mark.parametrize(
    ("message", "shown", "hidden"),
    [
        ({"type": "x", "body": b"a" * 5000}, "(5000 bytes)", "a" * 100),
        ({"type": "x", "text": "é" * 300}, "(300 characters)", "é" * 100),
        ({"type": "x", "headers": [(b"a", b"b")] * 50}, "(38 more items)", None),
        ({"type": "x", "data": bytearray(300)}, "(300 bytes)", None),
        (
            {"type": "x", "view": memoryview(b"z" * 300)},
            "memoryview of 300 bytes",
            None,
        ),
        ({"type": "x", "deep": [[[[[1]]]]]}, "<list of 1 items>", None),
        ({"type": "x", "obj": "y" * 10}, "'yyyyyyyyyy'", None),
    ],
)
def test_long_values_are_abbreviated(
    message: dict[str, Any], shown: str, hidden: str | None
) -> None:
    error = ASGIProtocolError("rule", "send", message, "something", "a problem")
    text = str(error)
    assert shown in text
    if hidden is not None:
        assert hidden not in text
    assert len(text) < 1500


def test_a_repr_that_raises_is_shown_not_raised() -> None:
    class Odd:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    error = ASGIProtocolError("rule", "send", {"type": "x", "odd": Odd()}, "e", "p")
    assert "repr() failed" in str(error)


def test_a_long_repr_is_cut() -> None:
    class Wordy:
        def __repr__(self) -> str:
            return "w" * 1000

    error = ASGIProtocolError("rule", "send", {"type": "x", "w": Wordy()}, "e", "p")
    assert "(1000 characters of repr)" in str(error)


def test_checkers_raise_then_continue() -> None:
    checker = check_scope(HTTP_SCOPE)
    messages = [
        {"type": "http.response.start", "status": 200, "headers": [(b":a", b"1")]},
        {"type": "http.response.body", "body": b"x"},
    ]
    with pytest.raises(ASGIProtocolError):
        checker.sent(messages[0])
    checker.sent(messages[1])
    checker.returned()
    assert [error.rule for error in checker.violations] == [
        "http.response.start.headers"
    ]
