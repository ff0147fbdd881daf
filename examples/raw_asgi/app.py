"""A small ASGI application written by hand, with no framework.

It speaks all three ASGI protocols:

- lifespan: startup puts a greeting and a visit counter into the lifespan
  ``state``, which the server copies into every request's scope;
- http: ``GET /`` greets, ``GET /visits`` counts, ``POST /echo`` sends the
  request body back, ``GET /countdown`` streams its body in chunks;
- websocket: ``/echo`` repeats every text message, in capitals, until the
  client says "bye"; ``/private`` refuses everyone.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello"
            # A mutable object: every request sees the same counter.
            scope["state"]["visits"] = {"count": 0}
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    state = scope.get("state", {})
    route = (scope["method"], scope["path"])
    if route == ("GET", "/"):
        name = scope["query_string"].decode() or "world"
        greeting = state.get("greeting", "hi")
        await respond(send, 200, f"{greeting}, {name}".encode())
    elif route == ("GET", "/visits"):
        state["visits"]["count"] += 1
        body = json.dumps({"visits": state["visits"]["count"]}).encode()
        await respond(send, 200, body, b"application/json")
    elif route == ("POST", "/echo"):
        body = await read_body(receive)
        content_type = dict(scope["headers"]).get(b"content-type", b"text/plain")
        await respond(send, 200, body, content_type)
    elif route == ("GET", "/countdown"):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for number in ("3", "2", "1"):
            await send(
                {
                    "type": "http.response.body",
                    "body": number.encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"liftoff"})
    else:
        await respond(send, 404, b"not found")


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/echo":
        await send({"type": "websocket.close", "code": 4003, "reason": "forbidden"})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "bye":
            await send({"type": "websocket.send", "text": "BYE"})
            await send({"type": "websocket.close", "code": 1000})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": text.upper()})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    handlers = {"lifespan": lifespan, "http": http, "websocket": websocket}
    await handlers[scope["type"]](scope, receive, send)
