"""WsgiToAsgi with plain WSGI callables, driven through the ASGI interface.

Most tests go through ``HttpCommunicator`` (which validates the conversation);
those that need exact messages use ``ApplicationCommunicator`` with validation
on, and those that need a misbehaving client (a ``send`` that blocks or
raises, a ``receive`` that never ends) use hand-written callables.

A WSGI application runs on a worker thread, so tests that hold it back use a
``threading.Event`` (or a :class:`Gate`) that is always opened again in
``finally``: a failing test must not leave a worker thread blocked for the rest
of the run. The ``no_wsgi_leaks`` fixture (in conftest.py) checks that none is.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from asgiref_core._wsgi_exchange import HIGH_WATER
from asgiref_core.testing import ApplicationCommunicator, HttpCommunicator, http_scope
from asgiref_core.wsgi import WsgiToAsgi, WsgiToAsgiInstance

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.timeout(30),
    pytest.mark.usefixtures("no_wsgi_leaks"),
]

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], None]]
Message = dict[str, Any]

MiB = 1024 * 1024
CHUNK = 64 * 1024
# How long a test waits for something that should happen at once.
PATIENCE = 5.0


# -- waiting ----------------------------------------------------------------------


async def _wait_until(condition: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


# -- helpers -----------------------------------------------------------------------


class TrackedBody:
    """A WSGI response iterable that records what it produced and its close()."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.produced: list[bytes] = []
        self.close_calls = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        self.produced.append(chunk)
        return chunk

    def close(self) -> None:
        self.close_calls += 1
        self.closed.set()


class Gate:
    """Holds the WSGI application at one point until the test opens it.

    ``reached`` tells the test the worker thread is there, past every check
    the adapter makes after the previous chunk.
    """

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._open = threading.Event()

    def wait(self) -> None:
        self.reached.set()
        if not self._open.wait(PATIENCE):
            raise AssertionError("the test never opened the gate")

    def open(self) -> None:
        self._open.set()

    async def until_reached(self) -> None:
        assert await _wait_until(self.reached.is_set), "the app never got there"


def text_app(body: bytes = b"ok", status: str = "200 OK") -> Callable[..., Any]:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [body]

    return app


def environ_app(seen: list[Environ]) -> Callable[..., Any]:
    """Records the environ and answers with its string-valued CGI keys as JSON."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen.append(environ)
        cgi = {k: v for k, v in environ.items() if "." not in k}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(cgi).encode()]

    return app


async def environ_for(**kwargs: Any) -> Environ:
    """The environ the application sees for ``HttpCommunicator(**kwargs)``."""
    seen: list[Environ] = []
    kwargs.setdefault("method", "GET")
    kwargs.setdefault("path", "/")
    response = await HttpCommunicator(
        WsgiToAsgi(environ_app(seen)), **kwargs
    ).get_response()
    assert response.status == 200
    (environ,) = seen
    return environ


async def exchange(
    app: Callable[..., Any],
    scope: dict[str, Any] | None = None,
    body: bytes = b"",
) -> list[Message]:
    """Every message the application sends, validated, until the response ends."""
    communicator = ApplicationCommunicator(
        WsgiToAsgi(app), scope if scope is not None else http_scope(), validate=True
    )
    async with communicator:
        await communicator.send_input(
            {"type": "http.request", "body": body, "more_body": False}
        )
        sent: list[Message] = []
        while True:
            message = await communicator.receive_output(timeout=PATIENCE)
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get(
                "more_body", False
            ):
                break
        await communicator.wait(timeout=PATIENCE)
    return sent


def bodies(messages: list[Message]) -> list[tuple[bytes, bool]]:
    return [
        (m["body"], m.get("more_body", False))
        for m in messages
        if m["type"] == "http.response.body"
    ]


async def call(asgi_app: Any, scope: Any, receive: Any, send: Any) -> None:
    """Call ``asgi_app`` as a server would, with the test's own receive and send."""
    await asgi_app(scope, receive, send)


class Client:
    """Hand-written receive/send: a request body, then silence (or a disconnect)."""

    def __init__(self, body_messages: Iterable[Message] | None = None) -> None:
        self._incoming = list(
            body_messages
            if body_messages is not None
            else [{"type": "http.request", "body": b"", "more_body": False}]
        )
        self.sent: list[Message] = []
        self.received = 0
        self._forever = asyncio.Event()

    async def receive(self) -> Message:
        self.received += 1
        if self._incoming:
            return self._incoming.pop(0)
        await self._forever.wait()  # a client that stays and says nothing
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        self.sent.append(message)


# -- scopes WsgiToAsgi refuses -----------------------------------------------------


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_a_non_http_scope_is_refused_with_a_clear_error(kind: str) -> None:
    called = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        called.append(True)
        return []

    client = Client()
    with pytest.raises(ValueError) as excinfo:
        await call(WsgiToAsgi(app), {"type": kind}, client.receive, client.send)
    assert str(excinfo.value) == (
        f"WsgiToAsgi serves only 'http' scopes, got a {kind!r} scope; "
        "route WebSocket and lifespan scopes to an ASGI application"
    )
    assert (called, client.received, client.sent) == ([], 0, [])


# -- the environ -------------------------------------------------------------------


