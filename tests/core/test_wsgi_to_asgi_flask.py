"""WsgiToAsgi serving a real Flask application, driven through the ASGI interface.

Validation stays on (``HttpCommunicator``'s default), so these tests also hold
that what a real framework produces comes out as a valid ASGI conversation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asgiref_core.testing import HttpCommunicator, http_scope
from asgiref_core.wsgi import WsgiToAsgi

flask = pytest.importorskip("flask")

from flask import (  # noqa: E402
    Flask,
    Response,
    abort,
    jsonify,
    redirect,
    request,
    stream_with_context,
    url_for,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.timeout(30),
    pytest.mark.usefixtures("no_wsgi_leaks"),
]

MiB = 1024 * 1024
CHUNK = 64 * 1024
PATIENCE = 5.0


# -- waiting ----------------------------------------------------------------------


async def _wait_until(condition: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


# -- the application -----------------------------------------------------------------


class Record:
    """What the Flask application saw, for the tests to check."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.at_gate = threading.Event()
        self.produced: list[int] = []
        self.generator_closed = threading.Event()
        self.teardowns: list[str] = []
        # Response.call_on_close callbacks: run only by the iterable's close().
        self.closed_responses: list[str] = []


def make_app(record: Record) -> Flask:
    app = Flask(__name__)

    @app.teardown_request
    def teardown(error: BaseException | None) -> None:
        record.teardowns.append(request.path)

    @app.after_request
    def track_close(response: Response) -> Response:
        path = request.path
        response.call_on_close(lambda: record.closed_responses.append(path))
        return response

    @app.errorhandler(404)
    def not_found(error: Any) -> tuple[str, int]:
        where = f"script_root={request.script_root!r} path={request.path!r}"
        return f"Not Found: {where}", 404

    @app.get("/json")
    def read_query() -> Response:
        return jsonify(
            args=request.args.to_dict(flat=False),
            method=request.method,
            path=request.path,
            full_path=request.full_path,
            url=request.url,
            remote_addr=request.remote_addr,
        )

    @app.post("/json")
    def echo_json() -> Response:
        data = request.get_json()
        return jsonify(received=data, doubled=[n * 2 for n in data["numbers"]])

    @app.post("/form")
    def read_form() -> Response:
        upload = request.files.get("upload")
        return jsonify(
            form=request.form.to_dict(flat=False),
            upload=None
            if upload is None
            else {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "sha256": hashlib.sha256(upload.read()).hexdigest(),
            },
        )

    @app.get("/cookies")
    def cookies() -> Response:
        response = jsonify(cookies=request.cookies.to_dict())
        response.set_cookie("visited", "yes", httponly=True)
        response.set_cookie("theme", "dark", path="/")
        return response

    @app.get("/stream")
    def stream() -> Response:
        count = int(request.args.get("n", "3"))

        def generate() -> Iterator[str]:
            try:
                for n in range(1, count + 1):
                    if n == 3:
                        record.at_gate.set()
                        if not record.gate.wait(PATIENCE):
                            raise AssertionError("the test never opened the gate")
                    record.produced.append(n)
                    # request is usable here thanks to stream_with_context.
                    yield f"{request.args.get('label', 'line')} {n}\n"
            finally:
                record.generator_closed.set()

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.post("/upload")
    def upload() -> Response:
        digest = hashlib.sha256()
        size = 0
        while piece := request.stream.read(CHUNK):
            size += len(piece)
            digest.update(piece)
        return jsonify(size=size, sha256=digest.hexdigest())

    @app.get("/boom")
    def boom() -> Response:
        raise RuntimeError("kaboom")

    @app.errorhandler(500)
    def server_error(error: Any) -> tuple[Response, int]:
        original = getattr(error, "original_exception", None)
        return jsonify(error="internal", detail=repr(original)), 500

    @app.get("/missing")
    def missing() -> Response:
        abort(404)

    @app.get("/teapot")
    def teapot() -> tuple[str, int, dict[str, str]]:
        return "short and stout", 418, {"X-Pot": "tea"}

    @app.get("/links")
    def links() -> Response:
        return jsonify(
            relative=url_for("read_query", q="x"),
            external=url_for("read_query", _external=True),
            script_root=request.script_root,
            path=request.path,
            url_root=request.url_root,
        )

    @app.get("/go")
    def go() -> Any:
        return redirect(url_for("links"))

    @app.get("/greet/<name>")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    @app.get("/slow/<int:number>")
    def slow(number: int) -> Response:
        time.sleep(0.05 * (number % 3))
        return jsonify(number=number, arg=request.args["tag"])

    return app


