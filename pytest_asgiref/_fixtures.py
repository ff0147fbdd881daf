"""The application fixtures: ``asgi_app``, the communicators, lifespan state.

Each fixture works in sync and async tests alike. In an ``async def`` test it
hands out the async objects of :mod:`asgiref_core.testing`, on the test's own
loop; in a sync test their blocking twins, driven through the portal. Either
way the application's lifespan has started on that loop before the test
runs, and everything opened is closed at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_asgiref._loops import serving_loop_for
from pytest_asgiref._markers import (
    AppChoice,
    LoadedApp,
    choice_for,
    fail_for,
    load_choice,
)

if TYPE_CHECKING:
    from pytest_asgiref._serving import Serving

__all__ = [
    "asgi_app",
    "asgi_communicator",
    "asgi_http",
    "asgi_lifespan",
    "asgi_state",
    "asgi_websocket",
    "loaded_app",
]

_LOADED_KEY: Final = pytest.StashKey[LoadedApp]()

_NO_APP: Final = (
    "no application to test: mark the test, its class or its module with "
    "@pytest.mark.asgi_app(app) (an object or 'package.module:attribute'), "
    "pass --asgi-app package.module:attribute, set the asgi_app ini key, or "
    "implement the pytest_asgiref_app hook"
)


def loaded_app(request: pytest.FixtureRequest) -> LoadedApp:
    """The requesting test's application, loaded once per test."""
    item = request.node
    cached: LoadedApp | None = item.stash.get(_LOADED_KEY, None)
    if cached is not None:
        return cached
    choice = choice_for(item)
    if not choice.source:
        supplied = request.node.ihook.pytest_asgiref_app(request=request)
        if supplied is None:
            fail_for(item, _NO_APP)
        choice = AppChoice(
            value=supplied,
            source="the pytest_asgiref_app hook",
            kind=choice.kind,
            lifespan=choice.lifespan,
            lifespan_scope=choice.lifespan_scope,
            validate=choice.validate,
            scope=choice.scope,
        )
    loaded = item.stash[_LOADED_KEY] = load_choice(item, choice)
    return loaded


@pytest.fixture
def asgi_app(request: pytest.FixtureRequest) -> Any:
    """The test's application as an ASGI callable (a WSGI app comes wrapped).

    Chosen by the ``asgi_app`` marker, else ``--asgi-app`` / ``asgi_app``,
    else the ``pytest_asgiref_app`` hook. No lifespan runs for this fixture
    alone: the communicator fixtures start it.
    """
    return loaded_app(request).asgi


@pytest.fixture
def _asgi_serving(request: pytest.FixtureRequest) -> Iterator[Serving]:
    from pytest_asgiref._lifespan import lifespan_state
    from pytest_asgiref._serving import Serving, validate_mode

    app = loaded_app(request)
    loop = serving_loop_for(request)
    validate = validate_mode(app.choice.validate)
    state = lifespan_state(request, app, loop, validate)
    serving = Serving(
        request=request, app=app, loop=loop, state=state, validate=validate
    )
    yield serving
    problems = loop.run(serving.close_all())
    if problems:
        fail_for(request.node, "\n".join(problems))


@pytest.fixture
def asgi_state(_asgi_serving: Serving) -> dict[str, Any]:
    """The lifespan ``state`` the application filled in at startup.

    The same dict the communicators copy into each scope. Fails the test when
    no lifespan state exists (lifespan off, or unsupported by the app).
    """
    state = _asgi_serving.state
    if state is None:
        choice = _asgi_serving.app.choice
        if _asgi_serving.app.kind == "wsgi":
            why = (
                f"the application from {choice.source} is a WSGI application, "
                "and WSGI has no lifespan"
            )
        elif choice.lifespan == "off":
            why = (
                "the test runs with lifespan='off'; use lifespan='auto' or "
                "'on' to run the application's lifespan"
            )
        else:
            why = (
                f"the application from {choice.source} does not support the "
                "lifespan protocol; use lifespan='on' to fail such a test at "
                "setup instead"
            )
        fail_for(
            _asgi_serving.request.node,
            f"asgi_state: there is no lifespan state: {why}",
        )
    return state  # type: ignore[return-value]


@pytest.fixture
def asgi_communicator(_asgi_serving: Serving) -> Any:
    """An ``ApplicationCommunicator`` on the app with a default HTTP scope.

    ``GET /``, shaped by the marker's ``scope`` option and the
    ``pytest_asgiref_scope`` hook, carrying the lifespan state. Blocking in
    sync tests.
    """
    from asgiref_core.testing import ApplicationCommunicator
    from pytest_asgiref._blocking import BlockingCommunicator

    serving = _asgi_serving
    arguments: dict[str, Any] = {}
    if serving.state is not None:
        arguments["state"] = serving.state
    scope = serving.adjusted_scope("http", arguments)
    communicator = serving.open(
        "asgi_communicator", ApplicationCommunicator, {"scope": scope}, kind=None
    )
    portal = serving.loop.portal
    return (
        communicator if portal is None else BlockingCommunicator(communicator, portal)
    )


@pytest.fixture
def asgi_http(_asgi_serving: Serving) -> Any:
    """Send HTTP requests to the app: ``asgi_http.get("/")``, or call it for a
    communicator (``asgi_http("POST", "/upload", body=...)``)."""
    from pytest_asgiref._blocking import BlockingHttpClient
    from pytest_asgiref._clients import AsyncHttpClient

    client = AsyncHttpClient(_asgi_serving)
    portal = _asgi_serving.loop.portal
    return client if portal is None else BlockingHttpClient(client, portal)


@pytest.fixture
def asgi_websocket(_asgi_serving: Serving) -> Any:
    """Open WebSocket communicators to the app: ``asgi_websocket("/ws")``."""
    from pytest_asgiref._blocking import BlockingWebsocketFactory
    from pytest_asgiref._clients import AsyncWebsocketFactory

    factory = AsyncWebsocketFactory(_asgi_serving)
    portal = _asgi_serving.loop.portal
    return factory if portal is None else BlockingWebsocketFactory(factory, portal)


@pytest.fixture
def asgi_lifespan(_asgi_serving: Serving) -> Any:
    """Drive the app's lifespan by hand: ``asgi_lifespan()`` is a communicator.

    Usually combined with ``@pytest.mark.asgi_app(..., lifespan="off")`` so
    that the automatic lifespan does not run as well.
    """
    from pytest_asgiref._blocking import BlockingLifespanFactory
    from pytest_asgiref._clients import AsyncLifespanFactory

    factory = AsyncLifespanFactory(_asgi_serving)
    portal = _asgi_serving.loop.portal
    return factory if portal is None else BlockingLifespanFactory(factory, portal)
