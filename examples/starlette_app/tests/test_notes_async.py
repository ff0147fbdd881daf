"""The notes service from ``async def`` tests.

A lifespan that spans the module needs an event loop that spans it too, so
the tests run in pytest-asyncio's module-scoped loop. (Sync and async tests
run on different loops, which is why they live in different modules here.)
"""

from __future__ import annotations

import asyncio

import pytest

pytestmark = [
    pytest.mark.asgi_app("app:app", lifespan_scope="module"),
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(10),
]


async def test_add_and_list(asgi_http):
    first = (await asgi_http.post("/notes", json={"text": "one"})).json()
    second = (await asgi_http.post("/notes", json={"text": "two"})).json()

    listed = (await asgi_http.get("/notes")).json()

    assert [first, second] == [note for note in listed if note in (first, second)]
    assert second["id"] > first["id"]


async def test_concurrent_requests(asgi_http):
    responses = await asyncio.gather(
        *(asgi_http.post("/notes", json={"text": f"note {n}"}) for n in range(10))
    )

    assert {response.status for response in responses} == {201}
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 10


seen_stores: set[int] = set()


@pytest.mark.parametrize("attempt", [1, 2])
async def test_one_database_for_the_module(asgi_http, asgi_state, attempt):
    # Each test adds a note to the same store, which the app lists.
    note = asgi_state["notes"].add(f"attempt {attempt}")
    seen_stores.add(id(asgi_state["notes"]))

    assert note in (await asgi_http.get("/notes")).json()
    assert len(seen_stores) == 1


async def test_two_feeds(asgi_websocket):
    writer, reader = asgi_websocket("/feed"), asgi_websocket("/feed")
    await writer.connect()
    await reader.connect()

    await writer.send_json_to({"text": "hello, everyone"})

    for feed in (writer, reader):
        note = await feed.receive_json_from()
        assert note["text"] == "hello, everyone"
    await writer.disconnect()
    await reader.disconnect()