async def test_the_environ_has_pep_3333s_keys_and_types() -> None:
    environ = await environ_for(method="POST", path="/x", body=b"hi")
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    for key in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"):
        assert key in environ
    for key in ("SERVER_NAME", "SERVER_PORT"):
        assert key in environ
    # PEP 3333: every CGI variable is a native string.
    cgi = {k: v for k, v in environ.items() if not k.startswith("wsgi.")}
    assert all(type(v) is str for v in cgi.values()), cgi


async def test_http_version_and_scheme() -> None:
    environ = await environ_for(http_version="2", scheme="https")
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.url_scheme"] == "https"


async def test_query_string_is_the_raw_latin_1_text() -> None:
    environ = await environ_for(path="/search?q=a%20b&x=1")
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/search", "q=a%20b&x=1")
    environ = await environ_for(query_string=b"name=\xe9t\xe9")
    assert environ["QUERY_STRING"] == "name=\xe9t\xe9"
    environ = await environ_for()
    assert environ["QUERY_STRING"] == ""


async def test_a_unicode_path_becomes_pep_3333_bytes_in_a_native_string() -> None:
    path = "/caf\u00e9/\u2603"
    environ = await environ_for(path=path)
    assert environ["PATH_INFO"] == path.encode("utf-8").decode("latin-1")
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == path


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("", "/a/b", "", "/a/b"),
        ("/app", "/app/a/b", "/app", "/a/b"),
        ("/app", "/app", "/app", ""),
        ("/app", "/app/", "/app", "/"),
        # Not at a segment boundary: '/application' is not under '/app'.
        ("/app", "/application/x", "/app", "/application/x"),
        ("/app", "/appx", "/app", "/appx"),
        # A server that gives the path without the root path.
        ("/app", "/a/b", "/app", "/a/b"),
        ("/caf\u00e9", "/caf\u00e9/x", "/caf\xc3\xa9", "/x"),
        # A root path given with a trailing slash: the slash starts PATH_INFO.
        ("/app/", "/app/x", "/app", "/x"),
        ("/", "/x", "", "/x"),
    ],
)
async def test_script_name_comes_from_root_path_and_is_stripped_from_path_info(
    root_path: str, path: str, script_name: str, path_info: str
) -> None:
    environ = await environ_for(path=path, root_path=root_path)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


async def test_content_type_and_length_have_no_http_prefix() -> None:
    environ = await environ_for(
        method="POST",
        path="/",
        body=b"a=1",
        headers=[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "3"),
        ],
    )
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


async def test_headers_become_http_keys_and_repeats_are_joined() -> None:
    environ = await environ_for(
        headers=[
            ("x-request-id", "abc"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("cookie", "c=3"),
            ("x-latin", b"caf\xe9"),
        ]
    )
    assert environ["HTTP_X_REQUEST_ID"] == "abc"
    assert environ["HTTP_ACCEPT"] == "text/html, application/json"
    assert environ["HTTP_COOKIE"] == "a=1; b=2; c=3"
    assert environ["HTTP_X_LATIN"] == "caf\xe9"
    assert environ["HTTP_HOST"] == "testserver"


async def test_header_names_differing_only_in_case_are_one_header() -> None:
    seen: list[Environ] = []
    scope = http_scope(
        scope={"headers": [(b"X-Thing", b"1"), (b"x-thing", b"2"), (b"X-THING", b"3")]}
    )
    await exchange(environ_app(seen), scope)
    assert seen[0]["HTTP_X_THING"] == "1, 2, 3"


@pytest.mark.parametrize(
    ("server", "scheme", "name", "port"),
    [
        (("example.org", 8080), "http", "example.org", "8080"),
        (("example.org", None), "http", "example.org", "80"),
        (("example.org", None), "https", "example.org", "443"),
        (None, "http", "localhost", "80"),
        (None, "https", "localhost", "443"),
        ("absent", "http", "localhost", "80"),
    ],
)
async def test_server_name_and_port(
    server: Any, scheme: str, name: str, port: str
) -> None:
    seen: list[Environ] = []
    scope = http_scope(scheme=scheme, server=None if server == "absent" else server)
    if server == "absent":
        del scope["server"]
    await exchange(environ_app(seen), scope)
    assert (seen[0]["SERVER_NAME"], seen[0]["SERVER_PORT"]) == (name, port)


async def test_remote_addr_and_port_come_from_client() -> None:
    environ = await environ_for(client=("10.1.2.3", 51234))
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("10.1.2.3", "51234")
    environ = await environ_for(client=None)
    assert "REMOTE_ADDR" not in environ
    assert "REMOTE_PORT" not in environ


async def test_wsgi_errors_is_a_writable_text_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("first line\n")
        errors.writelines(["second ", "line\n"])
        errors.flush()
        start_response("200 OK", [])
        return [b""]

    response = await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert response.status == 200
    assert "first line\nsecond line\n" in capsys.readouterr().err


async def test_context_variables_of_the_caller_are_visible_in_the_app() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    seen = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen.append((request_id.get("unset"), threading.current_thread()))
        start_response("200 OK", [])
        return [b""]

    request_id.set("req-42")
    client = Client()
    await call(WsgiToAsgi(app), http_scope(), client.receive, client.send)
    ((value, thread),) = seen
    assert value == "req-42"
    assert thread is not threading.current_thread()  # it ran on a worker


async def test_a_subclass_of_the_instance_can_adjust_the_environ() -> None:
    class Tagged(WsgiToAsgiInstance):
        def build_environ(self, scope: Any, body: Any) -> dict[str, Any]:
            environ = super().build_environ(scope, body)
            environ["app.tag"] = "tagged"
            return environ

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["app.tag"].encode()]

    client = Client()
    await call(Tagged(app), http_scope(), client.receive, client.send)
    assert bodies(client.sent) == [(b"tagged", False)]


