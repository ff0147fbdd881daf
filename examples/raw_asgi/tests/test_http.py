"""HTTP requests through ``asgi_http``, once from sync tests, once from async ones.

The application comes from the ``asgi_app`` ini key in pytest.ini, so no test
names it. The lifespan has run before each test: the greeting it stores in
the state is in every response.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(10)


def test_get(asgi_http):
    response = asgi_http.get("/")

    assert response.status == 200
    assert response.header("content-type") == "text/plain"
    assert response.text == "hello, world"


def test_query_string(asgi_http):
    assert asgi_http.get("/?pytest").text == "hello, pytest"


def test_not_found(asgi_http):
    response = asgi_http.get("/nowhere")

    assert response.status == 404
    assert response.body == b"not found"


def test_post_json(asgi_http):
    response = asgi_http.post("/echo", json={"answer": 42})

    assert response.header("content-type") == "application/json"
    assert response.json() == {"answer": 42}


def test_body_in_chunks(asgi_http):
    # An iterable body arrives as several http.request messages.
    response = asgi_http.post("/echo", body=[b"one ", b"two ", b"three"])

    assert response.body == b"one two three"


def test_streamed_response(asgi_http):
    # Calling the fixture gives a communicator to read the response step by step.
    communicator = asgi_http("GET", "/countdown")
    start = communicator.receive_response_start()

    assert start.status == 200
    assert list(communicator.iter_body()) == [b"3", b"2", b"1", b"liftoff"]


async def test_get_async(asgi_http):
    response = await asgi_http.get("/")

    assert response.status == 200
    assert response.text == "hello, world"


async def test_post_async(asgi_http):
    response = await asgi_http.post(
        "/echo", body=b"ping", headers=[(b"content-type", b"text/x-ping")]
    )

    assert response.header("content-type") == "text/x-ping"
    assert response.body == b"ping"


async def test_streamed_response_async(asgi_http):
    communicator = asgi_http("GET", "/countdown")
    await communicator.receive_response_start()
    chunks = [await communicator.receive_body() for _ in range(4)]

    assert chunks == [b"3", b"2", b"1", b"liftoff"]
    assert communicator.body_complete
