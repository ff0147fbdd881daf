"""AsgiToWsgi called the way a WSGI server calls it: crafted environs, from threads."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from asgiref_core.validate import validator
from asgiref_core.wsgi import AsgiToWsgi

pytestmark = pytest.mark.timeout(30)

THREAD_PREFIX = "asgiref_core-asgi-to-wsgi-"
CHUNK = 64 * 1024

App = Callable[..., Any]


# --- what a WSGI server does ------------------------------------------------------


def make_environ(
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    *,
    stream: Any = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An environ as a WSGI server builds it; ``body`` sets CONTENT_LENGTH."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream if stream is not None else io.BytesIO(body or b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body is not None:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ.update(extra)
    return environ


class StartResponse:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        self.calls.append((status, headers))
        return lambda data: None

    @property
    def status(self) -> str:
        return self.calls[-1][0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self.calls[-1][1]


def fetch(adapter: AsgiToWsgi, environ: dict[str, Any]) -> tuple[str, bytes]:
    """Call the adapter and drain the response, as a server does."""
    start_response = StartResponse()
    result = adapter(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return start_response.status, body


@pytest.fixture(autouse=True)
def no_loop_thread_left() -> Iterator[None]:
    yield
    leftover = [t.name for t in threading.enumerate() if THREAD_PREFIX in t.name]
    assert leftover == [], "an adapter's loop thread outlived its test"


@pytest.fixture
def adapt() -> Iterator[Callable[..., AsgiToWsgi]]:
    """Build adapters that are closed when the test ends."""
    made: list[AsgiToWsgi] = []

    def build(app: App, **options: Any) -> AsgiToWsgi:
        adapter = AsgiToWsgi(app, **options)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


class Gate:
    """Opened from the test's thread, awaited by the application on the loop."""

    def __init__(self) -> None:
        self._opened = threading.Event()

    def open(self) -> None:
        self._opened.set()

    async def wait(self) -> None:
        while not self._opened.is_set():
            await asyncio.sleep(0.002)


# --- applications ---------------------------------------------------------------


async def read_body(receive: Callable[[], Any]) -> bytes:
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message["body"]
        if not message["more_body"]:
            return bytes(body)


