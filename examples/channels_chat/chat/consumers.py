"""The chat consumer: one per WebSocket, at ``/ws/chat/<room>/?name=<author>``.

On connect it joins the room's group and sends the room's recent history.
Each message a client sends is saved, then broadcast to the group; every
consumer in the room (the sender's too) passes it on to its client. Anyone
holding the channel layer can also post an announcement to a room.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chat.models import Message

HISTORY_LENGTH = 20
# Close code for a connection without ?name=.
NAME_REQUIRED = 4001


def group_name(room: str) -> str:
    return f"chat_{room}"


@database_sync_to_async
def save_message(room: str, author: str, text: str) -> dict[str, Any]:
    return Message.objects.create(room=room, author=author, text=text).as_dict()


@database_sync_to_async
def recent_messages(room: str) -> list[dict[str, Any]]:
    latest = Message.objects.filter(room=room).order_by("-id")[:HISTORY_LENGTH]
    return [message.as_dict() for message in reversed(latest)]


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope["query_string"].decode())
        names = query.get("name")
        if not names or not names[0].strip():
            await self.close(code=NAME_REQUIRED)
            return
        self.author = names[0].strip()
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_name(self.room)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        history = await recent_messages(self.room)
        await self.send_json({"type": "history", "messages": history})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        text = content.get("text") if isinstance(content, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.send_json({"type": "error", "error": "send {'text': ...}"})
            return
        message = await save_message(self.room, self.author, text.strip())
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "message": message}
        )

    # Group message handlers: "chat.message" calls chat_message, and so on.

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", **event["message"]})

    async def chat_announcement(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "announcement", "text": event["text"]})
