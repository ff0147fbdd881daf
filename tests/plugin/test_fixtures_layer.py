"""The asgi_channel_layer fixture: a fresh layer per test, in sync and async tests.

The same inner tests run against the in-memory layer and, when a
redis-server answers at ``ASGIREF_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``), against channels_redis; without one the Redis
cases are skipped, and the skip says how to provide one. With
``ASGIREF_REQUIRE_REDIS=1`` (CI sets it) they fail instead.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.timeout(180)

Ini = Callable[..., None]

_URL_VARIABLE = "ASGIREF_TEST_REDIS_URL"
_REQUIRE_VARIABLE = "ASGIREF_REQUIRE_REDIS"
_REDIS_URL = os.environ.get(_URL_VARIABLE, "redis://127.0.0.1:6379/0")
_REDIS_REQUIRED = os.environ.get(_REQUIRE_VARIABLE) == "1"


def _redis_problem(url: str) -> str | None:
    """Why the Redis tests cannot run against ``url``, or ``None`` when they can."""
    for name in ("channels_redis.core", "redis"):
        try:
            importlib.import_module(name)
        except ImportError as error:
            return (
                f"{name} cannot be imported ({error}); install the test extra: "
                "pip install -e '.[test]'"
            )
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return None
    except OSError as error:
        return f"no redis-server answers at {url} ({error})"


@pytest.fixture(scope="module")
def redis_url() -> str:
    problem = _redis_problem(_REDIS_URL)
    if problem is None:
        return _REDIS_URL
    if _REDIS_REQUIRED:
        msg = (
            f"{problem}, and {_REQUIRE_VARIABLE}=1 requires one: start a "
            f"redis-server there, or point {_URL_VARIABLE} at one"
        )
        pytest.fail(msg, pytrace=False)
    pytest.skip(
        f"{problem}. To run these tests, install and start one "
        "(apt-get install redis-server; redis-server --daemonize yes) or set "
        f"{_URL_VARIABLE} to the URL of one"
    )


@pytest.fixture(params=["memory", "redis"])
def layer_setting(request: pytest.FixtureRequest) -> str:
    """The inner run's --asgi-channel-layer value."""
    if request.param == "memory":
        return "memory"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def strict_ini(inner_ini: Ini) -> Ini:
    """Inner runs where any warning (an unclosed connection...) fails a test."""
    inner_ini("filterwarnings = error")
    return inner_ini


def _leftover_keys(url: str, prefixes: list[str]) -> list[bytes]:
    redis = importlib.import_module("redis")
    client = redis.Redis.from_url(url)
    try:
        keys: list[bytes] = []
        for prefix in prefixes:
            keys.extend(client.keys(prefix + "*"))
        return keys
    finally:
        client.close()


# Each inner test records its layer's Redis prefix (if any), so the outer
# test can check that teardown deleted every key under it.
RECORDING_CONFTEST = """
import pytest

PREFIXES = {prefixes!r}

@pytest.fixture(autouse=True)
def record_prefix(request):
    if "asgi_channel_layer" in request.fixturenames:
        layer = request.getfixturevalue("asgi_channel_layer").layer
        prefix = getattr(layer, "prefix", None)
        if prefix is not None:
            with open(PREFIXES, "a") as file:
                file.write(prefix + "\\n")
"""


def _recording_conftest(pytester: pytest.Pytester, extra: str = "") -> Path:
    prefixes = pytester.path / "prefixes.txt"
    pytester.makeconftest(RECORDING_CONFTEST.format(prefixes=str(prefixes)) + extra)
    return prefixes


def _recorded(prefixes: Path) -> list[str]:
    if not prefixes.exists():
        return []
    return prefixes.read_text().split()


# -- the API, in sync and async tests -----------------------------------------

