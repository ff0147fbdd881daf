"""The protocol communicators against a real framework: a Starlette application.

Validation stays on throughout, so these tests also show that a widely used
framework passes the conformance checker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asgiref_core.testing import (
    HttpCommunicator,
    LifespanCommunicator,
    WebsocketCommunicator,
)

starlette = pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import (  # noqa: E402
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan"}


async def greet(request: Request) -> Response:
    return JSONResponse(
        {
            "greeting": request.state.greeting,
            "query": dict(request.query_params),
            "url": str(request.url),
        }
    )


async def upload(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{len(body)} bytes", status_code=201)


async def events(request: Request) -> Response:
    async def stream() -> AsyncIterator[str]:
        n = 0
        while True:
            n += 1
            yield f"data: {n}\n\n"
            await asyncio.sleep(0.001)

    return StreamingResponse(stream(), media_type="text/event-stream")


async def fail(request: Request) -> Response:
    raise RuntimeError("handler exploded")


async def chat(websocket: WebSocket) -> None:
    if websocket.query_params.get("token") != "ok":
        await websocket.close(code=4403)
        return
    await websocket.accept(subprotocol="chat")
    try:
        while True:
            data = await websocket.receive_json()
            if data.get("bye"):
                await websocket.close(code=1000)
                return
            await websocket.send_json({"echo": data})
    except WebSocketDisconnect:
        return


app = Starlette(
    routes=[
        Route("/greet", greet),
        Route("/upload", upload, methods=["POST"]),
        Route("/events", events),
        Route("/fail", fail),
        WebSocketRoute("/chat", chat),
    ],
    lifespan=lifespan,
)


async def test_lifespan_state_reaches_requests() -> None:
    async with LifespanCommunicator(app) as lifespan:
        communicator = HttpCommunicator(app, "GET", "/greet?x=1", state=lifespan.state)
        response = await communicator.get_response()
    assert response.status == 200
    assert response.json() == {
        "greeting": "hello from lifespan",
        "query": {"x": "1"},
        "url": "http://testserver/greet?x=1",
    }


async def test_post_body_in_chunks() -> None:
    async with LifespanCommunicator(app) as lifespan:
        communicator = HttpCommunicator(
            app, "POST", "/upload", body=[b"a" * 1000, b"b" * 24], state=lifespan.state
        )
        response = await communicator.get_response()
    assert (response.status, response.text) == (201, "1024 bytes")


async def test_not_found() -> None:
    response = await HttpCommunicator(app, "GET", "/nowhere").get_response()
    assert response.status == 404


async def test_server_sent_events_three_then_disconnect() -> None:
    async with LifespanCommunicator(app) as lifespan:
        communicator = HttpCommunicator(app, "GET", "/events", state=lifespan.state)
        start = await communicator.receive_response_start()
        assert start.header("content-type", "").startswith("text/event-stream")
        received = b""
        while received.count(b"\n\n") < 3:
            received += await communicator.receive_body()
        assert received.startswith(b"data: 1\n\ndata: 2\n\ndata: 3\n\n")
        await communicator.disconnect()
    assert communicator.future.done()


async def test_handler_error_is_raised_after_the_500() -> None:
    communicator = HttpCommunicator(app, "GET", "/fail")
    with pytest.raises(RuntimeError, match="handler exploded") as info:
        await communicator.get_response()
    assert "sent a 500 response first" in "\n".join(info.value.__notes__)


async def test_websocket_conversation() -> None:
    communicator = WebsocketCommunicator(
        app, "/chat?token=ok", subprotocols=["chat", "other"]
    )
    connected, subprotocol = await communicator.connect()
    assert (connected, subprotocol) == (True, "chat")
    await communicator.send_json_to({"n": 1})
    assert await communicator.receive_json_from() == {"echo": {"n": 1}}
    await communicator.send_json_to({"bye": True})
    assert await communicator.receive_close() == (1000, "")
    await communicator.wait()


async def test_websocket_rejected() -> None:
    communicator = WebsocketCommunicator(app, "/chat?token=bad")
    connection = await communicator.connect()
    assert not connection.accepted
    assert connection.close_code == 4403
    await communicator.wait()


async def test_websocket_client_disconnect() -> None:
    communicator = WebsocketCommunicator(app, "/chat?token=ok", subprotocols=["chat"])
    await communicator.connect()
    await communicator.disconnect(code=1001)
