"""The lifespan: its ``state`` in the tests, in raw scopes, and driven by hand.

With the default ``lifespan = auto`` the plugin runs startup before each test
and shutdown after it, so every test starts from a fresh visit counter.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(10)


def test_state_from_startup(asgi_state):
    assert asgi_state["greeting"] == "hello"
    assert asgi_state["visits"] == {"count": 0}


def test_requests_share_the_state(asgi_http, asgi_state):
    asgi_http.get("/visits")
    response = asgi_http.get("/visits")

    assert response.json() == {"visits": 2}
    # The test sees the very objects the application changed.
    assert asgi_state["visits"]["count"] == 2


async def test_state_is_fresh_for_each_test(asgi_http, asgi_state):
    response = await asgi_http.get("/visits")

    assert response.json() == {"visits": 1}
    assert asgi_state["visits"]["count"] == 1


def test_raw_messages(asgi_communicator):
    # asgi_communicator speaks plain ASGI messages on a GET / scope, which
    # carries the lifespan state as a server would.
    assert asgi_communicator.scope["path"] == "/"
    assert asgi_communicator.scope["state"]["greeting"] == "hello"

    asgi_communicator.send_input({"type": "http.request", "body": b""})
    start = asgi_communicator.receive_output()
    body = asgi_communicator.receive_output()

    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert body == {"type": "http.response.body", "body": b"hello, world"}


async def test_raw_messages_async(asgi_communicator):
    await asgi_communicator.send_input({"type": "http.request", "body": b""})
    start = await asgi_communicator.receive_output()
    body = await asgi_communicator.receive_output()

    assert start["status"] == 200
    assert body["body"] == b"hello, world"
    await asgi_communicator.wait()


# A marker with options only: the application still comes from the ini file.
@pytest.mark.asgi_app(lifespan="off")
def test_lifespan_by_hand(asgi_lifespan, asgi_http):
    # Without the automatic lifespan, requests see no state.
    assert asgi_http.get("/").text == "hi, world"

    lifespan = asgi_lifespan()
    assert lifespan.startup().complete
    assert lifespan.state["greeting"] == "hello"
    assert lifespan.shutdown().complete


@pytest.mark.asgi_app(lifespan="off")
async def test_lifespan_by_hand_async(asgi_lifespan):
    lifespan = asgi_lifespan()
    outcome = await lifespan.startup()

    assert outcome.complete
    assert lifespan.state["visits"] == {"count": 0}
    assert (await lifespan.shutdown()).complete
