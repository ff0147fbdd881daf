"""The ``asgi_wsgi_app`` fixture: the test's application as a WSGI callable.

For WSGI test clients (``werkzeug.test.Client``, WebTest, a hand-built
environ and ``start_response``), whichever kind of application the test names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pytest

from pytest_asgiref._fixtures import loaded_app
from pytest_asgiref._markers import fail_for

__all__ = ["asgi_wsgi_app"]

# Seconds a request waits for the application's lifespan startup, as long as
# the asgi_lifespan fixtures wait for it.
_STARTUP_TIMEOUT: Final = 10.0


@pytest.fixture
def asgi_wsgi_app(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The test's application (``asgi_app`` marker, ``--asgi-app`` or hook) as WSGI.

    A WSGI application is handed out as it is, the very same object. An ASGI
    application comes wrapped in :class:`asgiref_core.wsgi.AsgiToWsgi`, which
    runs it on an event loop in a thread of its own, started by the first
    request. Unless the marker says ``lifespan="off"``, that adapter runs the
    application's lifespan itself: startup before the first request (an app
    without lifespan support is served all the same, whether the marker says
    ``"auto"`` or ``"on"``), shutdown at teardown, once per test whatever
    ``lifespan_scope`` says. At teardown the adapter is closed and its thread
    joined; a failed lifespan shutdown fails the test.
    """
    app = loaded_app(request)
    if app.kind == "wsgi":
        yield app.original
        return
    # Imported on first use: most suites never serve ASGI to a WSGI client.
    from asgiref_core.wsgi import AsgiToWsgi

    adapter = AsgiToWsgi(
        app.asgi,
        lifespan=app.choice.lifespan != "off",
        startup_timeout=_STARTUP_TIMEOUT,
    )
    yield adapter
    try:
        adapter.close()
    except RuntimeError as error:
        fail_for(request.node, f"asgi_wsgi_app: {error}")
