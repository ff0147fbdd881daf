"""The channel layer conformance suite against channels_redis' RedisChannelLayer.

The tests talk to a real redis-server at ``ASGIREF_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). When none answers there they are skipped, and
the skip says how to provide one; with ``ASGIREF_REQUIRE_REDIS=1`` (CI sets
it) they fail instead. Each layer gets a key prefix of its own, which its
``flush()`` removes, so the tests leave nothing behind in that database.
"""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_asgiref.conformance import ChannelLayerConformance

_URL_VARIABLE = "ASGIREF_TEST_REDIS_URL"
_REQUIRE_VARIABLE = "ASGIREF_REQUIRE_REDIS"
_URL = os.environ.get(_URL_VARIABLE, "redis://127.0.0.1:6379/0")
_REQUIRED = os.environ.get(_REQUIRE_VARIABLE) == "1"


def _import(name: str) -> ModuleType:
    if _REQUIRED:
        return importlib.import_module(name)
    return pytest.importorskip(
        name,
        reason=(
            f"{name} is not installed; install the test extra: pip install -e '.[test]'"
        ),
    )


def _unreachable(url: str) -> str | None:
    """Why nothing answers at ``url``, or ``None`` when something does."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return None
    except OSError as error:
        return f"no redis-server answers at {url} ({error})"


_channels_exceptions = _import("channels.exceptions")
_channels_redis_core = _import("channels_redis.core")

# Checked once, when the module is collected. Skipping the whole module
# reports the reason once; when a server is required, each test fails instead.
_PROBLEM = _unreachable(_URL)
if _PROBLEM is not None and not _REQUIRED:
    pytest.skip(
        f"{_PROBLEM}. To run these tests, install and start one "
        "(apt-get install redis-server; redis-server --daemonize yes) or set "
        f"{_URL_VARIABLE} to the URL of one",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    if _PROBLEM is not None:
        msg = (
            f"{_PROBLEM}, and {_REQUIRE_VARIABLE}=1 requires one: start a "
            f"redis-server there, or point {_URL_VARIABLE} at one"
        )
        pytest.fail(msg, pytrace=False)
    return _URL


class TestRedisChannelLayer(ChannelLayerConformance):
    # Where RedisChannelLayer differs from the strict defaults; each was seen
    # against a real server (set back to the default, its tests fail).

    # Channels' own ChannelFull, which is not ours.
    channel_full_error = _channels_exceptions.ChannelFull
    # send() asserts that the message is a dict; group_send() calls .items().
    non_dict_message_error = (AssertionError, AttributeError)
    # send() asserts that the reserved key is absent.
    reserved_key_error = AssertionError
    # Expiry compares int(time.time()) and sets key TTLs in whole seconds: an
    # expiry under 1 s drops messages at once, a fractional group_expiry is
    # refused by the server.
    expiry_resolution = 1
    # An expired message leaves its channel's group memberships alone.
    expired_channel_leaves_groups = False
    # A receive on a second loop at once raises RuntimeError: the layer's own
    # check for process-specific channels, a loop-bound asyncio.Lock for
    # plain ones (or the second receive never wakes).
    receives_on_several_loops = False

    @pytest.fixture(autouse=True)
    def _redis(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def make_layer(self, **options: Any) -> Any:
        return _channels_redis_core.RedisChannelLayer(
            hosts=[self.redis_url],
            prefix=f"asgiref-conformance:{uuid.uuid4().hex}:",
            **options,
        )

    async def close_layer(self, layer: Any) -> None:
        # flush() deletes this layer's keys, then closes its connection pools.
        await layer.flush()