@pytest.fixture
def record() -> Record:
    return Record()


@pytest.fixture
def asgi_app(record: Record) -> WsgiToAsgi:
    return WsgiToAsgi(make_app(record))


# -- requests and responses ---------------------------------------------------------


async def test_query_string_reaches_flask(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(
        asgi_app, "GET", "/json?x=1&x=2&city=caf%C3%A9&empty="
    ).get_response()
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {
        "args": {"x": ["1", "2"], "city": ["caf\u00e9"], "empty": [""]},
        "method": "GET",
        "path": "/json",
        "full_path": "/json?x=1&x=2&city=caf%C3%A9&empty=",
        # Werkzeug gives request.url as an IRI.
        "url": "http://testserver/json?x=1&x=2&city=caf\u00e9&empty=",
        "remote_addr": "127.0.0.1",
    }


async def test_a_json_post(asgi_app: WsgiToAsgi) -> None:
    body = json.dumps({"numbers": [1, 2, 3], "name": "J\u00fcrgen"}).encode()
    response = await HttpCommunicator(
        asgi_app,
        "POST",
        "/json",
        body=[body[:5], body[5:]],
        headers={"content-type": "application/json"},
    ).get_response()
    assert response.status == 200
    assert response.json() == {
        "received": {"numbers": [1, 2, 3], "name": "J\u00fcrgen"},
        "doubled": [2, 4, 6],
    }


async def test_a_url_encoded_form_post(asgi_app: WsgiToAsgi) -> None:
    body = b"name=J%C3%BCrgen&tags=a&tags=b+c"
    response = await HttpCommunicator(
        asgi_app,
        "POST",
        "/form",
        body=body,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "content-length": str(len(body)),
        },
    ).get_response()
    assert response.json() == {
        "form": {"name": ["J\u00fcrgen"], "tags": ["a", "b c"]},
        "upload": None,
    }


async def test_a_multipart_form_post_with_a_file(asgi_app: WsgiToAsgi) -> None:
    boundary = "XyZzY"
    content = bytes(range(256)) * 1000
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="title"\r\n\r\n'
            "holiday\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="upload"; filename="data.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await HttpCommunicator(
        asgi_app,
        "POST",
        "/form",
        body=[body[i : i + 50_000] for i in range(0, len(body), 50_000)],
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    ).get_response(timeout=PATIENCE)
    assert response.json() == {
        "form": {"title": ["holiday"]},
        "upload": {
            "filename": "data.bin",
            "content_type": "application/octet-stream",
            "sha256": hashlib.sha256(content).hexdigest(),
        },
    }


async def test_repeated_cookie_headers_reach_flask_as_one_jar(
    asgi_app: WsgiToAsgi,
) -> None:
    response = await HttpCommunicator(
        asgi_app,
        "GET",
        "/cookies",
        headers=[("cookie", "session=abc"), ("cookie", "lang=en; tz=UTC")],
    ).get_response()
    assert response.json() == {"cookies": {"session": "abc", "lang": "en", "tz": "UTC"}}
    set_cookies = response.header_values("set-cookie")
    assert len(set_cookies) == 2
    assert set_cookies[0].startswith("visited=yes;")
    assert "HttpOnly" in set_cookies[0]
    assert set_cookies[1].startswith("theme=dark;")


