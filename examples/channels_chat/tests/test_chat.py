"""The chat from sync tests.

The sync test body may use the ORM directly, like any Django code outside an
event loop, while the consumer runs on the plugin's loop and reaches the same
database through ``database_sync_to_async``.
"""

from __future__ import annotations

import pytest
from chat.models import Message

pytestmark = [pytest.mark.asgi_app("chat.asgi:application"), pytest.mark.timeout(10)]


def join(asgi_websocket, room, name):
    ws = asgi_websocket(f"/ws/chat/{room}/?name={name}")
    assert ws.connect().accepted
    return ws


def test_history_on_connect(asgi_websocket):
    first = Message.objects.create(room="lobby", author="carol", text="first!")
    Message.objects.create(room="other", author="dave", text="elsewhere")

    ws = join(asgi_websocket, "lobby", "alice")

    assert ws.receive_json_from() == {
        "type": "history",
        "messages": [{"id": first.id, "author": "carol", "text": "first!"}],
    }
    ws.disconnect()


def test_message_is_saved_and_broadcast(asgi_websocket):
    alice = join(asgi_websocket, "lobby", "alice")
    bob = join(asgi_websocket, "lobby", "bob")
    for ws in (alice, bob):
        assert ws.receive_json_from()["messages"] == []

    alice.send_json_to({"text": "  hi bob  "})

    received = alice.receive_json_from()
    assert bob.receive_json_from() == received
    # The consumer saved the message before broadcasting it.
    saved = Message.objects.get()
    assert (saved.room, saved.author, saved.text) == ("lobby", "alice", "hi bob")
    assert received == {"type": "message", **saved.as_dict()}
    alice.disconnect()
    bob.disconnect()


def test_rooms_are_separate(asgi_websocket):
    alice = join(asgi_websocket, "lobby", "alice")
    bob = join(asgi_websocket, "kitchen", "bob")
    alice.receive_json_from()
    bob.receive_json_from()

    alice.send_json_to({"text": "anyone?"})

    assert alice.receive_json_from()["text"] == "anyone?"
    assert bob.receive_nothing()
    alice.disconnect()
    bob.disconnect()


def test_bad_message(asgi_websocket):
    ws = join(asgi_websocket, "lobby", "alice")
    ws.receive_json_from()

    ws.send_json_to({"txet": "typo"})

    assert ws.receive_json_from() == {"type": "error", "error": "send {'text': ...}"}
    assert not Message.objects.exists()
    ws.disconnect()


def test_name_is_required(asgi_websocket):
    connection = asgi_websocket("/ws/chat/lobby/").connect()

    assert not connection.accepted
    assert connection.close_code == 4001


def test_group_membership(asgi_websocket, asgi_channel_layer):
    ws = join(asgi_websocket, "lobby", "alice")
    ws.receive_json_from()

    (member,) = asgi_channel_layer.group_members("chat_lobby")
    assert member.startswith("specific.")

    ws.disconnect()
    assert asgi_channel_layer.group_members("chat_lobby") == []


def test_announcement_through_the_layer(asgi_websocket, asgi_channel_layer):
    ws = join(asgi_websocket, "lobby", "alice")
    ws.receive_json_from()

    asgi_channel_layer.group_send(
        "chat_lobby", {"type": "chat.announcement", "text": "closing at 6"}
    )

    assert ws.receive_json_from() == {"type": "announcement", "text": "closing at 6"}
    ws.disconnect()


def test_broadcast_seen_on_the_layer(asgi_websocket, asgi_channel_layer):
    # The test listens on a channel of its own in the room's group.
    listener = asgi_channel_layer.new_channel()
    asgi_channel_layer.group_add("chat_lobby", listener)
    ws = join(asgi_websocket, "lobby", "alice")
    ws.receive_json_from()

    ws.send_json_to({"text": "hello"})
    ws.receive_json_from()

    event = asgi_channel_layer.receive(listener)
    assert event == {"type": "chat.message", "message": Message.objects.get().as_dict()}
    assert asgi_channel_layer.pending(listener) == []
    ws.disconnect()


# Django's HTTP handler sends header names as written ("Content-Type"), where
# the ASGI specification asks for lowercase; the check is off for HTTP tests.
@pytest.mark.asgi_app(validate="off")
def test_history_over_http(asgi_http):
    message = Message.objects.create(room="lobby", author="carol", text="hello")

    response = asgi_http.get("/rooms/lobby/messages/")

    assert response.status == 200
    assert response.json() == {"room": "lobby", "messages": [message.as_dict()]}