# -- hostile headers ----------------------------------------------------------------


def counting_app(calls: list[Environ]) -> Callable[..., Any]:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        calls.append(environ)
        start_response("200 OK", [])
        return [b"called"]

    return app


async def test_exactly_the_duplicate_header_limit_is_accepted() -> None:
    calls: list[Environ] = []
    headers = [("x-dup", str(i)) for i in range(100)]
    response = await HttpCommunicator(
        WsgiToAsgi(counting_app(calls)), "GET", "/", headers=headers
    ).get_response()
    assert (response.status, response.body) == (200, b"called")
    assert calls[0]["HTTP_X_DUP"] == ", ".join(str(i) for i in range(100))


async def test_one_more_than_the_limit_is_refused_with_400_naming_the_header() -> None:
    calls: list[Environ] = []
    headers = [("x-ok", "1"), *[("x-dup", str(i)) for i in range(101)]]
    response = await HttpCommunicator(
        WsgiToAsgi(counting_app(calls)), "GET", "/", headers=headers
    ).get_response()
    assert response.status == 400
    assert calls == []
    assert response.header("content-type") == "text/plain; charset=latin-1"
    assert response.header("content-length") == str(len(response.body))
    assert response.text == (
        "Bad Request: the request repeats the 'x-dup' header more than 100 times "
        "(duplicate_header_limit=100); it was refused with 400 Bad Request\n"
    )


async def test_a_custom_limit_applies_per_header_name() -> None:
    calls: list[Environ] = []
    app = WsgiToAsgi(counting_app(calls), duplicate_header_limit=3)
    ok = [("x-a", "1"), ("x-a", "2"), ("x-a", "3"), ("x-b", "1"), ("x-b", "2")]
    response = await HttpCommunicator(app, "GET", "/", headers=ok).get_response()
    assert response.status == 200
    response = await HttpCommunicator(
        app, "GET", "/", headers=[*ok, ("x-b", "3"), ("x-b", "4")]
    ).get_response()
    assert response.status == 400
    assert "'x-b' header more than 3 times" in response.text
    assert len(calls) == 1


async def test_the_limit_counts_cookies_too() -> None:
    calls: list[Environ] = []
    app = WsgiToAsgi(counting_app(calls), duplicate_header_limit=2)
    headers = [("cookie", "a=1"), ("cookie", "b=2"), ("cookie", "c=3")]
    response = await HttpCommunicator(app, "GET", "/", headers=headers).get_response()
    assert response.status == 400
    assert "'cookie'" in response.text
    assert calls == []


@pytest.mark.parametrize("limit", [None, 0])
async def test_a_limit_of_none_or_zero_disables_the_check(limit: int | None) -> None:
    calls: list[Environ] = []
    headers = [("x-dup", "v")] * 5000
    response = await HttpCommunicator(
        WsgiToAsgi(counting_app(calls), duplicate_header_limit=limit),
        "GET",
        "/",
        headers=headers,
    ).get_response()
    assert response.status == 200
    assert calls[0]["HTTP_X_DUP"] == ", ".join(["v"] * 5000)


async def test_an_over_limit_request_is_refused_before_its_body_is_read() -> None:
    calls: list[Environ] = []
    client = Client(
        [{"type": "http.request", "body": b"x" * 1024, "more_body": True}] * 1000
    )
    scope = http_scope("POST", "/", headers=[("x-dup", "v")] * 101)
    await call(WsgiToAsgi(counting_app(calls)), scope, client.receive, client.send)
    assert client.received == 0
    assert [m.get("status") for m in client.sent][:1] == [400]
    assert calls == []


@pytest.mark.parametrize("limit", [-1, 1.5, "100", True])
async def test_a_limit_that_is_not_none_or_a_non_negative_int_is_refused(
    limit: object,
) -> None:
    expected = (
        "duplicate_header_limit must be None or an int of 0 or more (0 and None "
        f"mean no limit); got {limit!r}"
    )
    with pytest.raises(ValueError) as excinfo:
        WsgiToAsgi(text_app(), duplicate_header_limit=limit)  # type: ignore[arg-type]
    assert str(excinfo.value) == expected
    with pytest.raises(ValueError, match="duplicate_header_limit must be None"):
        WsgiToAsgiInstance(text_app(), limit)  # type: ignore[arg-type]


async def test_the_limit_defaults_to_100_like_asgiref() -> None:
    assert WsgiToAsgi(text_app()).duplicate_header_limit == 100
    assert WsgiToAsgiInstance(text_app()).duplicate_header_limit == 100


async def test_a_hundred_thousand_distinct_headers_are_fine() -> None:
    calls: list[Environ] = []
    headers = [(f"x-h{i}".encode(), f"{i}".encode()) for i in range(100_000)]
    response = await HttpCommunicator(
        WsgiToAsgi(counting_app(calls)), "GET", "/", headers=headers
    ).get_response(timeout=PATIENCE)
    assert response.status == 200
    environ = calls[0]
    assert sum(key.startswith("HTTP_X_H") for key in environ) == 100_000
    assert environ["HTTP_X_H99999"] == "99999"