async def respond(send: Callable[[Any], Any], body: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise ValueError("no lifespan here")
    await respond(send, await read_body(receive))


def recording(scopes: list[dict[str, Any]]) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")
        scopes.append(scope)
        await respond(send, b"")

    return app


# --- scope ------------------------------------------------------------------------


class TestScope:
    def test_an_environ_becomes_a_complete_http_scope(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        environ = make_environ(
            "POST",
            "/items/3",
            b"{}",
            headers={"Accept": "text/plain", "X-Trace-Id": "abc"},
            QUERY_STRING="page=2&q=a%20b",
            CONTENT_TYPE="application/json",
            SERVER_PROTOCOL="HTTP/1.0",
            SERVER_NAME="example.org",
            SERVER_PORT="8080",
            REMOTE_ADDR="10.0.0.7",
            REMOTE_PORT="40123",
        )
        environ["wsgi.url_scheme"] = "https"
        fetch(adapt(recording(scopes), lifespan=False), environ)

        [scope] = scopes
        assert scope["type"] == "http"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
        assert scope["http_version"] == "1.0"
        assert scope["method"] == "POST"
        assert scope["scheme"] == "https"
        assert scope["path"] == "/items/3"
        assert scope["raw_path"] == b"/items/3"
        assert scope["query_string"] == b"page=2&q=a%20b"
        assert scope["root_path"] == ""
        assert scope["client"] == ("10.0.0.7", 40123)
        assert scope["server"] == ("example.org", 8080)
        assert sorted(scope["headers"]) == [
            (b"accept", b"text/plain"),
            (b"content-length", b"2"),
            (b"content-type", b"application/json"),
            (b"host", b"testserver"),
            (b"x-trace-id", b"abc"),
        ]
        assert "state" not in scope

    def test_the_scope_passes_the_conformance_checker(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        adapter = adapt(validator(echo), lifespan=False)
        body = bytes(range(256)) * 1000  # several chunks

        assert fetch(adapter, make_environ("PUT", "/x", body)) == ("200 OK", body)

    def test_path_is_utf8_text_and_raw_path_keeps_the_bytes(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        # PEP 3333: the path's bytes, each carried as one latin-1 character.
        path_info = "/café/a b".encode().decode("latin-1")
        fetch(adapt(recording(scopes), lifespan=False), make_environ(path=path_info))

        assert scopes[0]["path"] == "/café/a b"
        assert scopes[0]["raw_path"] == b"/caf%C3%A9/a%20b"

    def test_bytes_that_are_not_utf8_become_replacement_characters(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        fetch(adapt(recording(scopes), lifespan=False), make_environ(path="/\xff"))

        assert scopes[0]["path"] == "/\ufffd"
        assert scopes[0]["raw_path"] == b"/%FF"

    def test_script_name_is_the_root_path_and_starts_the_path(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        environ = make_environ(path="/users", SCRIPT_NAME="/api")
        fetch(adapt(recording(scopes), lifespan=False), environ)

        assert scopes[0]["root_path"] == "/api"
        assert scopes[0]["path"] == "/api/users"
        assert scopes[0]["raw_path"] == b"/api/users"

    def test_the_request_target_the_server_kept_is_the_raw_path(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        environ = make_environ(path="/a/b", RAW_URI="/a%2Fb?x=1")
        fetch(adapt(recording(scopes), lifespan=False), environ)

        assert scopes[0]["path"] == "/a/b"
        assert scopes[0]["raw_path"] == b"/a%2Fb"

    @pytest.mark.parametrize(
        ("protocol", "version"),
        [("HTTP/1.1", "1.1"), ("HTTP/1.0", "1.0"), ("HTTP/2", "2"), ("HTTP/2.0", "2")],
    )
    def test_http_version_comes_from_server_protocol(
        self, adapt: Callable[..., AsgiToWsgi], protocol: str, version: str
    ) -> None:
        scopes: list[dict[str, Any]] = []
        environ = make_environ(SERVER_PROTOCOL=protocol)
        fetch(adapt(recording(scopes), lifespan=False), environ)

        assert scopes[0]["http_version"] == version

    def test_a_header_given_twice_by_the_server_is_sent_once(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        environ = make_environ(
            "POST", body=b"", CONTENT_TYPE="text/plain", HTTP_CONTENT_TYPE="text/plain"
        )
        fetch(adapt(recording(scopes), lifespan=False), environ)

        names = [name for name, _ in scopes[0]["headers"]]
        assert names.count(b"content-type") == 1

    def test_without_remote_addr_there_is_no_client(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        environ = make_environ()
        del environ["REMOTE_ADDR"], environ["REMOTE_PORT"]
        fetch(adapt(recording(scopes), lifespan=False), environ)

        assert scopes[0]["client"] is None


# --- request body -------------------------------------------------------------------


class RecordingStream:
    """A wsgi.input that notes every read: how much, and on which thread."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.threads: set[str] = set()
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        self.threads.add(threading.current_thread().name)
        data = self._data.read(size)
        self.total += len(data)
        return data


class TestRequestBody:
    def test_a_small_body_arrives_in_one_message(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        messages: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            messages.append(await receive())
            await respond(send, b"")

        fetch(adapt(app, lifespan=False), make_environ("POST", body=b"hello"))

        assert messages == [
            {"type": "http.request", "body": b"hello", "more_body": False}
        ]

    def test_a_request_without_body_gets_one_empty_message(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        messages: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            messages.append(await receive())
            await respond(send, b"")

        fetch(adapt(app, lifespan=False), make_environ())

        assert messages == [{"type": "http.request", "body": b"", "more_body": False}]

    def test_a_large_body_arrives_in_chunks_with_more_body(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        messages: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            while True:
                message = await receive()
                messages.append(message)
                if not message["more_body"]:
                    break
            await respond(send, b"".join(m["body"] for m in messages))

        body = bytes(range(256)) * 4096  # 1 MiB
        _, echoed = fetch(adapt(app, lifespan=False), make_environ("POST", body=body))

        assert echoed == body
        assert len(messages) >= len(body) // CHUNK
        assert all(len(m["body"]) <= CHUNK for m in messages)
        assert [m["more_body"] for m in messages] == [True] * (len(messages) - 1) + [
            False
        ]

    def test_the_body_is_read_on_the_wsgi_servers_thread(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        stream = RecordingStream(b"x" * (5 * CHUNK))
        environ = make_environ("POST", stream=stream, CONTENT_LENGTH=str(5 * CHUNK))
        adapter = adapt(echo, lifespan=False)

        with ThreadPoolExecutor(1, thread_name_prefix="wsgi-server") as pool:
            _, body = pool.submit(fetch, adapter, environ).result()

        assert len(body) == 5 * CHUNK
        [reader] = stream.threads
        assert reader.startswith("wsgi-server")

    def test_reading_stops_at_content_length(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        stream = io.BytesIO(b"12345" + b"next request")
        environ = make_environ("POST", stream=stream, CONTENT_LENGTH="5")

        assert fetch(adapt(echo, lifespan=False), environ) == ("200 OK", b"12345")
        assert stream.read() == b"next request"

    def test_without_content_length_the_body_is_empty_and_unread(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        stream = RecordingStream(b"not announced")
        environ = make_environ("POST", stream=stream)

        assert fetch(adapt(echo, lifespan=False), environ) == ("200 OK", b"")
        assert stream.total == 0

    def test_a_terminated_input_without_length_is_read_to_its_end(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        body = b"chunked upload " * 10000
        environ = make_environ("POST", stream=io.BytesIO(body))
        environ["wsgi.input_terminated"] = True

        assert fetch(adapt(echo, lifespan=False), environ) == ("200 OK", body)

    def test_a_body_cut_short_is_a_disconnect(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        messages: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            messages.append(await receive())
            messages.append(await receive())

        environ = make_environ("POST", stream=io.BytesIO(b""), CONTENT_LENGTH="100")
        with pytest.raises(RuntimeError, match="without starting a response"):
            fetch(adapt(app, lifespan=False), environ)

        assert messages == [{"type": "http.disconnect"}] * 2

    def test_an_invalid_content_length_is_a_bad_request(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        called: list[object] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            called.append(scope)

        environ = make_environ("POST", stream=io.BytesIO(b"x"), CONTENT_LENGTH="ten")
        status, body = fetch(adapt(app, lifespan=False), environ)

        assert status == "400 Bad Request"
        assert b"invalid Content-Length 'ten'" in body
        assert called == []

    def test_past_the_body_receive_waits_for_the_response_to_end(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        events: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()

            async def listen() -> None:
                message = await receive()
                events.append(message["type"])

            listener = asyncio.ensure_future(listen())
            await asyncio.sleep(0.05)
            events.append("responding")
            await respond(send, b"done")
            await listener

        fetch(adapt(app, lifespan=False), make_environ("POST", body=b"x"))

        assert events == ["responding", "http.disconnect"]

    def test_a_slow_reader_keeps_at_most_one_chunk_read_ahead(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        stream = RecordingStream(b"u" * (200 * CHUNK))
        ahead: list[int] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            received = 0
            while True:
                message = await receive()
                received += len(message["body"])
                ahead.append(stream.total - received)
                await asyncio.sleep(0)
                if not message["more_body"]:
                    break
            await respond(send, str(received).encode())

        environ = make_environ("POST", stream=stream, CONTENT_LENGTH=str(200 * CHUNK))
        assert (
            fetch(adapt(app, lifespan=False), environ)[1] == str(200 * CHUNK).encode()
        )
        assert max(ahead) == 0


# --- response -----------------------------------------------------------------------


class TestResponse:
    @pytest.mark.parametrize(
        ("status", "line"),
        [
            (200, "200 OK"),
            (201, "201 Created"),
            (404, "404 Not Found"),
            (418, "418 I'm a Teapot"),
            (299, "299 Unknown"),
        ],
    )
    def test_the_status_line_carries_the_reason_phrase(
        self, adapt: Callable[..., AsgiToWsgi], status: int, line: str
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await respond(send, b"", status=status)

        assert fetch(adapt(app, lifespan=False), make_environ())[0] == line

    def test_headers_become_text_and_hop_by_hop_ones_are_dropped(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-name", "Zoë".encode("latin-1")),
                (b"set-cookie", b"a=1"),
                (b"set-cookie", b"b=2"),
                (b"connection", b"close"),
                (b"Transfer-Encoding", b"chunked"),
            ]
            await send(
                {"type": "http.response.start", "status": 200, "headers": headers}
            )
            await send({"type": "http.response.body", "body": b"ok"})

        start_response = StartResponse()
        result = adapt(app, lifespan=False)(make_environ(), start_response)

        assert list(result) == [b"ok"]
        assert start_response.headers == [
            ("content-type", "text/plain; charset=utf-8"),
            ("x-name", "Zoë"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]

    def test_a_complete_small_response_is_a_list_so_servers_can_size_it(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        result = adapt(echo, lifespan=False)(
            make_environ("POST", body=b"abc"), StartResponse()
        )

        assert result == [b"abc"]

    def test_the_body_is_streamed_as_the_application_sends_it(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        gate = Gate()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send(
                {"type": "http.response.body", "body": b"first", "more_body": True}
            )
            await gate.wait()
            await send({"type": "http.response.body", "body": b"second"})

        start_response = StartResponse()
        result = iter(adapt(app, lifespan=False)(make_environ(), start_response))

        assert start_response.status == "200 OK"
        assert next(result) == b"first"  # while the application is still waiting
        gate.open()
        assert next(result) == b"second"
        with pytest.raises(StopIteration):
            next(result)

    def test_empty_and_interim_chunks_are_not_yielded(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "more_body": True})
            await asyncio.sleep(0)
            await send({"type": "http.response.body"})

        assert fetch(adapt(app, lifespan=False), make_environ()) == (
            "204 No Content",
            b"",
        )

    def test_a_double_callable_application_is_served(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        class Asgi2App:
            def __init__(self, scope: dict[str, Any]) -> None:
                if scope["type"] != "http":
                    raise ValueError("http only")
                self.scope = scope

            async def __call__(self, receive: Any, send: Any) -> None:
                await respond(send, self.scope["path"].encode())

        adapter = adapt(Asgi2App)

        assert fetch(adapter, make_environ(path="/two")) == ("200 OK", b"/two")


# --- application errors -------------------------------------------------------------


class Boom(Exception):
    pass


def app_sending(*messages: dict[str, Any]) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    return app


START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"x"}


class TestApplicationErrors:
    def test_an_exception_before_the_response_comes_out_of_the_wsgi_call(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise Boom("broken handler")

        start_response = StartResponse()
        with pytest.raises(Boom, match="broken handler"):
            adapt(app, lifespan=False)(make_environ(), start_response)
        assert start_response.calls == []

    def test_an_exception_mid_stream_comes_out_of_the_iterator(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(START)
            await send(
                {"type": "http.response.body", "body": b"part", "more_body": True}
            )
            await asyncio.sleep(0.01)
            raise Boom("mid-stream")

        result = iter(adapt(app, lifespan=False)(make_environ(), StartResponse()))

        assert next(result) == b"part"
        with pytest.raises(Boom, match="mid-stream"):
            next(result)

    def test_an_exception_after_the_response_comes_out_at_its_end(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await respond(send, b"sent")
            raise Boom("in a background task")

        result = adapt(app, lifespan=False)(make_environ(), StartResponse())
        chunks: list[bytes] = []
        with pytest.raises(Boom, match="in a background task"):
            chunks.extend(result)
        assert chunks == [b"sent"]

    def test_returning_without_a_response_is_an_error(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        with pytest.raises(RuntimeError, match="returned without starting a response"):
            fetch(adapt(app_sending(), lifespan=False), make_environ())

    def test_returning_before_the_body_ends_is_an_error(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        app = app_sending(START, {**BODY, "more_body": True})

        with pytest.raises(RuntimeError, match="before completing the response"):
            fetch(adapt(app, lifespan=False), make_environ())

    @pytest.mark.parametrize(
        ("messages", "problem"),
        [
            ((BODY,), "'http.response.body' was sent before 'http.response.start'"),
            ((START, START), "'http.response.start' was sent twice"),
            ((START, BODY, BODY), "'http.response.body' was sent after the response"),
            ((START, {"type": "http.response.push"}), "on an HTTP connection"),
            (({"status": 200},), "must be dicts with a 'type' key"),
        ],
    )
    def test_messages_out_of_order_raise_in_send(
        self,
        adapt: Callable[..., AsgiToWsgi],
        messages: tuple[dict[str, Any], ...],
        problem: str,
    ) -> None:
        raised: list[BaseException] = []
        inner = app_sending(*messages)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                await inner(scope, receive, send)
            except Exception as error:
                raised.append(error)
                raise

        with pytest.raises((RuntimeError, TypeError)):
            fetch(adapt(app, lifespan=False), make_environ())
        assert problem in str(raised[0])

    @pytest.mark.parametrize(
        ("message", "problem"),
        [
            (
                {**START, "status": "200"},
                "'status' must be an int from 100 to 999 (got '200')",
            ),
            ({**START, "status": 42}, "(got 42)"),
            ({**START, "headers": [("a", "b")]}, "pairs of bytes (got [('a', 'b')])"),
            ({**START, "headers": [(b"a",)]}, "pairs of bytes"),
        ],
    )
    def test_a_malformed_start_says_what_is_wrong(
        self, adapt: Callable[..., AsgiToWsgi], message: dict[str, Any], problem: str
    ) -> None:
        with pytest.raises((TypeError, ValueError)) as raised:
            fetch(adapt(app_sending(message), lifespan=False), make_environ())
        assert problem in str(raised.value)
        assert "'http.response.start' message" in str(raised.value)

    def test_a_text_body_says_to_encode_it(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        app = app_sending(START, {"type": "http.response.body", "body": "text"})

        with pytest.raises(TypeError, match=r"'body' must be bytes \(got 'text'\)"):
            fetch(adapt(app, lifespan=False), make_environ())

    def test_concurrent_receive_calls_are_refused(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            first = asyncio.ensure_future(receive())
            await asyncio.sleep(0.01)
            try:
                await receive()
            finally:
                first.cancel()

        with pytest.raises(RuntimeError, match="await one receive"):
            fetch(adapt(app, lifespan=False), make_environ("POST", body=b"x"))


# --- the server closing the response early ----------------------------------------


def streamer(record: list[object], *, after: Callable[[Any], Any] | None = None) -> App:
    """Sends one chunk, then does ``after`` (default: stream on forever)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        try:
            if after is not None:
                record.append(await after(receive))
                return
            while True:
                await send(
                    {"type": "http.response.body", "body": b"tick", "more_body": True}
                )
                await asyncio.sleep(0.001)
        except BaseException as error:
            record.append(error)
            raise

    return app


class TestEarlyClose:
    def test_receive_returns_disconnect_once_the_server_closes(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        record: list[object] = []

        async def wait_for_message(receive: Any) -> Any:
            await receive()  # the (empty) body
            return await receive()

        result = iter(
            adapt(streamer(record, after=wait_for_message), lifespan=False)(
                make_environ(), StartResponse()
            )
        )
        assert next(result) == b"tick"
        result.close()  # type: ignore[attr-defined]

        # close() waited for the application to wind down.
        assert record == [{"type": "http.disconnect"}]

    def test_send_raises_oserror_once_the_server_closes(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        record: list[object] = []
        result = iter(
            adapt(streamer(record), lifespan=False)(make_environ(), StartResponse())
        )
        assert next(result) == b"tick"
        result.close()  # type: ignore[attr-defined]

        [error] = record
        assert isinstance(error, OSError)
        assert "client disconnected" in str(error)

    def test_an_error_the_disconnect_caused_is_not_reported(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        inner = streamer([])

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                await inner(scope, receive, send)
            except OSError:
                raise Boom("client went away") from None  # context still chained

        result = iter(adapt(app, lifespan=False)(make_environ(), StartResponse()))
        next(result)
        result.close()  # type: ignore[attr-defined]

    def test_an_unrelated_error_after_the_close_is_reported_by_close(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def after(receive: Any) -> None:
            await receive()
            await receive()
            raise Boom("cleanup failed")

        result = iter(
            adapt(streamer([], after=after), lifespan=False)(
                make_environ(), StartResponse()
            )
        )
        next(result)
        with pytest.raises(Boom, match="cleanup failed"):
            result.close()  # type: ignore[attr-defined]

    def test_an_application_ignoring_the_disconnect_is_cancelled(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        record: list[object] = []

        async def after(receive: Any) -> None:
            await asyncio.sleep(3600)

        adapter = adapt(
            streamer(record, after=after), lifespan=False, disconnect_timeout=0.1
        )
        result = iter(adapter(make_environ(), StartResponse()))
        next(result)
        began = time.monotonic()
        result.close()  # type: ignore[attr-defined]

        assert time.monotonic() - began < 5
        [error] = record
        assert isinstance(error, asyncio.CancelledError)

    def test_closing_twice_or_after_the_end_does_nothing(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(START)
            await send({**BODY, "more_body": True})
            await asyncio.sleep(0.01)
            await send(BODY)

        result = adapt(app, lifespan=False)(make_environ(), StartResponse())
        assert b"".join(result) == b"xx"
        result.close()  # type: ignore[attr-defined]
        result.close()  # type: ignore[attr-defined]


# --- backpressure -------------------------------------------------------------------


class TestBackpressure:
    def test_a_slow_consumer_of_an_endless_stream_holds_little(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        produced = [0]
        chunk = b"z" * 16384

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(START)
            while True:
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": True}
                )
                produced[0] += len(chunk)

        result = iter(adapt(app, lifespan=False)(make_environ(), StartResponse()))
        consumed = 0
        ahead = []
        for _ in range(400):  # 6.25 MiB, taken slowly
            consumed += len(next(result))
            time.sleep(0.0005)
            ahead.append(produced[0] - consumed)
        result.close()  # type: ignore[attr-defined]

        assert consumed == 400 * len(chunk)
        assert max(ahead) <= 512 * 1024

    def test_a_fast_consumer_is_not_held_back(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(START)
            for _ in range(999):
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"y" * 1000,
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b"y" * 1000})

        assert (
            fetch(adapt(app, lifespan=False), make_environ())[1]
            == b"y" * 999_000 + b"y" * 1000
        )


# --- lifespan -----------------------------------------------------------------------


def lifespan_app(
    events: list[str],
    *,
    startup: dict[str, Any] | None = None,
    shutdown: dict[str, Any] | None = None,
) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            events.append("startup")
            scope["state"]["db"] = {"connections": 0}
            scope["state"]["name"] = "from lifespan"
            await send(startup or {"type": "lifespan.startup.complete"})
            if startup is not None:
                return
            assert (await receive())["type"] == "lifespan.shutdown"
            events.append("shutdown")
            await send(shutdown or {"type": "lifespan.shutdown.complete"})
            return
        events.append("request")
        state = scope["state"]
        state["db"]["connections"] += 1
        state["mine"] = scope["path"]
        await respond(send, repr(sorted(state)).encode())

    return app


class TestLifespan:
    def test_startup_runs_before_the_first_request_and_shutdown_on_close(self) -> None:
        events: list[str] = []
        adapter = AsgiToWsgi(lifespan_app(events))
        assert events == []  # nothing runs until a request comes

        fetch(adapter, make_environ())
        fetch(adapter, make_environ())
        adapter.close()

        assert events == ["startup", "request", "request", "shutdown"]

    def test_each_request_gets_a_shallow_copy_of_the_state(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        scopes: list[dict[str, Any]] = []
        events: list[str] = []
        inner = lifespan_app(events)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                scopes.append(scope)
            await inner(scope, receive, send)

        adapter = adapt(app)
        fetch(adapter, make_environ(path="/one"))
        fetch(adapter, make_environ(path="/two"))

        first, second = (scope["state"] for scope in scopes)
        assert first is not second
        assert first["mine"] == "/one"
        assert second["mine"] == "/two"  # keys set by a request stay in it
        assert first["db"] is second["db"]  # values are shared
        assert second["db"] == {"connections": 2}

    @pytest.mark.parametrize("style", ["raises", "returns"])
    def test_an_application_without_lifespan_is_served(
        self, adapt: Callable[..., AsgiToWsgi], style: str
    ) -> None:
        scopes: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                if style == "raises":
                    raise ValueError(f"unsupported scope type {scope['type']!r}")
                return
            scopes.append(scope)
            await respond(send, b"served")

        adapter = adapt(app)

        assert fetch(adapter, make_environ()) == ("200 OK", b"served")
        assert "state" not in scopes[0]

    def test_lifespan_false_never_opens_a_lifespan(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        types: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            types.append(scope["type"])
            await respond(send, b"")

        fetch(adapt(app, lifespan=False), make_environ())

        assert types == ["http"]

    def test_a_failed_startup_fails_every_request_with_its_message(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        events: list[str] = []
        failed = {"type": "lifespan.startup.failed", "message": "database unreachable"}
        adapter = adapt(lifespan_app(events, startup=failed))

        for _ in range(2):
            with pytest.raises(RuntimeError) as raised:
                fetch(adapter, make_environ())
            assert "cannot serve requests" in str(raised.value)
            assert "failed with message 'database unreachable'" in str(raised.value)
        assert events == ["startup"]

    def test_a_startup_that_raises_fails_requests_with_the_exception(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            raise Boom("config missing")

        with pytest.raises(
            RuntimeError, match=r"startup raised Boom\('config missing'\)"
        ):
            fetch(adapt(app), make_environ())

    def test_a_startup_that_hangs_times_out(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await asyncio.sleep(3600)

        adapter = adapt(app, startup_timeout=0.1, shutdown_timeout=0.1)

        with pytest.raises(TimeoutError, match=r"startup_timeout=0\.1"):
            fetch(adapter, make_environ())

    def test_a_failed_shutdown_is_reported_by_close(self) -> None:
        events: list[str] = []
        failed = {"type": "lifespan.shutdown.failed", "message": "flush failed"}
        adapter = AsgiToWsgi(lifespan_app(events, shutdown=failed))
        fetch(adapter, make_environ())

        with pytest.raises(
            RuntimeError, match="shutdown failed with message 'flush failed'"
        ):
            adapter.close()
        adapter.close()  # closed regardless; once is enough

    def test_a_shutdown_that_hangs_is_bounded(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                await receive()
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await asyncio.sleep(3600)
            await respond(send, b"")

        adapter = AsgiToWsgi(app, shutdown_timeout=0.1)
        fetch(adapter, make_environ())

        with pytest.raises(
            RuntimeError, match="did not finish within shutdown_timeout"
        ):
            adapter.close()

    def test_a_lifespan_message_out_of_turn_fails_startup(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

        with pytest.raises(
            RuntimeError, match=r"expected 'lifespan\.startup\.complete'"
        ):
            fetch(adapt(app), make_environ())


# --- threads and closing ------------------------------------------------------------


class TestThreadsAndClose:
    def test_one_loop_thread_serves_every_request(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        threads: set[str] = set()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            threads.add(threading.current_thread().name)
            await respond(send, b"")

        adapter = adapt(app, lifespan=False)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: fetch(adapter, make_environ()), range(40)))

        [name] = threads
        assert name.startswith(THREAD_PREFIX)

    def test_requests_from_many_threads_run_concurrently_on_the_loop(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        waiting = [0]

        async def app(scope: Any, receive: Any, send: Any) -> None:
            body = await read_body(receive)
            # Every request waits here until all eight are in: only possible
            # when they run at the same time.
            waiting[0] += 1
            while waiting[0] < 8:
                await asyncio.sleep(0.001)
            await respond(send, body[::-1])

        adapter = adapt(app, lifespan=False)

        def one(n: int) -> tuple[str, bytes]:
            return fetch(adapter, make_environ("POST", body=f"request {n}".encode()))

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))

        assert results == [("200 OK", f"request {n}".encode()[::-1]) for n in range(8)]

    def test_many_threads_many_requests_each_get_their_own_response(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        adapter = adapt(echo)
        bodies = [str(n).encode() * (n * 97 % 3000) for n in range(300)]

        with ThreadPoolExecutor(12) as pool:
            results = list(
                pool.map(
                    lambda body: fetch(adapter, make_environ("POST", body=body)), bodies
                )
            )

        assert [body for _, body in results] == bodies

    def test_close_stops_the_thread_and_is_idempotent(self) -> None:
        adapter = AsgiToWsgi(echo)
        assert not [t for t in threading.enumerate() if THREAD_PREFIX in t.name]
        fetch(adapter, make_environ())
        assert [t for t in threading.enumerate() if THREAD_PREFIX in t.name]

        adapter.close()
        adapter.close()

        assert not [t for t in threading.enumerate() if THREAD_PREFIX in t.name]

    def test_an_adapter_that_never_served_closes_without_a_thread(self) -> None:
        AsgiToWsgi(echo).close()

    def test_a_closed_adapter_refuses_requests(self) -> None:
        adapter = AsgiToWsgi(echo)
        adapter.close()

        with pytest.raises(RuntimeError, match=r"AsgiToWsgi\(echo\) was closed"):
            fetch(adapter, make_environ())

    def test_the_context_manager_closes(self) -> None:
        events: list[str] = []
        with AsgiToWsgi(lifespan_app(events)) as adapter:
            fetch(adapter, make_environ())

        assert events == ["startup", "request", "shutdown"]

    def test_close_cancels_a_request_still_running_after_its_grace(self) -> None:
        started = threading.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            started.set()
            await asyncio.sleep(3600)

        adapter = AsgiToWsgi(app, lifespan=False, shutdown_timeout=0.1)
        with ThreadPoolExecutor(1) as pool:
            request = pool.submit(fetch, adapter, make_environ())
            assert started.wait(5)
            adapter.close()
            with pytest.raises(RuntimeError, match="was closed"):
                request.result(5)

    def test_close_lets_requests_in_progress_finish(self) -> None:
        started = threading.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            started.set()
            await asyncio.sleep(0.1)
            await respond(send, b"finished")

        adapter = AsgiToWsgi(app, lifespan=False)
        with ThreadPoolExecutor(1) as pool:
            request = pool.submit(fetch, adapter, make_environ())
            assert started.wait(5)
            adapter.close()
            assert request.result(5) == ("200 OK", b"finished")

    def test_close_from_the_application_itself_is_refused(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        adapters: list[AsgiToWsgi] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            adapters[0].close()

        adapters.append(adapt(app, lifespan=False))
        with pytest.raises(RuntimeError, match="called from the adapter's own loop"):
            fetch(adapters[0], make_environ())

    def test_a_wsgi_call_from_the_application_itself_is_refused(
        self, adapt: Callable[..., AsgiToWsgi]
    ) -> None:
        adapters: list[AsgiToWsgi] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/inner":
                await respond(send, b"inner")
                return
            fetch(adapters[0], make_environ(path="/inner"))

        adapters.append(adapt(app, lifespan=False))
        with pytest.raises(RuntimeError, match="called from its own loop thread"):
            fetch(adapters[0], make_environ())

    def test_requests_waiting_for_startup_fail_when_closed(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            await asyncio.sleep(3600)

        adapter = AsgiToWsgi(app, shutdown_timeout=0.1)
        with ThreadPoolExecutor(1) as pool:
            request = pool.submit(fetch, adapter, make_environ())
            while not [t for t in threading.enumerate() if THREAD_PREFIX in t.name]:
                time.sleep(0.001)
            time.sleep(0.05)
            adapter.close()
            with pytest.raises(RuntimeError, match="was closed"):
                request.result(5)


class TestConstruction:
    def test_a_non_callable_is_refused(self) -> None:
        with pytest.raises(
            TypeError, match=r"needs an ASGI application.*got str 'app'"
        ):
            AsgiToWsgi("app")  # type: ignore[arg-type]

    def test_a_negative_timeout_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"shutdown_timeout must be .* \(got -1\)"):
            AsgiToWsgi(echo, shutdown_timeout=-1)

    def test_the_repr_names_the_application(self) -> None:
        assert repr(AsgiToWsgi(echo)) == "AsgiToWsgi(echo)"

    def test_the_wrapped_application_is_kept(self) -> None:
        assert AsgiToWsgi(echo).asgi_application is echo
