"""The ``pytest_asgiref_*`` hook specifications.

Registered by :mod:`pytest_asgiref.plugin` in ``pytest_addhooks``; a conftest or
plugin implements them with plain functions of the same name. The bodies are
documentation only.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = [
    "pytest_asgiref_allowed_threads",
    "pytest_asgiref_app",
    "pytest_asgiref_channel_layer",
    "pytest_asgiref_scope",
]


@pytest.hookspec(firstresult=True)
def pytest_asgiref_app(request: pytest.FixtureRequest) -> object | None:
    """Supply the application for a test that has no ``asgi_app`` marker.

    Called only when neither a marker nor ``--asgi-app`` / ``asgi_app`` names
    one. Return an ASGI or WSGI application, or ``None`` to leave the choice
    to other implementations. The first non-``None`` answer is used.

    :param request: the requesting test's fixture request.
    """


@pytest.hookspec
def pytest_asgiref_scope(scope: dict[str, Any], request: pytest.FixtureRequest) -> None:
    """Adjust a scope a fixture built, before the application sees it.

    Called for every HTTP and WebSocket scope that ``asgi_communicator``,
    ``asgi_http`` and ``asgi_websocket`` build, after the marker's ``scope``
    overrides and the arguments the test passed; change ``scope`` in place
    (add a ``user``, a cookie header, a session...). Every implementation is
    called. The conversation is still validated against the ASGI
    specification afterwards.

    :param scope: the complete scope; its ``type`` says which protocol.
    :param request: the requesting test's fixture request.
    """


@pytest.hookspec(firstresult=True)
def pytest_asgiref_channel_layer(
    request: pytest.FixtureRequest, url: str
) -> object | None:
    """Supply the channel layer ``asgi_channel_layer`` gives a test.

    Return a layer object (anything with Channels' channel layer API), or
    ``None`` to let the plugin build one from ``url``. The plugin still
    swaps the layer into Django Channels for the test; it closes the layer
    at teardown only if it built it.

    :param request: the requesting test's fixture request.
    :param url: the effective ``--asgi-channel-layer`` value: ``"memory"``
        or a Redis URL.
    """


@pytest.hookspec
def pytest_asgiref_allowed_threads(config: pytest.Config) -> list[str] | None:
    """Name threads that live on by design, so the leak check ignores them.

    Called once per run, the first time a test leaves a new thread running
    (in each pytest-xdist worker, once per worker). Return a list of thread
    name patterns (:mod:`fnmatch` globs such as ``"cache-refresher-*"``), or
    ``None`` to add none; the patterns of every implementation and of the
    ``asgi_allowed_threads`` ini key are combined. A thread whose name
    matches one is never reported as leaked, wherever it was started.

    :param config: the run's configuration.
    """