async def test_many_names_each_repeated_just_under_the_limit_are_fine() -> None:
    calls: list[Environ] = []
    headers = [(f"x-h{n}", f"{i}") for n in range(1000) for i in range(99)]
    response = await HttpCommunicator(
        WsgiToAsgi(counting_app(calls)), "GET", "/", headers=headers
    ).get_response(timeout=PATIENCE)
    assert response.status == 200
    joined = ", ".join(str(i) for i in range(99))
    assert all(calls[0][f"HTTP_X_H{n}"] == joined for n in range(1000))


async def test_a_hundred_thousand_repeats_of_one_header_without_limit_are_fine() -> (
    None
):
    # Joining repeats must not be quadratic; the test's time limit holds that.
    calls: list[Environ] = []
    headers = [("x-dup", "abc")] * 100_000
    response = await HttpCommunicator(
        WsgiToAsgi(counting_app(calls), duplicate_header_limit=None),
        "GET",
        "/",
        headers=headers,
    ).get_response(timeout=PATIENCE)
    assert response.status == 200
    assert len(calls[0]["HTTP_X_DUP"]) == 100_000 * 5 - 2


# -- the request body -----------------------------------------------------------------


def echo_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    data = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(data)))])
    return [data]


async def test_a_body_in_one_message_reaches_wsgi_input() -> None:
    response = await HttpCommunicator(
        WsgiToAsgi(echo_app), "POST", "/", body=b"hello"
    ).get_response()
    assert response.body == b"hello"


async def test_a_body_in_many_messages_reaches_wsgi_input_whole() -> None:
    chunks = [bytes([i]) * 300_000 for i in range(10)]  # past the spool threshold
    response = await HttpCommunicator(
        WsgiToAsgi(echo_app), "POST", "/", body=[*chunks, b""]
    ).get_response(timeout=PATIENCE)
    assert response.body == b"".join(chunks)


async def test_an_empty_body_reads_as_empty() -> None:
    response = await HttpCommunicator(WsgiToAsgi(echo_app), "GET", "/").get_response()
    assert (response.status, response.body) == (200, b"")


async def test_wsgi_input_supports_read_with_size_readline_and_iteration() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        parts = [stream.read(3), stream.readline(), stream.readline(10)]
        parts.extend(stream)
        parts.append(stream.read())
        start_response("200 OK", [])
        return [json.dumps([p.decode() for p in parts]).encode()]

    response = await HttpCommunicator(
        WsgiToAsgi(app), "POST", "/", body=[b"abcdef\n", b"0123456789ABC\nx\n", b"y"]
    ).get_response()
    assert response.json() == ["abc", "def\n", "0123456789", "ABC\n", "x\n", "y", ""]


async def test_a_client_leaving_before_the_body_is_complete_means_no_call() -> None:
    calls: list[Environ] = []
    communicator = HttpCommunicator(WsgiToAsgi(counting_app(calls)), "POST", "/")
    await communicator.send_body(b"part", more_body=True)
    await communicator.send_body(b"more", more_body=True)
    await communicator.disconnect(timeout=PATIENCE)
    assert calls == []
    assert communicator.future.done()
    assert communicator.output_queue.empty()


async def test_a_client_leaving_before_any_body_means_no_call() -> None:
    calls: list[Environ] = []
    client = Client([{"type": "http.disconnect"}])
    await call(
        WsgiToAsgi(counting_app(calls)), http_scope(), client.receive, client.send
    )
    assert (calls, client.sent) == ([], [])


async def test_a_request_body_that_is_not_bytes_is_a_type_error() -> None:
    client = Client([{"type": "http.request", "body": "text", "more_body": False}])
    with pytest.raises(TypeError, match="'body' is str, not bytes: 'text'"):
        await call(WsgiToAsgi(echo_app), http_scope(), client.receive, client.send)


async def test_a_hundred_megabyte_body_does_not_sit_in_memory() -> None:
    total_chunks = 100  # 1 MiB each

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        digest = hashlib.sha256()
        stream = environ["wsgi.input"]
        while piece := stream.read(CHUNK):
            digest.update(piece)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [digest.hexdigest().encode()]

    expected = hashlib.sha256()
    produced = 0

    async def receive() -> Message:
        nonlocal produced
        if produced == total_chunks:
            await asyncio.Event().wait()  # the watcher's receive: nothing more
        # A fresh chunk each time, so nothing is shared between chunks.
        chunk = bytes([produced % 251]) * MiB
        produced += 1
        expected.update(chunk)
        return {
            "type": "http.request",
            "body": chunk,
            "more_body": produced < total_chunks,
        }

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await call(WsgiToAsgi(app), http_scope("POST", "/upload"), receive, send)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert produced == total_chunks
    assert bodies(sent) == [(expected.hexdigest().encode(), False)]
    growth = peak - baseline
    assert growth < 20 * MiB, f"peak memory grew by {growth / MiB:.1f} MiB"


# -- start_response and the PEP 3333 rules ------------------------------------------


async def test_a_simple_response() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(
            "201 Created", [("Content-Type", "text/plain"), ("X-Thing", "a b")]
        )
        return [b"made"]

    messages = await exchange(app)
    assert messages[0] == {
        "type": "http.response.start",
        "status": 201,
        "headers": [(b"content-type", b"text/plain"), (b"x-thing", b"a b")],
    }
    assert bodies(messages) == [(b"made", False)]


