"""InMemoryChannelLayer as Django Channels' configured ``BACKEND``.

Real consumers, configured through ``CHANNEL_LAYERS`` by dotted path, find
our layer through ``channels.layers.get_channel_layer`` and talk through it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from asgiref_core.inmemory import InMemoryChannelLayer
from asgiref_core.testing import WebsocketCommunicator

pytest.importorskip("channels")

import django
from asgiref.sync import async_to_sync
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    JsonWebsocketConsumer,
)
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator as ChannelsCommunicator
from django.conf import settings
from django.test.utils import override_settings

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]

BACKEND = "asgiref_core.inmemory.InMemoryChannelLayer"


@pytest.fixture(autouse=True)
def our_layer_configured() -> Iterator[None]:
    if not settings.configured:
        settings.configure(INSTALLED_APPS=["channels"], USE_TZ=True)
        django.setup()
    config = {"default": {"BACKEND": BACKEND, "CONFIG": {"capacity": 50}}}
    # Channels drops its cached layers when CHANNEL_LAYERS changes, on entry
    # and again on exit, so every test gets a fresh layer.
    with override_settings(CHANNEL_LAYERS=config):
        yield


class ChatConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    groups = ["room"]  # noqa: RUF012 - Channels' own declaration style

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(
            "room", {"type": "chat.message", "text": content["text"]}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"text": event["text"]})


class SyncChatConsumer(JsonWebsocketConsumer):  # type: ignore[misc]
    """The same chat written synchronously, as many Channels projects are."""

    groups = ["room"]  # noqa: RUF012 - Channels' own declaration style

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        async_to_sync(self.channel_layer.group_send)(
            "room", {"type": "chat.message", "text": content["text"]}
        )

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send_json({"text": event["text"]})


async def test_channels_builds_our_layer_from_its_settings() -> None:
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    assert layer.capacity == 50
    assert layer.extensions == ["groups", "flush"]


@pytest.mark.parametrize("consumer", [ChatConsumer, SyncChatConsumer])
async def test_a_group_message_reaches_every_connected_consumer(
    consumer: Any,
) -> None:
    app = consumer.as_asgi()
    async with (
        WebsocketCommunicator(app, "/chat/") as alice,
        WebsocketCommunicator(app, "/chat/") as bob,
    ):
        assert (await alice.connect()).accepted
        assert (await bob.connect()).accepted
        await alice.send_json_to({"text": "hello"})
        assert await alice.receive_json_from() == {"text": "hello"}
        assert await bob.receive_json_from() == {"text": "hello"}
        members = set(get_channel_layer().groups["room"])
        await bob.disconnect()
        (alice_name,) = set(get_channel_layer().groups["room"])
        assert alice_name in members
        await alice.send_json_to({"text": "still here?"})
        assert await alice.receive_json_from() == {"text": "still here?"}
        assert set(get_channel_layer().groups["room"]) == {alice_name}
        await alice.disconnect()
    # Both consumers left the group when they disconnected.
    assert get_channel_layer().groups == {}


async def test_channels_own_communicator_works_against_our_layer() -> None:
    communicator = ChannelsCommunicator(ChatConsumer.as_asgi(), "/chat/")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps({"text": "hi"}))
    assert json.loads(await communicator.receive_from()) == {"text": "hi"}
    await communicator.disconnect()


async def test_code_on_another_thread_and_loop_reaches_a_consumer() -> None:
    # A worker thread with its own event loop (a task queue, a management
    # command) broadcasts to the consumers served on this loop.
    layer = get_channel_layer()
    async with WebsocketCommunicator(ChatConsumer.as_asgi(), "/chat/") as client:
        assert (await client.connect()).accepted

        def broadcast() -> None:
            asyncio.run(
                layer.group_send(
                    "room", {"type": "chat.message", "text": "from a worker"}
                )
            )

        worker = threading.Thread(target=broadcast)
        worker.start()
        assert await client.receive_json_from(timeout=5) == {"text": "from a worker"}
        await asyncio.to_thread(worker.join)


async def test_a_fresh_layer_per_settings_change() -> None:
    first = get_channel_layer()
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": BACKEND}}):
        second = get_channel_layer()
        assert second is not first
        assert second.capacity == 100
    assert channel_layers["default"] is not second
