"""The JSON API, sync and async."""

from __future__ import annotations

import asyncio

import pytest
from app import app

pytestmark = [pytest.mark.asgi_app(app=app), pytest.mark.timeout(10)]


def test_create_and_read(asgi_http):
    created = asgi_http.post("/api/todos", json={"title": "Write tests"})

    assert created.status == 201
    assert created.header("location") == "/api/todos/1"
    assert created.json() == {"id": 1, "title": "Write tests", "done": False}
    assert asgi_http.get("/api/todos/1").json() == created.json()


def test_mark_done(asgi_http):
    asgi_http.post("/api/todos", json={"title": "Ship it"})

    response = asgi_http.patch("/api/todos/1", json={"done": True})

    assert response.status == 200
    assert response.json()["done"] is True
    assert asgi_http.get("/api/todos").json() == [
        {"id": 1, "title": "Ship it", "done": True}
    ]


NEEDS_TITLE = "send JSON with a non-empty 'title'"
NEEDS_DONE = "send JSON with a boolean 'done'"


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "error"),
    [
        ("POST", "/api/todos", {"title": ""}, 422, NEEDS_TITLE),
        ("POST", "/api/todos", ["title"], 422, NEEDS_TITLE),
        ("PATCH", "/api/todos/1", {"done": "yes"}, 422, NEEDS_DONE),
        ("PATCH", "/api/todos/7", {"done": True}, 404, "no to-do 7"),
        ("GET", "/api/todos/7", None, 404, "no to-do 7"),
    ],
)
def test_errors(asgi_http, method, path, payload, status, error):
    options = {} if payload is None else {"json": payload}
    response = asgi_http.request(method, path, **options)

    assert response.status == status
    assert response.json() == {"error": error}


def test_unknown_api_route_is_json(asgi_http):
    response = asgi_http.delete("/api/todos/1")

    assert response.status == 405
    assert "not allowed" in response.json()["error"]


@pytest.mark.asyncio
async def test_create_async(asgi_http):
    created = await asgi_http.post("/api/todos", json={"title": "Async"})

    assert created.status == 201
    assert (await asgi_http.get("/api/todos/1")).json()["title"] == "Async"


@pytest.mark.asyncio
async def test_concurrent_creates(asgi_http, empty_store):
    # Each request runs the Flask view on a worker thread of its own.
    responses = await asyncio.gather(
        *(asgi_http.post("/api/todos", json={"title": f"t{n}"}) for n in range(20))
    )

    assert sorted(response.json()["id"] for response in responses) == list(range(1, 21))
    assert len(empty_store.all()) == 20