async def test_start_response_twice_without_exc_info_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    with pytest.raises(
        RuntimeError,
        match=r"^start_response\(\) was called a second time without exc_info; "
        r"only an application handling an error may replace its response "
        r"\(pass exc_info=sys.exc_info\(\)\)$",
    ):
        await communicator.get_response()


async def test_exc_info_before_the_headers_are_sent_replaces_the_response() -> None:
    body = TrackedBody([])

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [("Content-Type", "text/html"), ("X-Old", "1")])
        try:
            raise ValueError("lookup failed")
        except ValueError:
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain")],
                sys.exc_info(),
            )
        body._chunks = iter([b"sorry"])
        return body

    response = await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert (response.status, response.body) == (500, b"sorry")
    assert response.headers == [(b"content-type", b"text/plain")]
    assert body.close_calls == 1


async def test_exc_info_after_empty_chunks_still_replaces_the_response() -> None:
    # Empty chunks do not send the headers, so the response can still change.
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        yield b""
        try:
            raise KeyError("late")
        except KeyError:
            start_response("503 Service Unavailable", [], sys.exc_info())
        yield b"busy"

    messages = await exchange(app)
    assert messages[0]["status"] == 503
    assert bodies(messages) == [(b"busy", True), (b"", False)]


async def test_exc_info_after_the_headers_are_sent_is_re_raised() -> None:
    body = TrackedBody([])
    reraised = []

    def chunks(start_response: StartResponse) -> Iterator[bytes]:
        yield b"partial"
        try:
            raise ValueError("failed mid-stream")
        except ValueError:
            try:
                start_response("500 Internal Server Error", [], sys.exc_info())
            except ValueError as error:
                reraised.append(error)
                raise

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        body._chunks = chunks(start_response)
        return body

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    start = await communicator.receive_response_start(timeout=PATIENCE)
    assert start.status == 200
    assert await communicator.receive_body(timeout=PATIENCE) == b"partial"
    with pytest.raises(ValueError, match=r"^failed mid-stream$") as excinfo:
        await communicator.receive_body(timeout=PATIENCE)
    assert reraised == [excinfo.value]
    assert body.close_calls == 1


async def test_returning_without_start_response_is_an_error() -> None:
    body = TrackedBody([])

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        return body

    with pytest.raises(
        RuntimeError,
        match=r"^the WSGI application returned without calling start_response\(\); "
        r"call start_response\(status, headers\) before returning the body$",
    ):
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert body.close_calls == 1


async def test_an_empty_list_without_start_response_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return []

    with pytest.raises(RuntimeError, match=r"returned without calling start_resp"):
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()


async def test_a_body_before_start_response_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return [b"oops"]

    with pytest.raises(
        RuntimeError,
        match=r"^the WSGI application produced a body chunk before calling "
        r"start_response\(\)",
    ):
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()


async def test_start_response_may_come_in_the_first_iteration() -> None:
    # PEP 3333 lets a generator call start_response when first iterated.
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("202 Accepted", [])
        yield b"later"

    response = await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert (response.status, response.body) == (202, b"later")


@pytest.mark.parametrize("as_list", [True, False], ids=["list", "generator"])
async def test_a_str_body_chunk_is_a_type_error(as_list: bool) -> None:
    chunks: list[Any] = [b"fine", "not bytes"]
    body = TrackedBody(chunks)

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [])
        return chunks if as_list else body

    with pytest.raises(
        TypeError,
        match=r"^the WSGI application produced a body chunk that is a str, not bytes: "
        r"'not bytes'; encode text before returning it$",
    ):
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    if not as_list:
        assert body.close_calls == 1


async def test_bytearray_and_memoryview_chunks_are_accepted() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[Any]:
        start_response("200 OK", [])
        yield bytearray(b"ab")
        yield memoryview(b"cd")

    response = await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert response.body == b"abcd"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\nX-Injected: 1"])
async def test_a_header_value_with_a_line_break_is_a_value_error(bad: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Bad", bad)])
        return [b""]

    with pytest.raises(ValueError) as excinfo:
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert str(excinfo.value) == (
        f"start_response() header 'X-Bad' holds a line break or NUL ({bad!r}); "
        "a header value must be one line"
    )


@pytest.mark.parametrize(
    ("headers", "error", "message"),
    [
        (("X", "1"), TypeError, "headers must be a list of (name, value) tuples"),
        ([("X", 1)], TypeError, "headers must be (str, str) pairs of latin-1 text"),
        ([(b"X", "1")], TypeError, "headers must be (str, str) pairs"),
        ([("X",)], TypeError, "headers must be (str, str) pairs"),
        ([("X", "\u2603")], TypeError, "pairs of latin-1 text (got ('X', '\u2603'))"),
    ],
)
async def test_malformed_response_headers_are_refused(
    headers: Any, error: type[Exception], message: str
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", headers)
        return [b""]

    with pytest.raises(error) as excinfo:
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("OK", ValueError),
        ("20 OK", ValueError),
        ("099 Low", ValueError),
        (200, TypeError),
    ],
)
async def test_a_malformed_status_is_refused(
    status: Any, error: type[Exception]
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, [])
        return [b""]

    with pytest.raises(error, match=r"status must be a str such as '200 OK' \(got "):
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()


