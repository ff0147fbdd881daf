"""The HTML pages and the form, through ``asgi_http``.

The marker hands the plugin the Flask application object itself (as
``app=``, since pytest would take a lone positional callable for the thing
the marker decorates). It is a WSGI application, so the plugin wraps it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from app import app

pytestmark = [pytest.mark.asgi_app(app=app), pytest.mark.timeout(10)]

FORM = [(b"content-type", b"application/x-www-form-urlencoded")]


def post_form(fields):
    return {"body": urlencode(fields).encode(), "headers": FORM}


def test_empty_list(asgi_http):
    response = asgi_http.get("/")

    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert "<ul></ul>" in response.text


def test_form_post_redirects(asgi_http):
    response = asgi_http.post("/todos", **post_form({"title": "Water the <plants>"}))

    assert response.status == 303
    assert response.header("location") == "/"
    page = asgi_http.get("/").text
    assert "<li>[ ] Water the &lt;plants&gt;</li>" in page


def test_form_needs_a_title(asgi_http, empty_store):
    response = asgi_http.post("/todos", **post_form({"title": "  "}))

    assert response.status == 400
    assert "A title is required." in response.text
    assert empty_store.all() == []


def test_csv_export_streams(asgi_http, empty_store):
    empty_store.add("one")
    empty_store.add("two")
    communicator = asgi_http("GET", "/export.csv")

    assert communicator.receive_response_start().header("content-type") == (
        "text/csv; charset=utf-8"
    )
    body = b"".join(communicator.iter_body())
    assert body.decode().splitlines() == ["id,title,done", "1,one,False", "2,two,False"]


def test_environ_from_the_scope(asgi_http):
    response = asgi_http.get("/whoami", headers=[(b"user-agent", b"pytest")])

    assert response.json() == {
        "address": "127.0.0.1",
        "host": "testserver",
        "scheme": "http",
        "agent": "pytest",
    }


@pytest.mark.asyncio
async def test_form_post_async(asgi_http, empty_store):
    response = await asgi_http.post("/todos", **post_form({"title": "Async chore"}))

    assert response.status == 303
    assert [todo["title"] for todo in empty_store.all()] == ["Async chore"]


@pytest.mark.asyncio
async def test_https_async(asgi_http):
    response = await asgi_http.get("/whoami", scheme="https")

    assert response.json()["scheme"] == "https"
