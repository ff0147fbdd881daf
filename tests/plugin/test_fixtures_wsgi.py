"""The ``asgi_wsgi_app`` fixture: the test's application as a WSGI callable."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

# Shared by the inner test files: one application of each kind.
APPS = '''
import threading
from contextlib import asynccontextmanager

from flask import Flask
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

events = []


async def raw(scope, receive, send):
    """Echoes the method, path, query and body; answers lifespan when asked."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    greeting = scope.get("state", {}).get("greeting", "no state")
    query = scope["query_string"].decode()
    text = f"{scope['method']} {scope['path']}?{query} {body.decode()} {greeting}"
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"text/plain"), (b"x-served-by", b"raw")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


@asynccontextmanager
async def lifespan(app):
    events.append("starlette startup")
    yield {"greeting": "hi from lifespan"}
    events.append("starlette shutdown")


async def home(request):
    greeting = getattr(request.state, "greeting", None)
    return JSONResponse({"greeting": greeting, "q": request.query_params.get("q")})


starlette_app = Starlette(routes=[Route("/", home)], lifespan=lifespan)

flask_app = Flask(__name__)


@flask_app.get("/")
def flask_home():
    return "flask says hi"


def plain_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]


async def failing_shutdown(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "db gone"})
        return
    await receive()
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def adapter_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("asgiref_core-")]
'''


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        """
    )
    pytester.makepyfile(apps=APPS)
    return pytester


def run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_asgi_app_through_werkzeug_client(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import io
        import pytest
        from werkzeug.test import Client
        from apps import adapter_threads, events, raw
        from asgiref_core.wsgi import AsgiToWsgi

        pytestmark = pytest.mark.asgi_app(app=raw)

        def test_client(asgi_wsgi_app):
            assert isinstance(asgi_wsgi_app, AsgiToWsgi)
            assert asgi_wsgi_app.asgi_application is raw
            client = Client(asgi_wsgi_app)
            response = client.post("/items", query_string="q=1", data=b"payload")
            assert response.status_code == 201
            assert response.headers["x-served-by"] == "raw"
            assert response.text == "POST /items?q=1 payload hello"
            assert adapter_threads() != []

        def test_plain_environ(asgi_wsgi_app):
            statuses = []
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/plain",
                "QUERY_STRING": "",
                "SERVER_NAME": "testserver",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(b""),
                "wsgi.errors": io.StringIO(),
            }
            def start_response(status, headers):
                statuses.append(status)

            body = b"".join(asgi_wsgi_app(environ, start_response))
            assert statuses == ["201 Created"]
            assert body == b"GET /plain?  hello"

        @pytest.mark.asyncio
        async def test_async_test(asgi_wsgi_app):
            assert Client(asgi_wsgi_app).get("/").status_code == 201

        def test_no_adapter_thread_left_behind():
            assert adapter_threads() == []
            # Each test's adapter ran startup before its first request and
            # shutdown at teardown.
            assert events == ["lifespan.startup", "lifespan.shutdown"] * 3
        """,
    )
    result.assert_outcomes(passed=4)


def test_starlette_lifespan_on_and_off(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import pytest
        from werkzeug.test import Client
        from apps import adapter_threads, events, starlette_app

        pytestmark = pytest.mark.asgi_app(app=starlette_app)

        def test_auto(asgi_wsgi_app):
            response = Client(asgi_wsgi_app).get("/?q=x")
            assert response.json == {"greeting": "hi from lifespan", "q": "x"}
            assert events == ["starlette startup"]

        def test_auto_shut_down():
            assert events == ["starlette startup", "starlette shutdown"]
            events.clear()

        @pytest.mark.asgi_app(lifespan="off")
        def test_off(asgi_wsgi_app):
            response = Client(asgi_wsgi_app).get("/")
            assert response.json == {"greeting": None, "q": None}
            assert events == []

        @pytest.mark.asgi_app(lifespan="on")
        def test_on(asgi_wsgi_app):
            assert Client(asgi_wsgi_app).get("/").json["greeting"] == "hi from lifespan"

        def test_nothing_left():
            assert events == ["starlette startup", "starlette shutdown"]
            assert adapter_threads() == []
        """,
    )
    result.assert_outcomes(passed=5)


def test_wsgi_apps_come_as_they_are(inner: pytest.Pytester) -> None:
    inner.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        asgi_app = apps:plain_wsgi
        """
    )
    result = run(
        inner,
        """
        import pytest
        from werkzeug.test import Client
        from apps import adapter_threads, flask_app, plain_wsgi

        @pytest.mark.asgi_app(app=flask_app)
        def test_flask(asgi_wsgi_app):
            assert asgi_wsgi_app is flask_app
            assert Client(asgi_wsgi_app).get("/").text == "flask says hi"

        def test_from_ini(asgi_wsgi_app):
            assert asgi_wsgi_app is plain_wsgi
            assert Client(asgi_wsgi_app).get("/").text == "plain"

        def test_no_threads():
            assert adapter_threads() == []
        """,
    )
    result.assert_outcomes(passed=3)


def test_failures_at_teardown_and_without_an_app(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import pytest
        from werkzeug.test import Client
        from apps import adapter_threads, failing_shutdown

        @pytest.mark.asgi_app(app=failing_shutdown)
        def test_shutdown_fails(asgi_wsgi_app):
            assert Client(asgi_wsgi_app).get("/").status_code == 204

        @pytest.mark.asgi_app(app=failing_shutdown)
        def test_unused_adapter_starts_nothing(asgi_wsgi_app):
            assert adapter_threads() == []

        def test_no_app(asgi_wsgi_app):
            pass

        def test_threads_gone():
            assert adapter_threads() == []
        """,
    )
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_shutdown_fails*",
            "test_inner.py::test_shutdown_fails: asgi_wsgi_app: "
            "AsgiToWsgi(failing_shutdown).close(): the application's lifespan "
            "shutdown failed with message 'db gone'; the adapter is closed "
            "regardless",
        ]
    )
    result.stdout.fnmatch_lines(
        ["test_inner.py::test_no_app: no application to test: mark the test*"]
    )