@pytest.mark.parametrize("name", ["X-A\r", "Bad Name", "Colon:", "", "caf\u00e9"])
async def test_a_header_name_that_is_not_an_http_token_is_a_value_error(
    name: str,
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [(name, "v")])
        return [b""]

    with pytest.raises(ValueError) as excinfo:
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert str(excinfo.value) == (
        f"start_response() header name {name!r} is not an HTTP token; "
        "use letters, digits and !#$%&'*+-.^_`|~ only"
    )


async def test_a_status_without_a_reason_phrase_is_accepted() -> None:
    response = await HttpCommunicator(
        WsgiToAsgi(text_app(status="418")), "GET", "/"
    ).get_response()
    assert response.status == 418


async def test_the_write_callable_sends_before_the_body() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"one ")
        write(b"")
        write(b"two ")
        return [b"three"]

    messages = await exchange(app)
    assert bodies(messages) == [(b"one ", True), (b"two ", True), (b"three", False)]


async def test_write_sends_at_once_while_the_app_still_runs() -> None:
    gate = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"early")
        if not gate.wait(PATIENCE):
            raise AssertionError("the test never opened the gate")
        return [b"late"]

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    try:
        assert await communicator.receive_body(timeout=PATIENCE) == b"early"
    finally:
        gate.set()
    assert await communicator.receive_body(timeout=PATIENCE) == b"late"
    await communicator.get_response(timeout=PATIENCE)


async def test_write_with_str_is_a_type_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write: Any = start_response("200 OK", [])
        write("text")
        return []

    with pytest.raises(
        TypeError, match=r"produced data for write\(\) that is a str, not bytes"
    ):
        await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()


async def test_write_raises_once_the_client_is_gone_and_the_call_ends_quietly() -> None:
    gate = threading.Event()
    outcomes: list[BaseException | None] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"first")
        gate.wait(PATIENCE)
        try:
            write(b"second")
        except BaseException as error:
            outcomes.append(error)
            raise
        outcomes.append(None)
        return []

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    try:
        assert await communicator.receive_body(timeout=PATIENCE) == b"first"
        await communicator.send_disconnect()
        # The disconnect watcher takes the message off the queue.
        assert await _wait_until(communicator.input_queue.empty)
    finally:
        gate.set()
    await communicator.wait(timeout=PATIENCE)  # no error comes out
    (error,) = outcomes
    assert isinstance(error, ConnectionError)
    assert "client disconnected" in str(error)


# -- the response body: flags, truncation, streaming ---------------------------------


async def test_a_generator_streams_each_chunk_then_an_empty_final_one() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"a"
        yield b"b"
        yield b"c"

    messages = await exchange(app)
    assert [m["type"] for m in messages] == ["http.response.start"] + [
        "http.response.body"
    ] * 4
    assert bodies(messages) == [(b"a", True), (b"b", True), (b"c", True), (b"", False)]


async def test_a_list_ends_with_its_last_chunk() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        return [b"a", b"b"]

    assert bodies(await exchange(app)) == [(b"a", True), (b"b", False)]


async def test_an_empty_list_gives_one_empty_final_body() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    messages = await exchange(app)
    assert messages[0]["status"] == 204
    assert bodies(messages) == [(b"", False)]


async def test_empty_chunks_are_skipped() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        yield b"a"
        yield b""
        yield b"b"

    assert bodies(await exchange(app)) == [(b"a", True), (b"b", True), (b"", False)]


async def test_headers_wait_for_the_first_non_empty_chunk() -> None:
    gate = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        gate.wait(PATIENCE)
        yield b"now"

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    try:
        await communicator.send_request()
        assert await communicator.receive_nothing(timeout=0.2)
    finally:
        gate.set()
    response = await communicator.get_response(timeout=PATIENCE)
    assert response.body == b"now"


async def test_the_first_chunk_arrives_before_the_second_is_produced() -> None:
    gate = threading.Event()
    produced: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        produced.append(b"one")
        yield b"one"
        if not gate.wait(PATIENCE):
            raise AssertionError("the test never opened the gate")
        produced.append(b"two")
        yield b"two"

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    try:
        start = await communicator.receive_response_start(timeout=PATIENCE)
        assert start.header("content-type") == "text/event-stream"
        assert await communicator.receive_body(timeout=PATIENCE) == b"one"
        assert not communicator.response_complete
        assert produced == [b"one"]
    finally:
        gate.set()
    assert await communicator.receive_body(timeout=PATIENCE) == b"two"
    response = await communicator.get_response(timeout=PATIENCE)
    assert response.body == b"onetwo"


@pytest.mark.parametrize("as_list", [True, False], ids=["list", "generator"])
async def test_content_length_truncates_the_body(as_list: bool) -> None:
    body = TrackedBody([b"abc", b"def", b"ghi"])

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"abc", b"def", b"ghi"] if as_list else body

    messages = await exchange(app)
    assert bodies(messages) == [(b"abc", True), (b"de", False)]
    if not as_list:
        # The iteration stopped there: the third chunk was never produced.
        assert body.produced == [b"abc", b"def"]
        assert body.close_calls == 1