API_TESTS = """
import pytest


def test_send_receive_pending(asgi_channel_layer):
    layer = asgi_channel_layer
    channel = layer.new_channel()
    layer.send(channel, {"type": "note", "n": 1})
    layer.send(channel, {"type": "note", "n": 2})
    assert layer.pending(channel) == [
        {"type": "note", "n": 1},
        {"type": "note", "n": 2},
    ]
    assert layer.receive(channel) == {"type": "note", "n": 1}
    assert layer.pending(channel) == [{"type": "note", "n": 2}]
    assert layer.receive_nothing(channel) is False
    assert layer.pending(channel) == [{"type": "note", "n": 2}]
    assert layer.receive(channel) == {"type": "note", "n": 2}
    assert layer.receive_nothing(channel) is True
    assert layer.pending(channel) == []
    # A plain channel name, not made by new_channel().
    layer.send("plain.channel", {"type": "plain"})
    assert layer.pending("plain.channel") == [{"type": "plain"}]
    assert layer.receive("plain.channel") == {"type": "plain"}


def test_groups(asgi_channel_layer):
    layer = asgi_channel_layer
    first, second = layer.new_channel(), layer.new_channel("other.")
    assert layer.group_members("room") == []
    layer.group_add("room", first)
    layer.group_add("room", second)
    assert layer.group_members("room") == sorted([first, second])
    layer.group_send("room", {"type": "chat", "text": "hi"})
    assert layer.pending(second) == [{"type": "chat", "text": "hi"}]
    assert layer.receive(first) == {"type": "chat", "text": "hi"}
    assert layer.receive(second) == {"type": "chat", "text": "hi"}
    layer.group_discard("room", second)
    assert layer.group_members("room") == [first]
    layer.group_send("room", {"type": "chat", "text": "again"})
    assert layer.receive_nothing(second) is True
    layer.flush()
    assert layer.pending(first) == []
    assert layer.group_members("room") == []


@pytest.mark.asyncio
async def test_async_send_receive_pending(asgi_channel_layer):
    layer = asgi_channel_layer
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "note", "n": 1})
    await layer.send(channel, {"type": "note", "n": 2})
    assert await layer.pending(channel) == [
        {"type": "note", "n": 1},
        {"type": "note", "n": 2},
    ]
    assert await layer.receive(channel) == {"type": "note", "n": 1}
    assert await layer.receive_nothing(channel) is False
    assert await layer.receive(channel) == {"type": "note", "n": 2}
    assert await layer.receive_nothing(channel) is True
    # The raw layer works on the test's own loop.
    await layer.layer.send(channel, {"type": "raw"})
    assert await layer.layer.receive(channel) == {"type": "raw"}


@pytest.mark.asyncio
async def test_async_groups(asgi_channel_layer):
    layer = asgi_channel_layer
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", first)
    await layer.group_add("room", second)
    assert await layer.group_members("room") == sorted([first, second])
    await layer.group_send("room", {"type": "chat", "text": "hi"})
    assert await layer.pending(first) == [{"type": "chat", "text": "hi"}]
    assert await layer.receive(first) == {"type": "chat", "text": "hi"}
    assert await layer.receive(second) == {"type": "chat", "text": "hi"}
    await layer.group_discard("room", first)
    assert await layer.group_members("room") == [second]
    await layer.flush()
    assert await layer.group_members("room") == []


def test_sync_timeout(asgi_channel_layer):
    channel = asgi_channel_layer.new_channel()
    asgi_channel_layer.group_add("lobby", channel)
    asgi_channel_layer.receive(channel, timeout=0.2)


@pytest.mark.asyncio
async def test_async_timeout(asgi_channel_layer):
    await asgi_channel_layer.receive("lonely.channel", timeout=0.3)
"""


def test_the_layer_api(
    pytester: pytest.Pytester, strict_ini: Ini, layer_setting: str
) -> None:
    prefixes = _recording_conftest(pytester)
    pytester.makepyfile(test_api=API_TESTS)
    result = pytester.runpytest_subprocess(
        f"--asgi-channel-layer={layer_setting}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E * TimeoutError: asgi_channel_layer.receive('specific.*'): no "
            "message arrived within 0.2 s; nothing is pending on it; it is in "
            "group(s) 'lobby'. Check that the code under test sends to this very "
            "channel name, and that no other receiver takes the message first",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E * TimeoutError: asgi_channel_layer.receive('lonely.channel'): no "
            "message arrived within 0.3 s; nothing is pending on it; it is in no "
            "group. Check*",
        ]
    )
    if layer_setting != "memory":
        recorded = _recorded(prefixes)
        assert len(recorded) == 6
        assert len(set(recorded)) == 6
        # The inner run inherits the worker id when this run is under xdist.
        worker = os.environ.get("PYTEST_XDIST_WORKER") or "main"
        assert all(
            prefix.startswith(f"pytest-asgiref:{worker}:") for prefix in recorded
        )
        assert _leftover_keys(layer_setting, recorded) == []


