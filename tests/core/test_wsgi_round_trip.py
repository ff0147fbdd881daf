"""Round trips through both WSGI adapters, with real frameworks on each side.

A Flask application crosses WSGI -> ASGI -> WSGI and is served by wsgiref
over a real socket; a Starlette application crosses ASGI -> WSGI -> ASGI and
is driven through the validating HTTP communicator. What comes out must be
what the framework produced, streamed as it produced it.
"""

from __future__ import annotations

import contextlib
import http.client
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from asgiref_core.testing import HttpCommunicator
from asgiref_core.wsgi import AsgiToWsgi, WsgiToAsgi

flask = pytest.importorskip("flask")
pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True


class _QuietHandler(WSGIRequestHandler):
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass


def flask_app(release: threading.Event) -> Any:
    app = flask.Flask(__name__)

    @app.get("/hello")
    def hello() -> Any:
        return {"name": flask.request.args.get("name"), "path": flask.request.path}

    @app.post("/echo")
    def echo() -> Any:
        return flask.Response(flask.request.get_data(), mimetype="application/x-echo")

    @app.get("/stream")
    def stream() -> Any:
        def lines() -> Iterator[bytes]:
            yield b"first\n"
            release.wait(10)
            yield b"second\n"

        return flask.Response(lines(), mimetype="text/plain")

    return app


@pytest.fixture
def flask_through_both() -> Iterator[tuple[int, threading.Event]]:
    """Flask -> WsgiToAsgi -> AsgiToWsgi, served by wsgiref on 127.0.0.1."""
    release = threading.Event()
    adapter = AsgiToWsgi(WsgiToAsgi(flask_app(release)))
    server = make_server(
        "127.0.0.1",
        0,
        adapter,
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}
    )
    thread.start()
    try:
        yield server.server_address[1], release
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()
        adapter.close()


def _get(port: int, method: str, path: str, body: bytes | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return connection, response


def test_flask_answers_through_both_adapters_over_a_socket(
    flask_through_both: tuple[int, threading.Event],
) -> None:
    port, _ = flask_through_both
    connection, response = _get(port, "GET", "/hello?name=caf%C3%A9")
    with contextlib.closing(connection):
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        assert response.read() == b'{"name":"caf\\u00e9","path":"/hello"}\n'


def test_a_request_body_crosses_both_adapters_unchanged(
    flask_through_both: tuple[int, threading.Event],
) -> None:
    port, _ = flask_through_both
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    connection, response = _get(port, "POST", "/echo", body=payload)
    with contextlib.closing(connection):
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/x-echo"
        assert response.read() == payload


def test_a_flask_stream_arrives_chunk_by_chunk_through_both_adapters(
    flask_through_both: tuple[int, threading.Event],
) -> None:
    port, release = flask_through_both
    connection, response = _get(port, "GET", "/stream")
    with contextlib.closing(connection):
        assert response.status == 200
        # The second line is held back until the first has arrived.
        assert response.readline() == b"first\n"
        release.set()
        assert response.readline() == b"second\n"
        assert response.read() == b""


def starlette_app() -> Starlette:
    async def hello(request: Request) -> Response:
        return JSONResponse(
            {"path": request.url.path, "query": dict(request.query_params)}
        )

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/x-echo")

    async def stream(request: Request) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            for number in range(3):
                yield f"line {number}\n".encode()

        return StreamingResponse(lines(), media_type="text/plain")

    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream),
        ]
    )


@pytest.fixture
def starlette_through_both() -> Iterator[WsgiToAsgi]:
    """Starlette -> AsgiToWsgi -> WsgiToAsgi, an ASGI application again."""
    inner = AsgiToWsgi(starlette_app())
    try:
        yield WsgiToAsgi(inner)
    finally:
        inner.close()


@pytest.mark.asyncio
async def test_starlette_answers_through_both_adapters(
    starlette_through_both: WsgiToAsgi,
) -> None:
    response = await HttpCommunicator(
        starlette_through_both, "GET", "/hello", query_string=b"a=1&b=%C3%A9"
    ).get_response()
    assert response.status == 200
    assert response.json() == {"path": "/hello", "query": {"a": "1", "b": "\u00e9"}}


@pytest.mark.asyncio
async def test_a_chunked_request_body_crosses_both_adapters(
    starlette_through_both: WsgiToAsgi,
) -> None:
    chunks = [bytes([n]) * 70_000 for n in range(10)]
    response = await HttpCommunicator(
        starlette_through_both,
        "POST",
        "/echo",
        body=chunks,
        headers=[("content-length", str(sum(map(len, chunks))))],
    ).get_response()
    assert response.status == 200
    assert response.body == b"".join(chunks)


@pytest.mark.asyncio
async def test_a_starlette_stream_crosses_both_adapters_in_order(
    starlette_through_both: WsgiToAsgi,
) -> None:
    communicator = HttpCommunicator(starlette_through_both, "GET", "/stream")
    start = await communicator.receive_response_start()
    assert start["status"] == 200
    received = b"".join([chunk async for chunk in communicator.iter_body()])
    assert received == b"line 0\nline 1\nline 2\n"
