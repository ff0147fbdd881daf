"""Shared helpers for the plugin's pytester tests.

``inner_ini`` writes the inner run's ini file (with the loop scope setting
pytest-asyncio asks for) and returns a function to rewrite it with more keys.
``sample_apps`` writes ``apps.py``, a handful of small applications the inner
tests import or name as ``'apps:<name>'``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

APPS = '''
import json

import pytest

# The scope types the applications saw, in order, for inner tests to inspect.
EVENTS = []


@pytest.fixture
def new_events():
    """Request it before the asgi_* fixtures: what the apps see from then on."""
    start = len(EVENTS)
    return lambda: EVENTS[start:]


async def run_lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


def describe(scope):
    headers = [[name.decode(), value.decode()] for name, value in scope["headers"]]
    return {"path": scope["path"], "user": scope.get("user"), "headers": headers}


async def echo(scope, receive, send):
    """Answers HTTP with a JSON summary of its scope; sends it on a WebSocket."""
    EVENTS.append(scope["type"])
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
    elif scope["type"] == "http":
        await receive()
        body = json.dumps(describe(scope)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    else:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(describe(scope))})
        await receive()


async def broken(scope, receive, send):
    """Sends its HTTP status as a string, which the ASGI specification forbids."""
    if scope["type"] == "lifespan":
        await run_lifespan(receive, send)
        return
    await receive()
    await send({"type": "http.response.start", "status": "200", "headers": []})
    await send({"type": "http.response.body", "body": b"broken"})


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi saw " + environ["PATH_INFO"].encode()]
'''

DEFAULT_INI = ("[pytest]", "asyncio_default_fixture_loop_scope = function")


@pytest.fixture
def inner_ini(pytester: pytest.Pytester) -> Callable[..., None]:
    """Write the inner ini file now; call the result to add ``key = value`` lines."""

    def write(*lines: str) -> None:
        pytester.makeini("\n".join([*DEFAULT_INI, *lines]) + "\n")

    write()
    return write


@pytest.fixture
def sample_apps(pytester: pytest.Pytester, inner_ini: Callable[..., None]) -> None:
    """``apps.py`` in the inner run's directory, next to its ini file."""
    pytester.makepyfile(apps=APPS)
