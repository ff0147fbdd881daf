"""The chat from ``async def`` tests.

Inside an event loop Django refuses synchronous ORM calls, so these tests
reach the database the way async code does: the async ORM methods
(``acreate``, ``acount``) or ``database_sync_to_async``.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from chat.models import Message

pytestmark = [
    pytest.mark.asgi_app("chat.asgi:application"),
    pytest.mark.asyncio,
    pytest.mark.timeout(10),
]


async def join(asgi_websocket, room, name):
    ws = asgi_websocket(f"/ws/chat/{room}/?name={name}")
    assert (await ws.connect()).accepted
    return ws


async def test_history_on_connect(asgi_websocket):
    await Message.objects.acreate(room="lobby", author="carol", text="first!")

    ws = await join(asgi_websocket, "lobby", "alice")

    history = await ws.receive_json_from()
    assert [message["text"] for message in history["messages"]] == ["first!"]
    await ws.disconnect()


async def test_message_is_saved_and_broadcast(asgi_websocket):
    alice = await join(asgi_websocket, "lobby", "alice")
    bob = await join(asgi_websocket, "lobby", "bob")
    await alice.receive_json_from()
    await bob.receive_json_from()

    await bob.send_json_to({"text": "hi alice"})

    for ws in (alice, bob):
        message = await ws.receive_json_from()
        assert (message["author"], message["text"]) == ("bob", "hi alice")
    assert await Message.objects.filter(room="lobby", author="bob").acount() == 1
    await alice.disconnect()
    await bob.disconnect()


@database_sync_to_async
def texts_in(room):
    return list(Message.objects.filter(room=room).values_list("text", flat=True))


async def test_many_messages(asgi_websocket):
    ws = await join(asgi_websocket, "lobby", "alice")
    await ws.receive_json_from()

    for number in range(5):
        await ws.send_json_to({"text": f"message {number}"})
    received = [(await ws.receive_json_from())["text"] for _ in range(5)]

    assert received == [f"message {number}" for number in range(5)]
    assert await texts_in("lobby") == received
    await ws.disconnect()


async def test_group_membership(asgi_websocket, asgi_channel_layer):
    alice = await join(asgi_websocket, "lobby", "alice")
    bob = await join(asgi_websocket, "lobby", "bob")

    assert len(await asgi_channel_layer.group_members("chat_lobby")) == 2

    await alice.disconnect()
    await bob.disconnect()
    assert await asgi_channel_layer.group_members("chat_lobby") == []


async def test_announcement_through_the_layer(asgi_websocket, asgi_channel_layer):
    ws = await join(asgi_websocket, "lobby", "alice")
    await ws.receive_json_from()

    await asgi_channel_layer.group_send(
        "chat_lobby", {"type": "chat.announcement", "text": "closing at 6"}
    )

    assert await ws.receive_json_from() == {
        "type": "announcement",
        "text": "closing at 6",
    }
    await ws.disconnect()


# Django's HTTP handler sends header names as written ("Content-Type"), where
# the ASGI specification asks for lowercase; the check is off for HTTP tests.
@pytest.mark.asgi_app(validate="off")
async def test_history_over_http(asgi_http):
    await Message.objects.acreate(room="lobby", author="carol", text="hello")

    response = await asgi_http.get("/rooms/lobby/messages/")

    assert response.status == 200
    assert response.json()["messages"][0]["text"] == "hello"
