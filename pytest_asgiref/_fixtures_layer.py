"""The ``asgi_channel_layer`` fixture: a fresh channel layer for each test.

The layer comes from the ``pytest_asgiref_channel_layer`` hook, or else from
the ``--asgi-channel-layer`` / ``asgi_channel_layer`` setting: an
:class:`~asgiref_core.inmemory.InMemoryChannelLayer`, or channels_redis'
``RedisChannelLayer`` with a key prefix of the test's own, so that tests in
other xdist workers, or earlier tests, never see its messages. It is used on
the loop that serves the test (the test's own for ``async def`` tests, the
portal's for sync ones) and flushed and closed there at teardown, unless the
hook supplied it. When Django Channels is installed the layer is Channels'
default layer for the duration of the test.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest

from pytest_asgiref._loops import serving_loop_for
from pytest_asgiref._markers import fail_for
from pytest_asgiref._options import settings_of, without_password

__all__ = [
    "asgi_channel_layer",
    "redis_prefix",
    "swap_into_channels",
]

_FIXTURE: Final = "asgi_channel_layer"


def redis_prefix() -> str:
    """A Redis key prefix no other test (in any xdist worker) will use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER") or "main"
    return f"pytest-asgiref:{worker}:{secrets.token_hex(8)}:"


def _build_layer(request: pytest.FixtureRequest, url: str) -> Any:
    if url == "memory":
        from asgiref_core.inmemory import InMemoryChannelLayer

        return InMemoryChannelLayer()
    try:
        core = importlib.import_module("channels_redis.core")
    except ImportError as error:
        fail_for(
            request.node,
            f"asgi_channel_layer: the channel layer setting "
            f"{without_password(url)!r} is a "
            f"Redis URL, which needs channels_redis ({error}); install it with "
            "pip install channels-redis, or use --asgi-channel-layer memory",
        )
    return core.RedisChannelLayer(hosts=[url], prefix=redis_prefix())


async def _close(layer: Any) -> None:
    # Flushing deletes what the layer stored (a Redis layer's keys under its
    # prefix) and closes a Redis layer's connection pools on this loop.
    await layer.flush()
    close = getattr(layer, "close", None)
    if close is not None:
        await close()


def _nothing_to_restore() -> None:
    return None


def swap_into_channels(layer: Any) -> Callable[[], None]:
    """Make ``layer`` Django Channels' default layer; returns the undo.

    Does nothing when Channels is not installed. The layer is stored in the
    channel layer manager directly, so no Django settings are read.
    """
    if importlib.util.find_spec("channels") is None:
        return _nothing_to_restore
    try:
        layers = importlib.import_module("channels.layers")
    except ImportError:
        return _nothing_to_restore
    manager = layers.channel_layers
    alias = layers.DEFAULT_CHANNEL_LAYER
    had_one = alias in manager.backends
    previous = manager.set(alias, layer)

    def restore() -> None:
        if had_one:
            manager.set(alias, previous)
        else:
            # Nothing was built before: Channels builds it from the settings
            # on next use, as it would have.
            manager.backends.pop(alias, None)

    return restore


@pytest.fixture
def asgi_channel_layer(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh channel layer for this test, also Django Channels' default layer.

    An ``InMemoryChannelLayer``, or with ``--asgi-channel-layer redis://...``
    a channels_redis layer with a key prefix of the test's own; the
    ``pytest_asgiref_channel_layer`` hook may supply another. Offers the
    layer's ``send``, ``new_channel``, ``group_add``, ``group_discard``,
    ``group_send`` and ``flush``, plus ``receive(channel, timeout=1.0)``,
    ``receive_nothing(channel, timeout=0.1)``, ``pending(channel)`` and
    ``group_members(group)``; ``.layer`` is the layer itself. Blocking in sync
    tests, awaitable in async ones. Flushed and closed at teardown.
    """
    loop = serving_loop_for(request)
    url = settings_of(request.config).channel_layer
    # Through the test's own hook relay: a conftest.py supplies layers to the
    # tests in its directory only.
    supplied = request.node.ihook.pytest_asgiref_channel_layer(request=request, url=url)
    owned = supplied is None
    layer = _build_layer(request, url) if owned else supplied
    from pytest_asgiref._layer_harness import (
        AsyncChannelLayerHarness,
        BlockingChannelLayerHarness,
    )

    harness = AsyncChannelLayerHarness(layer)
    restore = swap_into_channels(layer)
    try:
        if loop.portal is None:
            yield harness
        else:
            yield BlockingChannelLayerHarness(harness, loop.portal)
    finally:
        try:
            restore()
        finally:
            if owned:
                loop.run(_close(layer))


# -- hook implementations ------------------------------------------------------


def _is_plugin_fixture(name: str) -> bool:
    return name != _FIXTURE and name.startswith(("asgi_", "_asgi_"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Set ``asgi_channel_layer`` up before the test's other asgi_* fixtures.

    The application, its lifespan included, then finds the test's layer in
    Channels, and the layer outlives it: the application is closed, and
    stops using the layer, before the layer is flushed and closed.
    """
    for item in items:
        names = getattr(item, "fixturenames", None)
        if not isinstance(names, list) or _FIXTURE not in names:
            continue
        position = names.index(_FIXTURE)
        first = next(
            (index for index, name in enumerate(names) if _is_plugin_fixture(name)),
            position,
        )
        if first < position:
            names.remove(_FIXTURE)
            names.insert(first, _FIXTURE)
