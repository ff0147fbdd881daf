"""AsgiToWsgi serving a Starlette application from wsgiref over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import socket
import socketserver
import struct
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from asgiref_core.wsgi import AsgiToWsgi

starlette = pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import ClientDisconnect, Request  # noqa: E402
from starlette.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

pytestmark = pytest.mark.timeout(120)

THREAD_PREFIX = "asgiref_core-asgi-to-wsgi-"
MIB = 1024 * 1024


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # Request threads are joined by server_close(), so none outlives a test.
    daemon_threads = False
    block_on_close = True


class QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without its line on stderr for every request."""

    # A write to a client that stopped reading fails instead of blocking the
    # server's shutdown for ever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Probe:
    """What the application shares with the test that drives it."""

    gate: threading.Event = field(default_factory=threading.Event)
    #: How the application's call for the endless stream ended.
    endless_ended: threading.Event = field(default_factory=threading.Event)
    endless_outcome: list[BaseException | None] = field(default_factory=list)


async def wait_for(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.002)


def starlette_app(probe: Probe) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from lifespan"}

    async def hello(request: Request) -> Response:
        return JSONResponse(
            {
                "greeting": request.state.greeting,
                "path": request.url.path,
                "query": dict(request.query_params),
                "client": request.client.host if request.client else None,
            }
        )

    async def gated(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"first line\n"
            await wait_for(probe.gate)
            yield b"second line\n"

        return StreamingResponse(body(), media_type="text/plain")

    async def endless(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            while True:
                yield b"tick " * 1000
                await asyncio.sleep(0)

        return StreamingResponse(body(), media_type="text/plain")

    async def upload_stats(request: Request) -> Response:
        sizes = [len(chunk) async for chunk in request.stream() if chunk]
        return JSONResponse({"bytes": sum(sizes), "chunks": len(sizes)})

    async def sha256(request: Request) -> Response:
        digest = hashlib.sha256()
        async for chunk in request.stream():
            digest.update(chunk)
        return Response(digest.hexdigest(), media_type="text/plain")

    async def echo(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            async for chunk in request.stream():
                if chunk:
                    yield chunk

        return StreamingResponse(body(), media_type="application/octet-stream")

    app = Starlette(
        routes=[
            Route("/hello", hello),
            Route("/gated", gated),
            Route("/endless", endless),
            Route("/upload-stats", upload_stats, methods=["POST"]),
            Route("/sha256", sha256, methods=["POST"]),
            Route("/echo", echo, methods=["POST"]),
        ],
        lifespan=lifespan,
    )

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("path") != "/endless":
            await app(scope, receive, send)
            return
        try:
            await app(scope, receive, send)
        except BaseException as error:
            probe.endless_outcome.append(error)
            raise
        else:
            probe.endless_outcome.append(None)
        finally:
            probe.endless_ended.set()

    return recording


@dataclass
class Served:
    port: int
    probe: Probe

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


@pytest.fixture
def served() -> Iterator[Served]:
    probe = Probe()
    adapter = AsgiToWsgi(starlette_app(probe))
    server = make_server(
        "127.0.0.1",
        0,
        adapter,
        server_class=ThreadingWSGIServer,
        handler_class=QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgiref"
    )
    thread.start()
    try:
        yield Served(server.server_address[1], probe)
    finally:
        probe.gate.set()
        server.shutdown()
        server.server_close()
        thread.join()
        adapter.close()
    leftover = [t.name for t in threading.enumerate() if THREAD_PREFIX in t.name]
    assert leftover == [], "the adapter's loop thread outlived the server"


def test_a_starlette_app_answers_over_a_real_socket(served: Served) -> None:
    with contextlib.closing(served.connection()) as connection:
        connection.request("GET", "/hello?name=caf%C3%A9")
        response = connection.getresponse()
        payload = json.loads(response.read())

    assert response.status == 200
    assert response.reason == "OK"
    assert response.getheader("content-type") == "application/json"
    assert payload == {
        "greeting": "hello from lifespan",
        "path": "/hello",
        "query": {"name": "café"},
        "client": "127.0.0.1",
    }


def test_a_streaming_response_arrives_as_it_is_sent(served: Served) -> None:
    with contextlib.closing(served.connection()) as connection:
        connection.request("GET", "/gated")
        response = connection.getresponse()
        # The application is still holding back its second line.
        assert response.readline() == b"first line\n"
        served.probe.gate.set()
        assert response.read() == b"second line\n"


def test_an_upload_streams_into_the_app_in_chunks(served: Served) -> None:
    block = b"u" * (64 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(32):
            yield block
            time.sleep(0.001)

    with contextlib.closing(served.connection()) as connection:
        connection.request(
            "POST",
            "/upload-stats",
            body=body(),
            headers={"Content-Length": str(2 * MIB)},
        )
        response = connection.getresponse()
        stats = json.loads(response.read())

    assert response.status == 200
    assert stats["bytes"] == 2 * MIB
    assert stats["chunks"] > 1


def receive_until(client: socket.socket, data: bytes, done: Any) -> bytes:
    while not done(data):
        more = client.recv(65536)
        assert more, f"the connection closed after {data!r}"
        data += more
    return data


def receive_at_least(client: socket.socket, data: bytes, size: int) -> bytes:
    return receive_until(client, data, lambda data: len(data) >= size)


def test_streaming_both_ways_at_once(served: Served) -> None:
    """Each part of the upload comes back before the next one is sent."""
    parts = [f"part {n} ".encode() * 50 for n in range(5)]
    total = sum(len(part) for part in parts)
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as client:
        client.sendall(
            b"POST /echo HTTP/1.1\r\nHost: test\r\n"
            + f"Content-Length: {total}\r\n\r\n".encode()
        )
        client.sendall(parts[0])
        data = receive_until(client, b"", lambda data: b"\r\n\r\n" in data)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK"), head
        sent = b""
        for part in parts:
            if sent:
                client.sendall(part)
            sent += part
            body = receive_at_least(client, body, len(sent))
            assert body == sent
        assert client.recv(65536) == b""  # and the response ends there


def test_a_client_going_away_stops_an_endless_stream(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as client:
        client.sendall(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
        assert receive_at_least(client, b"", 100_000)
        # Reset rather than close: the server's next write fails at once.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    assert served.probe.endless_ended.wait(30)
    # The adapter's send() raised OSError, which Starlette turns into this.
    [outcome] = served.probe.endless_outcome
    assert type(outcome) is ClientDisconnect
    assert isinstance(outcome.__context__, OSError)


def test_a_100_mb_upload_does_not_raise_peak_memory(served: Served) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB, sent 100 times without copies
    expected = hashlib.sha256()
    for _ in range(100):
        expected.update(block)

    def body() -> Iterator[bytes]:
        for _ in range(100):
            yield block

    # Warm up first, so imports and caches do not count as growth.
    with contextlib.closing(served.connection()) as connection:
        connection.request("POST", "/sha256", body=b"warm up")
        connection.getresponse().read()

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with contextlib.closing(served.connection()) as connection:
            connection.request(
                "POST",
                "/sha256",
                body=body(),
                headers={"Content-Length": str(100 * MIB)},
            )
            response = connection.getresponse()
            digest = response.read().decode()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status == 200
    assert digest == expected.hexdigest()
    assert peak - baseline < 20 * MIB, f"peak grew by {(peak - baseline) / MIB:.1f} MiB"