FRESH_TESTS = """
import pytest

LAYERS = []


def test_first(asgi_channel_layer):
    LAYERS.append(asgi_channel_layer.layer)
    asgi_channel_layer.send("carried.over", {"type": "left", "by": "first"})
    asgi_channel_layer.group_add("kept", "carried.over")


def test_second(asgi_channel_layer):
    assert asgi_channel_layer.layer is not LAYERS[0]
    assert asgi_channel_layer.pending("carried.over") == []
    assert asgi_channel_layer.group_members("kept") == []
    assert asgi_channel_layer.receive_nothing("carried.over", timeout=0.2)
    asgi_channel_layer.send("carried.over", {"type": "left", "by": "second"})


@pytest.mark.asyncio
async def test_third(asgi_channel_layer):
    assert await asgi_channel_layer.pending("carried.over") == []
    assert await asgi_channel_layer.receive_nothing("carried.over", timeout=0.2)
"""


def test_each_test_gets_a_fresh_layer(
    pytester: pytest.Pytester, strict_ini: Ini, layer_setting: str
) -> None:
    prefixes = _recording_conftest(pytester)
    pytester.makepyfile(test_fresh=FRESH_TESTS)
    result = pytester.runpytest_subprocess(
        f"--asgi-channel-layer={layer_setting}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=3)
    if layer_setting != "memory":
        recorded = _recorded(prefixes)
        assert len(set(recorded)) == 3
        assert _leftover_keys(layer_setting, recorded) == []


def test_the_ini_key_chooses_the_layer(
    pytester: pytest.Pytester, strict_ini: Ini, redis_url: str
) -> None:
    strict_ini("filterwarnings = error", f"asgi_channel_layer = {redis_url}")
    pytester.makepyfile(
        """
        def test_kind(asgi_channel_layer):
            assert type(asgi_channel_layer.layer).__name__ == "RedisChannelLayer"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_in_memory_layer_is_asgiref_cores(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from asgiref_core.inmemory import InMemoryChannelLayer

        def test_kind(asgi_channel_layer):
            assert type(asgi_channel_layer.layer) is InMemoryChannelLayer
            assert repr(asgi_channel_layer).startswith(
                "<BlockingChannelLayerHarness of <asgiref_core.inmemory."
            )
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- Redis under xdist -----------------------------------------------------------

WORKER_TEST = """
import os
import time
from pathlib import Path

import pytest

BARRIER = Path({barrier!r})


def arrive(step):
    # Wait until both workers have reached this step, so they overlap.
    me = os.environ["PYTEST_XDIST_WORKER"]
    (BARRIER / f"{{step}}.{{me}}").touch()
    deadline = time.monotonic() + 30
    while len(list(BARRIER.glob(f"{{step}}.*"))) < 2:
        assert time.monotonic() < deadline, f"the other worker never reached {{step}}"
        time.sleep(0.02)


def {name}(asgi_channel_layer):
    me = os.environ["PYTEST_XDIST_WORKER"]
    layer = asgi_channel_layer
    layer.send("shared.channel", {{"type": "note", "from": me}})
    layer.group_add("shared-group", "shared.channel")
    arrive("sent")
    assert layer.pending("shared.channel") == [{{"type": "note", "from": me}}]
    assert layer.group_members("shared-group") == ["shared.channel"]
    layer.group_send("shared-group", {{"type": "note", "from": me, "via": "group"}})
    arrive("group-sent")
    assert layer.receive("shared.channel") == {{"type": "note", "from": me}}
    assert layer.receive("shared.channel") == {{
        "type": "note", "from": me, "via": "group"
    }}
    assert layer.receive_nothing("shared.channel", timeout=0.3)
    arrive("done")
    assert f":{{me}}:" in layer.layer.prefix
"""


def test_redis_tests_in_parallel_workers_do_not_meet(
    pytester: pytest.Pytester, strict_ini: Ini, redis_url: str
) -> None:
    prefixes = _recording_conftest(pytester)
    barrier = pytester.path / "barrier"
    barrier.mkdir()
    for name in ("test_left", "test_right"):
        pytester.makepyfile(
            **{name: WORKER_TEST.format(barrier=str(barrier), name=name)}
        )
    # loadfile sends each file to a worker of its own.
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "--dist",
        "loadfile",
        f"--asgi-channel-layer={redis_url}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    recorded = _recorded(prefixes)
    assert sorted(prefix.split(":")[1] for prefix in recorded) == ["gw0", "gw1"]
    assert _leftover_keys(redis_url, recorded) == []


# -- Django Channels ---------------------------------------------------------------

SWAP_TESTS = """
import pytest
from channels.layers import channel_layers, get_channel_layer

from django.conf import settings


class Previous:
    pass


PREVIOUS = Previous()


@pytest.fixture
def previous():
    channel_layers.set("default", PREVIOUS)
    yield
    assert channel_layers.backends["default"] is PREVIOUS
    del channel_layers.backends["default"]


def test_settings_are_not_configured():
    assert not settings.configured


def test_swapped_in(asgi_channel_layer):
    assert get_channel_layer() is asgi_channel_layer.layer
    assert get_channel_layer("default") is asgi_channel_layer.layer


def test_nothing_there_afterwards():
    assert "default" not in channel_layers.backends


def test_swapped_over_a_previous_layer(previous, asgi_channel_layer):
    assert get_channel_layer() is asgi_channel_layer.layer


@pytest.mark.asyncio
async def test_swapped_in_async_test(asgi_channel_layer):
    assert get_channel_layer() is asgi_channel_layer.layer
    channel = await get_channel_layer().new_channel()
    await get_channel_layer().send(channel, {"type": "through.channels"})
    assert await asgi_channel_layer.receive(channel) == {"type": "through.channels"}


def test_still_nothing_there():
    assert "default" not in channel_layers.backends
    assert not settings.configured
"""


def test_the_layer_is_channels_default_during_the_test(
    pytester: pytest.Pytester, strict_ini: Ini
) -> None:
    pytester.makepyfile(test_swap=SWAP_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


DJANGO_CONFTEST = """
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[],
    DATABASES={},
    SECRET_KEY="not secret: tests only",
)
django.setup()
"""

CONSUMER_TESTS = """
import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class Chat(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add("chat", self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard("chat", self.channel_name)
        await self.channel_layer.send("audit.log", {"type": "left"})

    async def receive_json(self, content):
        await self.channel_layer.group_send(
            "chat", {"type": "chat.message", "text": content["text"]}
        )

    async def chat_message(self, event):
        await self.send_json({"text": event["text"]})


pytestmark = pytest.mark.asgi_app(app=Chat.as_asgi())


def test_sync(asgi_websocket, asgi_channel_layer):
    listener = asgi_channel_layer.new_channel()
    asgi_channel_layer.group_add("chat", listener)
    socket = asgi_websocket("/ws/chat/")
    socket.connect()
    members = asgi_channel_layer.group_members("chat")
    assert len(members) == 2 and listener in members
    socket.send_json_to({"text": "hello"})
    assert socket.receive_json_from() == {"text": "hello"}
    assert asgi_channel_layer.receive(listener) == {
        "type": "chat.message",
        "text": "hello",
    }
    asgi_channel_layer.group_send("chat", {"type": "chat.message", "text": "news"})
    assert socket.receive_json_from() == {"text": "news"}
    socket.disconnect()
    assert asgi_channel_layer.group_members("chat") == [listener]
    assert asgi_channel_layer.pending("audit.log") == [{"type": "left"}]


@pytest.mark.asyncio
async def test_async(asgi_channel_layer, asgi_websocket):
    listener = await asgi_channel_layer.new_channel()
    await asgi_channel_layer.group_add("chat", listener)
    socket = asgi_websocket("/ws/chat/")
    await socket.connect()
    await socket.send_json_to({"text": "hello"})
    assert await socket.receive_json_from() == {"text": "hello"}
    assert await asgi_channel_layer.receive(listener) == {
        "type": "chat.message",
        "text": "hello",
    }
    await asgi_channel_layer.group_send(
        "chat", {"type": "chat.message", "text": "news"}
    )
    assert await socket.receive_json_from() == {"text": "news"}
    await socket.disconnect()
    assert await asgi_channel_layer.group_members("chat") == [listener]


def test_left_open(asgi_websocket, asgi_channel_layer):
    # Teardown closes the consumer (which then sends to "audit.log") before
    # it flushes and closes the layer, whatever order the test names them in.
    socket = asgi_websocket("/ws/chat/")
    socket.connect()
    assert len(asgi_channel_layer.group_members("chat")) == 1
"""


def test_a_channels_consumer_uses_the_layer(
    pytester: pytest.Pytester, strict_ini: Ini, layer_setting: str
) -> None:
    prefixes = _recording_conftest(pytester, DJANGO_CONFTEST)
    pytester.makepyfile(test_consumer=CONSUMER_TESTS)
    result = pytester.runpytest_subprocess(
        f"--asgi-channel-layer={layer_setting}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=3)
    if layer_setting != "memory":
        recorded = _recorded(prefixes)
        assert len(recorded) == 3
        assert _leftover_keys(layer_setting, recorded) == []


LIFESPAN_TESTS = """
import pytest
from channels.layers import get_channel_layer


async def app(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    scope["state"]["layer"] = get_channel_layer()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.complete"})


pytestmark = pytest.mark.asgi_app(app=app, lifespan="on")


def test_sync(asgi_state, asgi_channel_layer):
    assert asgi_state["layer"] is asgi_channel_layer.layer


@pytest.mark.asyncio
async def test_async(asgi_state, asgi_channel_layer):
    assert asgi_state["layer"] is asgi_channel_layer.layer
"""


def test_the_application_lifespan_sees_the_layer(
    pytester: pytest.Pytester, strict_ini: Ini
) -> None:
    # Without Django settings, get_channel_layer() would raise for lack of
    # them: the lifespan runs after the layer is in place.
    pytester.makepyfile(test_lifespan=LIFESPAN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_channels_is_not_needed(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    # A module entry of None makes Python treat the package as not installed.
    pytester.makeconftest(
        """
        import sys

        sys.modules["channels"] = None
        """
    )
    pytester.makepyfile(
        """
        def test_layer(asgi_channel_layer):
            asgi_channel_layer.send("alone", {"type": "x"})
            assert asgi_channel_layer.receive("alone") == {"type": "x"}
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_loading_the_plugin_imports_no_channel_layer_package(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_modules():
            loaded = [name for name in ("channels", "channels_redis", "django")
                      if name in sys.modules]
            assert loaded == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- the hook ------------------------------------------------------------------

HOOK_CONFTEST = """
import asyncio

from asgiref_core.inmemory import InMemoryChannelLayer


class TrackedLayer(InMemoryChannelLayer):
    flushed = closed = False

    async def flush(self):
        self.flushed = True
        await super().flush()

    async def close(self):
        self.closed = True


class OpaqueLayer:
    # The channel layer API and nothing to look into.
    def __init__(self):
        self.queues = {}

    def _queue(self, channel):
        return self.queues.setdefault(channel, asyncio.Queue())

    async def send(self, channel, message):
        self._queue(channel).put_nowait(message)

    async def receive(self, channel):
        return await self._queue(channel).get()

    async def new_channel(self, prefix="specific."):
        return prefix + "opaque!1"

    async def flush(self):
        self.queues.clear()


SUPPLIED = []


def pytest_asgiref_channel_layer(request, url):
    if "opaque" in request.node.name:
        layer = OpaqueLayer()
    elif "plugin_built" in request.node.name:
        return None
    else:
        layer = TrackedLayer()
    SUPPLIED.append((url, layer))
    return layer
"""

HOOK_TESTS = """
import pytest
from channels.layers import get_channel_layer

from conftest import SUPPLIED, TrackedLayer


def test_supplied(asgi_channel_layer):
    url, layer = SUPPLIED[-1]
    assert url == "memory"
    assert asgi_channel_layer.layer is layer
    assert get_channel_layer() is layer
    asgi_channel_layer.send("kept.channel", {"type": "kept"})


def test_supplied_layer_was_not_closed():
    url, layer = SUPPLIED[-1]
    assert not layer.flushed and not layer.closed
    assert layer.pending("kept.channel") == [{"type": "kept"}]


def test_plugin_built(asgi_channel_layer):
    assert type(asgi_channel_layer.layer) is not TrackedLayer


def test_opaque_pending(asgi_channel_layer):
    asgi_channel_layer.pending("some.channel")


def test_opaque_group_members(asgi_channel_layer):
    asgi_channel_layer.group_members("some-group")


def test_opaque_timeout(asgi_channel_layer):
    asgi_channel_layer.receive("some.channel", timeout=0.2)


def test_opaque_receive_nothing_keeps_the_message(asgi_channel_layer):
    assert asgi_channel_layer.receive_nothing("some.channel") is True
    asgi_channel_layer.send("some.channel", {"type": "first"})
    asgi_channel_layer.send("some.channel", {"type": "second"})
    assert asgi_channel_layer.receive_nothing("some.channel") is False
    assert asgi_channel_layer.receive("some.channel") == {"type": "first"}
    assert asgi_channel_layer.receive("some.channel") == {"type": "second"}
    assert asgi_channel_layer.receive_nothing("some.channel") is True


@pytest.mark.asyncio
async def test_opaque_async(asgi_channel_layer):
    await asgi_channel_layer.send("some.channel", {"type": "first"})
    assert await asgi_channel_layer.receive_nothing("some.channel") is False
    assert await asgi_channel_layer.receive("some.channel") == {"type": "first"}
    with pytest.raises(TypeError, match="does not support inspection"):
        await asgi_channel_layer.pending("some.channel")
"""


def test_the_hook_supplies_the_layer(
    pytester: pytest.Pytester, strict_ini: Ini
) -> None:
    pytester.makeconftest(HOOK_CONFTEST)
    pytester.makepyfile(test_hook=HOOK_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=3)
    unsupported = (
        "which does not support inspection; pending() and group_members() work "
        "with asgiref_core's InMemoryChannelLayer, channels_redis' "
        "RedisChannelLayer, or a layer that has pending(channel) and "
        "group_members(group) methods"
    )
    result.stdout.fnmatch_lines(
        [
            "E * TypeError: asgi_channel_layer.pending(): the layer is a "
            f"conftest.OpaqueLayer, {unsupported}",
            "E * TypeError: asgi_channel_layer.group_members(): the layer is a "
            f"conftest.OpaqueLayer, {unsupported}",
            "E * TimeoutError: asgi_channel_layer.receive('some.channel'): no "
            "message arrived within 0.2 s (the layer, a conftest.OpaqueLayer, "
            "cannot be inspected for pending messages or groups)",
        ]
    )


def test_a_conftest_supplies_layers_to_its_own_directory(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    for name in ("first", "second"):
        pytester.mkpydir(name)
        pytester.path.joinpath(name, "conftest.py").write_text(
            "from asgiref_core.inmemory import InMemoryChannelLayer\n\n"
            "def pytest_asgiref_channel_layer(request, url):\n"
            "    layer = InMemoryChannelLayer()\n"
            f"    layer.supplier = {name!r}\n"
            "    return layer\n"
        )
        pytester.path.joinpath(name, f"test_{name}.py").write_text(
            "def test_supplier(asgi_channel_layer):\n"
            f"    assert asgi_channel_layer.layer.supplier == {name!r}\n"
        )
    pytester.makepyfile(
        test_top="""
        def test_plugin_built(asgi_channel_layer):
            assert not hasattr(asgi_channel_layer.layer, "supplier")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


# -- errors -------------------------------------------------------------------------


def test_a_bad_layer_option_is_a_usage_error(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makepyfile("def test_nothing(asgi_channel_layer): pass")
    result = pytester.runpytest("--asgi-channel-layer=postgres://db")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the --asgi-channel-layer option: 'postgres://db' is not a "
            "channel layer; use 'memory' or a Redis URL such as "
            "'redis://127.0.0.1:6379/0'"
        ]
    )


def test_a_redis_url_without_channels_redis(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    pytester.makeconftest(
        """
        import sys

        sys.modules["channels_redis"] = None
        """
    )
    pytester.makepyfile("def test_layer(asgi_channel_layer): pass")
    result = pytester.runpytest_subprocess(
        "--asgi-channel-layer=redis://:secret@127.0.0.1:1/0", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_redis_url_without_channels_redis.py::test_layer: "
            "asgi_channel_layer: the channel layer setting "
            "'redis://***@127.0.0.1:1/0' is a Redis URL, which needs "
            "channels_redis (*); install it with pip install channels-redis, or "
            "use --asgi-channel-layer memory",
        ]
    )
    assert "secret" not in result.stdout.str()