async def test_content_length_stops_an_endless_generator() -> None:
    body = TrackedBody(iter(lambda: b"x" * 10, None))

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [("Content-Length", "25")])
        return body

    messages = await exchange(app)
    assert b"".join(b for b, _ in bodies(messages)) == b"x" * 25
    assert bodies(messages)[-1][1] is False
    assert len(body.produced) == 3
    assert body.close_calls == 1


async def test_content_length_with_padding_is_understood() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", " 2 ")])
        return [b"abcd"]

    assert bodies(await exchange(app)) == [(b"ab", False)]


async def test_nothing_is_sent_after_content_length_is_reached_by_write() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "2")])
        write(b"ab")
        write(b"cd")
        return [b""]

    # The validator refuses a body message after the final one.
    assert bodies(await exchange(app)) == [(b"ab", False)]


async def test_a_content_length_of_non_ascii_digits_is_ignored() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "\xb2")])
        return [b"abc"]

    assert bodies(await exchange(app))[-1] == (b"abc", False)


# -- close(), errors and clients that leave --------------------------------------------


async def test_close_is_called_once_after_a_successful_iteration() -> None:
    body = TrackedBody([b"a", b"b"])

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    response = await HttpCommunicator(WsgiToAsgi(app), "GET", "/").get_response()
    assert response.body == b"ab"
    assert body.produced == [b"a", b"b"]
    assert body.close_calls == 1


async def test_close_is_called_when_the_iteration_fails() -> None:
    def failing() -> Iterator[bytes]:
        yield b"a"
        raise LookupError("the data went away")

    body = TrackedBody(failing())

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    with pytest.raises(LookupError, match="the data went away"):
        await communicator.get_response(timeout=PATIENCE)
    assert body.close_calls == 1


async def test_an_error_before_start_response_propagates() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ZeroDivisionError("app broke")

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/")
    with pytest.raises(ZeroDivisionError, match="app broke"):
        await communicator.get_response(timeout=PATIENCE)


async def test_an_error_in_close_propagates() -> None:
    class BadClose(TrackedBody):
        def close(self) -> None:
            super().close()
            raise OSError("close failed")

    body = BadClose([b"a"])

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    client = Client()
    with pytest.raises(OSError, match="close failed"):
        await call(WsgiToAsgi(app), http_scope(), client.receive, client.send)
    assert body.close_calls == 1


async def test_a_disconnect_while_the_app_waits_between_chunks_stops_it() -> None:
    # A server without ASGI 2.4's raising send(): only the disconnect message
    # tells the adapter the client is gone.
    gate = Gate()

    def chunks() -> Iterator[bytes]:
        yield b"first"
        gate.wait()
        yield b"second"
        yield b"third"

    body = TrackedBody(chunks())

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    communicator = ApplicationCommunicator(WsgiToAsgi(app), http_scope(), validate=True)
    async with communicator:
        try:
            await communicator.send_input({"type": "http.request", "body": b""})
            start = await communicator.receive_output(timeout=PATIENCE)
            assert start["type"] == "http.response.start"
            first = await communicator.receive_output(timeout=PATIENCE)
            assert (first["body"], first["more_body"]) == (b"first", True)
            await gate.until_reached()
            await communicator.send_input({"type": "http.disconnect"})
            assert await _wait_until(communicator.input_queue.empty)
        finally:
            gate.open()
        await communicator.wait(timeout=PATIENCE)
        assert body.produced == [b"first", b"second"]
        assert body.close_calls == 1
        assert communicator.output_queue.empty()  # 'second' was never sent


async def test_a_disconnect_mid_stream_through_the_http_communicator() -> None:
    gate = Gate()

    def chunks() -> Iterator[bytes]:
        n = 0
        while n < 1000:
            n += 1
            yield b"event %d\n" % n
            if n == 2:
                gate.wait()

    body = TrackedBody(chunks())

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    communicator = HttpCommunicator(WsgiToAsgi(app), "GET", "/events")
    try:
        assert await communicator.receive_body(timeout=PATIENCE) == b"event 1\n"
        assert await communicator.receive_body(timeout=PATIENCE) == b"event 2\n"
        await gate.until_reached()
        await communicator.send_disconnect()
        # The disconnect watcher takes the message off the queue.
        assert await _wait_until(communicator.input_queue.empty)
    finally:
        gate.open()
    await communicator.disconnect(timeout=PATIENCE)
    assert body.close_calls == 1
    assert len(body.produced) == 3


async def test_send_raising_os_error_stops_the_iteration_at_the_next_chunk() -> None:
    gate = Gate()

    def chunks() -> Iterator[bytes]:
        yield b"one"
        yield b"two"
        gate.wait()
        yield b"three"
        yield b"four"

    body = TrackedBody(chunks())

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    client = Client()
    delivered: list[bytes] = []

    async def send(message: Message) -> None:
        if message.get("body") == b"two":
            await gate.until_reached()
            # Let the generator go on only once the adapter has seen the error.
            asyncio.get_running_loop().call_soon(gate.open)
            raise ConnectionResetError("peer went away")
        delivered.append(message.get("body", b"<start>"))

    try:
        # ASGI 2.4: the OSError means the client left; the call ends quietly.
        await call(WsgiToAsgi(app), http_scope(), client.receive, send)
    finally:
        gate.open()
    assert delivered == [b"<start>", b"one"]
    assert body.produced == [b"one", b"two", b"three"]
    assert body.close_calls == 1


