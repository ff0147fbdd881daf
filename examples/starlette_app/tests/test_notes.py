"""The notes service from sync tests.

The module's marker names the application by its dotted path and asks for
one lifespan for the whole module: every test here shares one database, so
each test makes the notes it checks rather than counting on an empty store.
"""

from __future__ import annotations

import pytest

pytestmark = [
    pytest.mark.asgi_app("app:app", lifespan_scope="module"),
    pytest.mark.timeout(10),
]


def test_add_and_read(asgi_http):
    created = asgi_http.post("/notes", json={"text": "buy milk"})
    assert created.status == 201
    note = created.json()
    assert note["text"] == "buy milk"

    response = asgi_http.get(f"/notes/{note['id']}")
    assert response.status == 200
    assert response.json() == note
    assert note in asgi_http.get("/notes").json()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"text": ""}', 422, "'text' is required"),
        (b"[1, 2]", 422, "'text' is required"),
        (b"{not json", 400, "the body is not JSON"),
    ],
)
def test_bad_notes(asgi_http, body, status, error):
    response = asgi_http.post(
        "/notes", body=body, headers=[(b"content-type", b"application/json")]
    )

    assert response.status == status
    assert response.json() == {"error": error}


def test_missing_note(asgi_http):
    response = asgi_http.get("/notes/9999")

    assert response.status == 404
    assert response.json() == {"error": "no such note"}


def test_state_is_the_database(asgi_http, asgi_state):
    # The test can reach the store the application uses.
    note = asgi_state["notes"].add("written directly")

    assert asgi_http.get(f"/notes/{note['id']}").json()["text"] == "written directly"


seen_stores: set[int] = set()


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_one_database_for_the_module(asgi_state, attempt):
    seen_stores.add(id(asgi_state["notes"]))

    assert len(seen_stores) == 1
    assert not asgi_state["notes"].closed


def test_feed_sees_notes_posted_over_http(asgi_http, asgi_websocket):
    feed = asgi_websocket("/feed")
    assert feed.connect().accepted

    note = asgi_http.post("/notes", json={"text": "from http"}).json()

    assert feed.receive_json_from() == note
    feed.disconnect()


def test_feed_rejects_empty_notes(asgi_websocket):
    feed = asgi_websocket("/feed")
    feed.connect()
    feed.send_json_to({"text": "   "})

    assert feed.receive_json_from() == {"error": "'text' is required"}
    assert feed.receive_nothing()
    feed.disconnect()
