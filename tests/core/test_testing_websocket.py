"""WebsocketCommunicator against hand-written ASGI applications."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgiref_core.testing import (
    ClientDisconnectedError,
    UnexpectedMessageError,
    WebsocketClosedError,
    WebsocketCommunicator,
    WebsocketConnection,
)
from asgiref_core.validate import ASGIProtocolError

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Accepts (choosing the first offered subprotocol) and echoes until closed."""
    assert (await receive())["type"] == "websocket.connect"
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[0] if offered else None,
            "headers": [(b"x-welcome", b"1")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
            continue
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def test_connect_echo_disconnect() -> None:
    communicator = WebsocketCommunicator(echo, "/ws", subprotocols=["chat", "v2"])
    connection = await communicator.connect()
    assert isinstance(connection, WebsocketConnection)
    accepted, subprotocol = connection
    assert (accepted, subprotocol) == (True, "chat")
    assert connection.headers == [(b"x-welcome", b"1")]
    assert communicator.scope["subprotocols"] == ["chat", "v2"]
    assert (b"sec-websocket-protocol", b"chat, v2") in communicator.scope["headers"]
    await communicator.send_to(text_data="hi")
    assert await communicator.receive_from() == "hi"
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert await communicator.receive_from() == b"\x00\x01"
    await communicator.send_json_to({"a": [1, 2]})
    assert await communicator.receive_json_from() == {"a": [1, 2]}
    assert await communicator.receive_nothing() is True
    await communicator.disconnect()
    assert communicator.future.done()


async def test_rejection_gives_the_close_code() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 4403, "reason": "nope"})
        message = await receive()
        assert message == {"type": "websocket.disconnect", "code": 1006}

    communicator = WebsocketCommunicator(app, "/ws")
    connection = await communicator.connect()
    assert tuple(connection) == (False, 4403)
    assert connection.close_code == 4403
    assert connection.reason == "nope"
    await communicator.wait()


async def test_denial_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send(
            {"type": "websocket.http.response.body", "body": b"log", "more_body": True}
        )
        await send({"type": "websocket.http.response.body", "body": b"in first"})

    communicator = WebsocketCommunicator(app, "/ws")
    connection = await communicator.connect()
    assert tuple(connection) == (False, 401)
    assert connection.denial is not None
    assert connection.denial.body == b"login first"
    assert connection.denial.header("content-type") == "text/plain"
    await communicator.wait()


async def test_server_side_close_while_reading() -> None:
    communicator = WebsocketCommunicator(echo, "/ws")
    await communicator.connect()
    await communicator.send_to(text_data="close please")
    with pytest.raises(WebsocketClosedError, match=r"websocket\.close") as info:
        await communicator.receive_from()
    assert (info.value.code, info.value.reason) == (4001, "asked")
    # The application is told the socket closed, and returns.
    await communicator.wait()


async def test_receive_close() -> None:
    communicator = WebsocketCommunicator(echo, "/ws")
    await communicator.connect()
    await communicator.send_to(text_data="close please")
    assert await communicator.receive_close() == (4001, "asked")
    with pytest.raises(RuntimeError, match="closed connection"):
        await communicator.send_to(text_data="late")
    await communicator.wait()


async def test_send_after_client_disconnect_raises_oserror() -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        assert message["code"] == 1001
        assert message["reason"] == "bye"
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as error:
            errors.append(error)

    communicator = WebsocketCommunicator(app, "/ws")
    await communicator.connect()
    await communicator.disconnect(code=1001, reason="bye")
    assert len(errors) == 1
    assert isinstance(errors[0], ClientDisconnectedError)


async def test_send_to_checks_its_arguments() -> None:
    communicator = WebsocketCommunicator(echo, "/ws")
    with pytest.raises(TypeError, match="exactly one"):
        await communicator.send_to()
    with pytest.raises(TypeError, match="exactly one"):
        await communicator.send_to(text_data="a", bytes_data=b"b")
    with pytest.raises(TypeError, match="text_data must be str"):
        await communicator.send_to(text_data=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes_data must be bytes"):
        await communicator.send_to(bytes_data="x")  # type: ignore[arg-type]


async def test_receive_json_from_binary_is_a_clear_error() -> None:
    communicator = WebsocketCommunicator(echo, "/ws")
    await communicator.connect()
    await communicator.send_to(bytes_data=b"{}")
    with pytest.raises(TypeError, match="expected a JSON text message"):
        await communicator.receive_json_from()
    await communicator.disconnect()


async def test_connect_timeout_names_the_handshake() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(60)

    communicator = WebsocketCommunicator(app, "/ws")
    with pytest.raises(TimeoutError, match=r"answer to 'websocket\.connect'"):
        await communicator.connect(timeout=0.05)


async def test_connect_twice_is_an_error() -> None:
    communicator = WebsocketCommunicator(echo, "/ws")
    await communicator.connect()
    with pytest.raises(RuntimeError, match="already called"):
        await communicator.connect()
    await communicator.disconnect()


async def test_validation_send_before_accept() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.send", "text": "too early"})

    with pytest.raises(ASGIProtocolError, match="accept"):
        await WebsocketCommunicator(app, "/ws").connect()
    communicator = WebsocketCommunicator(app, "/ws", validate=False)
    with pytest.raises(UnexpectedMessageError, match=r"websocket\.accept"):
        await communicator.connect()


async def test_validation_subprotocol_not_offered() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "mine"})

    with pytest.raises(ASGIProtocolError, match="subprotocol"):
        await WebsocketCommunicator(app, "/ws", subprotocols=["chat"]).connect()


async def test_spec_version_parameter() -> None:
    communicator = WebsocketCommunicator(echo, "/ws", spec_version="2.1")
    assert communicator.scope["asgi"]["spec_version"] == "2.1"