async def test_an_error_other_than_os_error_from_send_propagates() -> None:
    body = TrackedBody([b"a", b"b"])

    def app(environ: Environ, start_response: StartResponse) -> TrackedBody:
        start_response("200 OK", [])
        return body

    client = Client()

    async def send(message: Message) -> None:
        raise RuntimeError("server bug")

    with pytest.raises(RuntimeError, match="server bug"):
        await call(WsgiToAsgi(app), http_scope(), client.receive, send)
    # The worker still finishes the iterable and closes it.
    assert body.closed.wait(PATIENCE)


async def test_a_slow_client_makes_the_worker_wait_instead_of_buffering() -> None:
    payload = b"x" * CHUNK
    produced = 0
    body_closed = threading.Event()
    stuck = asyncio.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        nonlocal produced
        start_response("200 OK", [])
        try:
            while produced < 2000:  # bounded, so a failure cannot run away
                produced += 1
                yield payload
        finally:
            body_closed.set()

    client = Client()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await stuck.wait()  # the client does not read
            raise BrokenPipeError("the client gave up")

    running = asyncio.ensure_future(
        call(WsgiToAsgi(app), http_scope(), client.receive, send)
    )
    limit = HIGH_WATER // CHUNK + 4
    try:
        assert await _wait_until(lambda: produced >= HIGH_WATER // CHUNK)
        await asyncio.sleep(0.3)  # room to run ahead, if it could
        assert produced <= limit, f"{produced} chunks produced for a stuck client"
    finally:
        stuck.set()
        await asyncio.wait_for(running, PATIENCE)
    assert body_closed.is_set()
    assert produced <= limit


async def test_cancelling_the_call_mid_stream_stops_the_worker() -> None:
    payload = b"z" * CHUNK
    produced = 0
    body_closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        nonlocal produced
        start_response("200 OK", [])
        try:
            while produced < 2000:
                produced += 1
                yield payload
        finally:
            body_closed.set()

    client = Client()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await asyncio.Event().wait()  # a client that never reads

    running = asyncio.ensure_future(
        call(WsgiToAsgi(app), http_scope(), client.receive, send)
    )
    # The worker fills the buffer, then waits for the client.
    assert await _wait_until(lambda: produced >= HIGH_WATER // CHUNK)
    running.cancel()  # the server gives up on the request
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await _wait_until(body_closed.is_set)
    assert produced <= HIGH_WATER // CHUNK + 4


async def test_cancelling_the_call_leaves_wsgi_input_open_for_the_running_app() -> None:
    gate = Gate()
    read: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        gate.wait()  # the server gives up on the request meanwhile
        read.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b""]

    client = Client(
        [{"type": "http.request", "body": b"still here", "more_body": False}]
    )
    running = asyncio.ensure_future(
        call(WsgiToAsgi(app), http_scope("POST", "/"), client.receive, client.send)
    )
    try:
        await gate.until_reached()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        gate.open()
    assert await _wait_until(lambda: bool(read))
    assert read == [b"still here"]


async def test_a_server_answering_receive_with_requests_does_not_freeze_the_loop() -> (
    None
):
    # After the body, a server should send nothing but http.disconnect; one
    # that keeps answering with http.request must not make the adapter spin.
    gate = Gate()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        gate.wait()
        yield b"second"

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    running = asyncio.ensure_future(call(WsgiToAsgi(app), http_scope(), receive, send))
    try:
        await gate.until_reached()
        await asyncio.sleep(0.05)  # the loop still runs other work
    finally:
        gate.open()
    await asyncio.wait_for(running, PATIENCE)
    assert b"".join(m.get("body", b"") for m in sent) == b"firstsecond"


async def test_a_slow_reader_gets_the_whole_body_with_bounded_lag() -> None:
    payload = b"y" * CHUNK
    total = 120
    lags: list[int] = []
    delivered = 0

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        for n in range(total):
            lags.append(n - delivered)
            yield payload

    client = Client()
    received: list[Message] = []

    async def send(message: Message) -> None:
        nonlocal delivered
        await asyncio.sleep(0.001)
        received.append(message)
        if message["type"] == "http.response.body" and message["body"]:
            delivered += 1

    await call(WsgiToAsgi(app), http_scope(), client.receive, send)
    assert received[0]["type"] == "http.response.start"
    flags = bodies(received)
    assert [more for _, more in flags] == [True] * total + [False]
    assert b"".join(body for body, _ in flags) == payload * total
    assert max(lags) <= HIGH_WATER // CHUNK + 4, max(lags)


async def test_concurrent_requests_run_side_by_side() -> None:
    barrier = threading.Barrier(3, timeout=PATIENCE)

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        barrier.wait()  # all three must be running at once to pass
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    adapter = WsgiToAsgi(app)
    responses = await asyncio.gather(
        *(
            HttpCommunicator(adapter, "GET", f"/{n}").get_response(timeout=PATIENCE)
            for n in range(3)
        )
    )
    assert sorted(r.body for r in responses) == [b"/0", b"/1", b"/2"]


async def test_nothing_is_pending_the_moment_the_call_returns() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        write = start_response("200 OK", [])
        write(b"a")
        time.sleep(0.05)  # the loop waits for more: the watcher starts
        yield b"b"

    client = Client()
    await call(WsgiToAsgi(app), http_scope(), client.receive, client.send)
    assert asyncio.all_tasks() == {asyncio.current_task()}
