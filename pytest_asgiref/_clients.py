"""What the communicator fixtures hand to ``async def`` tests.

Each factory builds the :mod:`asgiref_core.testing` communicator for the
test's application with the test's defaults (lifespan state, validation,
scope overrides) through :class:`~pytest_asgiref._serving.Serving`, which
closes them at teardown. :class:`AsyncHttpClient` adds one-call requests.
The blocking twins for sync tests are in :mod:`pytest_asgiref._blocking`.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Iterable, Mapping
from typing import Any, Final

from asgiref_core.testing import (
    HttpCommunicator,
    HttpResponse,
    LifespanCommunicator,
    WebsocketCommunicator,
)
from pytest_asgiref._serving import Serving

__all__ = [
    "NO_JSON",
    "AsyncHttpClient",
    "AsyncLifespanFactory",
    "AsyncWebsocketFactory",
    "request_body",
]

NO_JSON: Final[Any] = object()


def request_body(
    body: bytes | Iterable[bytes], json: Any, options: dict[str, Any]
) -> bytes | Iterable[bytes]:
    """The body to send; ``json=`` encodes one and sets its content type."""
    if json is NO_JSON:
        return body
    if body:
        msg = "pass the request body as body= or as json=, not both"
        raise TypeError(msg)
    given = options.get("headers") or []
    # Headers may come as a mapping or as (name, value) pairs, as for the
    # communicators; keep them as pairs to add the content type.
    headers = list(given.items() if isinstance(given, Mapping) else given)
    if not any(_header_name(name) == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"application/json"))
    options["headers"] = headers
    return json_module.dumps(json).encode()


def _header_name(name: object) -> bytes:
    raw = name.encode("latin-1") if isinstance(name, str) else name
    return raw.lower() if isinstance(raw, bytes) else b""


class AsyncHttpClient:
    """``asgi_http`` in async tests.

    Call it for an :class:`~asgiref_core.testing.HttpCommunicator` (streaming,
    step by step), or use :meth:`request` and the method shortcuts for a whole
    exchange in one ``await``.
    """

    def __init__(self, serving: Serving) -> None:
        self._serving = serving

    def __call__(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | Iterable[bytes] = b"",
        headers: Any = None,
        *,
        json: Any = NO_JSON,
        **options: Any,
    ) -> HttpCommunicator:
        """An HTTP communicator for one request, closed at teardown.

        ``json`` encodes the body and sets ``content-type``, as for
        :meth:`request`.
        """
        options["headers"] = headers
        options["body"] = request_body(body, json, options)
        options.update(method=method, path=path)
        return self._serving.open("asgi_http", HttpCommunicator, options, kind="http")

    async def request(
        self,
        method: str,
        path: str = "/",
        *,
        body: bytes | Iterable[bytes] = b"",
        json: Any = NO_JSON,
        headers: Any = None,
        timeout: float = 1,
        **options: Any,
    ) -> HttpResponse:
        """Send one request and return the whole response.

        ``json`` encodes the body and sets ``content-type``; ``timeout``
        bounds each step. Other keyword arguments shape the scope, as for
        :class:`~asgiref_core.testing.HttpCommunicator`.
        """
        options["headers"] = headers
        options["body"] = request_body(body, json, options)
        options.update(method=method, path=path)
        serving = self._serving
        # A completed exchange leaves nothing to close: track it only if not.
        communicator = serving.open(
            "asgi_http", HttpCommunicator, options, kind="http", track=False
        )
        try:
            return await communicator.get_response(timeout)
        except BaseException:
            serving.track("asgi_http", communicator)
            raise

    async def get(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("GET", path, **options)

    async def head(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("HEAD", path, **options)

    async def options(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("OPTIONS", path, **options)

    async def delete(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("DELETE", path, **options)

    async def post(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("POST", path, **options)

    async def put(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("PUT", path, **options)

    async def patch(self, path: str = "/", **options: Any) -> HttpResponse:
        return await self.request("PATCH", path, **options)


class AsyncWebsocketFactory:
    """``asgi_websocket`` in async tests: call it for a WebSocket communicator."""

    def __init__(self, serving: Serving) -> None:
        self._serving = serving

    def __call__(
        self,
        path: str = "/",
        headers: Any = None,
        subprotocols: Iterable[str] | None = None,
        **options: Any,
    ) -> WebsocketCommunicator:
        """A WebSocket communicator, not yet connected; closed at teardown."""
        options.update(path=path, headers=headers, subprotocols=subprotocols)
        return self._serving.open(
            "asgi_websocket", WebsocketCommunicator, options, kind="websocket"
        )


class AsyncLifespanFactory:
    """``asgi_lifespan`` in async tests: a lifespan communicator to drive by hand."""

    def __init__(self, serving: Serving) -> None:
        self._serving = serving

    def __call__(
        self, state: dict[str, Any] | None = None, **options: Any
    ) -> LifespanCommunicator:
        """A lifespan communicator on the test's application; closed at teardown."""
        options["state"] = state
        return self._serving.open(
            "asgi_lifespan", LifespanCommunicator, options, kind=None
        )
