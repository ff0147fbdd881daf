"""WebSocket conversations through ``asgi_websocket``, sync and async."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(10)


def test_echo(asgi_websocket):
    ws = asgi_websocket("/echo")
    accepted, subprotocol = ws.connect()
    assert accepted
    assert subprotocol is None

    ws.send_to(text_data="hello")
    assert ws.receive_from() == "HELLO"

    ws.send_to(bytes_data=b"abc")
    assert ws.receive_from() == b"cba"

    ws.disconnect()


def test_server_closes(asgi_websocket):
    ws = asgi_websocket("/echo")
    ws.connect()
    ws.send_to(text_data="bye")

    assert ws.receive_from() == "BYE"
    assert ws.receive_close() == (1000, "")


def test_rejected(asgi_websocket):
    connection = asgi_websocket("/private").connect()

    assert not connection.accepted
    assert connection.close_code == 4003
    assert connection.reason == "forbidden"


async def test_echo_async(asgi_websocket):
    ws = asgi_websocket("/echo")
    connection = await ws.connect()
    assert connection.accepted

    await ws.send_json_to({"shout": "quiet"})
    assert await ws.receive_json_from() == {"SHOUT": "QUIET"}
    assert await ws.receive_nothing()

    await ws.disconnect()


async def test_two_clients_async(asgi_websocket):
    first, second = asgi_websocket("/echo"), asgi_websocket("/echo")
    await first.connect()
    await second.connect()

    await second.send_to(text_data="b")
    await first.send_to(text_data="a")

    assert await first.receive_from() == "A"
    assert await second.receive_from() == "B"
    await first.disconnect()
    await second.disconnect()