async def test_status_and_custom_headers(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(asgi_app, "GET", "/teapot").get_response()
    assert (response.status, response.text) == (418, "short and stout")
    assert response.header("x-pot") == "tea"
    assert response.header("content-length") == str(len(b"short and stout"))


async def test_a_unicode_path_reaches_the_route_decoded(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(
        asgi_app, "GET", "/greet/Jos\u00e9 \u2603"
    ).get_response()
    assert response.text == "Hello, Jos\u00e9 \u2603!"


async def test_not_found_and_abort(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(asgi_app, "GET", "/nowhere").get_response()
    assert response.status == 404
    response = await HttpCommunicator(asgi_app, "GET", "/missing").get_response()
    assert response.status == 404
    assert response.text == "Not Found: script_root='' path='/missing'"
    response = await HttpCommunicator(asgi_app, "POST", "/teapot").get_response()
    assert response.status == 405


async def test_an_error_becomes_a_500_through_flasks_handler(
    asgi_app: WsgiToAsgi, record: Record, caplog: pytest.LogCaptureFixture
) -> None:
    response = await HttpCommunicator(asgi_app, "GET", "/boom").get_response()
    assert response.status == 500
    assert response.json() == {
        "error": "internal",
        "detail": "RuntimeError('kaboom')",
    }
    assert "Exception on /boom [GET]" in caplog.text
    assert record.teardowns == ["/boom"]
    assert record.closed_responses == ["/boom"]


async def test_teardown_runs_once_per_request(
    asgi_app: WsgiToAsgi, record: Record
) -> None:
    for path in ("/json", "/teapot", "/nowhere"):
        await HttpCommunicator(asgi_app, "GET", path).get_response()
    assert record.teardowns == ["/json", "/teapot", "/nowhere"]
    # The response iterable's close() ran for each.
    assert record.closed_responses == ["/json", "/teapot", "/nowhere"]


async def test_concurrent_requests_keep_their_own_request_context(
    asgi_app: WsgiToAsgi,
) -> None:
    responses = await asyncio.gather(
        *(
            HttpCommunicator(asgi_app, "GET", f"/slow/{n}?tag=t{n}").get_response(
                timeout=PATIENCE
            )
            for n in range(12)
        )
    )
    assert [r.json() for r in responses] == [
        {"number": n, "arg": f"t{n}"} for n in range(12)
    ]


# -- mounting under a root path ------------------------------------------------------


async def test_url_for_includes_the_root_path(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(
        asgi_app, "GET", "/mnt/links", root_path="/mnt"
    ).get_response()
    assert response.json() == {
        "relative": "/mnt/json?q=x",
        "external": "http://testserver/mnt/json",
        "script_root": "/mnt",
        "path": "/links",
        "url_root": "http://testserver/mnt/",
    }


async def test_url_for_with_https_and_a_port(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(
        asgi_app,
        "GET",
        "/api/v1/links",
        root_path="/api/v1",
        scheme="https",
        server=("example.org", 8443),
    ).get_response()
    assert response.json()["external"] == "https://example.org:8443/api/v1/json"


async def test_a_redirect_points_under_the_root_path(asgi_app: WsgiToAsgi) -> None:
    response = await HttpCommunicator(
        asgi_app, "GET", "/mnt/go", root_path="/mnt"
    ).get_response()
    assert response.status == 302
    assert response.header("location") == "/mnt/links"


async def test_a_sibling_path_is_not_under_the_root_path(asgi_app: WsgiToAsgi) -> None:
    # '/mntx/links' does not lie under '/mnt': nothing is cut from the path.
    response = await HttpCommunicator(
        asgi_app, "GET", "/mntx/links", root_path="/mnt"
    ).get_response()
    assert response.status == 404
    assert response.text == "Not Found: script_root='/mnt' path='/mntx/links'"


# -- streaming ----------------------------------------------------------------------


async def test_a_streamed_response_arrives_chunk_by_chunk(
    asgi_app: WsgiToAsgi, record: Record
) -> None:
    communicator = HttpCommunicator(asgi_app, "GET", "/stream?n=4&label=row")
    try:
        start = await communicator.receive_response_start(timeout=PATIENCE)
        assert start.status == 200
        assert start.header("content-type") == "text/plain; charset=utf-8"
        assert start.header("content-length") is None
        assert await communicator.receive_body(timeout=PATIENCE) == b"row 1\n"
        assert await communicator.receive_body(timeout=PATIENCE) == b"row 2\n"
        # The generator waits at the gate: nothing more is produced yet.
        assert await communicator.receive_nothing(timeout=0.1)
        assert record.produced == [1, 2]
        assert not communicator.response_complete
    finally:
        record.gate.set()
    rest = [chunk async for chunk in communicator.iter_body(timeout=PATIENCE)]
    assert rest == [b"row 3\n", b"row 4\n", b""]
    response = await communicator.get_response(timeout=PATIENCE)
    assert response.body == b"row 1\nrow 2\nrow 3\nrow 4\n"
    assert record.generator_closed.is_set()
    assert record.teardowns == ["/stream", "/stream"]
    assert record.closed_responses == ["/stream"]


async def test_a_client_leaving_mid_stream_closes_the_generator(
    asgi_app: WsgiToAsgi, record: Record
) -> None:
    communicator = HttpCommunicator(asgi_app, "GET", "/stream?n=1000")
    try:
        assert await communicator.receive_body(timeout=PATIENCE) == b"line 1\n"
        assert await communicator.receive_body(timeout=PATIENCE) == b"line 2\n"
        # The generator waits for line 3, past the adapter's last check.
        assert await _wait_until(record.at_gate.is_set)
        await communicator.send_disconnect()
        assert await _wait_until(communicator.input_queue.empty)
    finally:
        record.gate.set()
    await communicator.disconnect(timeout=PATIENCE)
    assert record.generator_closed.wait(PATIENCE)
    # Stopped at the chunk after the disconnect, far from the 1000 asked for.
    assert record.produced == [1, 2, 3]
    # Closing the response iterable ended the request context a second time:
    # Flask tears down once when the view returns and once when a stream
    # kept alive by stream_with_context is closed.
    assert record.teardowns == ["/stream", "/stream"]
    assert record.closed_responses == ["/stream"]


# -- request bodies -----------------------------------------------------------------


async def test_request_stream_reads_a_chunked_body(asgi_app: WsgiToAsgi) -> None:
    chunks = [bytes([n]) * (256 * 1024) for n in range(32)]  # 8 MiB
    response = await HttpCommunicator(
        asgi_app,
        "POST",
        "/upload",
        body=chunks,
        headers={"content-type": "application/octet-stream"},
    ).get_response(timeout=PATIENCE)
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert response.json() == {"size": 8 * MiB, "sha256": expected}


async def test_a_hundred_megabyte_upload_does_not_sit_in_memory(
    asgi_app: WsgiToAsgi,
) -> None:
    total_chunks = 100  # 1 MiB each
    expected = hashlib.sha256()
    produced = 0

    async def receive() -> dict[str, Any]:
        nonlocal produced
        if produced == total_chunks:
            await asyncio.Event().wait()  # the watcher's receive: nothing more
        chunk = bytes([produced % 251]) * MiB
        produced += 1
        expected.update(chunk)
        return {
            "type": "http.request",
            "body": chunk,
            "more_body": produced < total_chunks,
        }

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = http_scope(
        "POST", "/upload", headers={"content-type": "application/octet-stream"}
    )
    server: Any = asgi_app
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await server(scope, receive, send)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert json.loads(body) == {"size": 100 * MiB, "sha256": expected.hexdigest()}
    growth = peak - baseline
    assert growth < 20 * MiB, f"peak memory grew by {growth / MiB:.1f} MiB"
