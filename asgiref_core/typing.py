"""Static types for the ASGI protocol: scopes, events and application shapes.

An ASGI connection is described once by its *scope* (a dict whose ``type`` is
``"http"``, ``"websocket"`` or ``"lifespan"``) and then carried by *events*:
dicts the server hands the application through ``receive`` and dicts the
application hands back through ``send``. Each dict shape below is a
:class:`~typing.TypedDict` named after the event it describes; keys the
specification lets a server leave out are marked ``NotRequired``.

An application is either a single callable ``app(scope, receive, send)``
(ASGI 3) or the older double callable ``app(scope)(receive, send)`` (ASGI 2).

This module is a leaf: it imports nothing else from :mod:`asgiref_core`.
"""

# No ``from __future__ import annotations`` here, unlike everywhere else: on
# Python 3.11 a TypedDict only recognises ``NotRequired`` in evaluated
# annotations, so postponed (string) ones would quietly move every optional key
# into ``__required_keys__``.

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, NotRequired, Protocol, TypeAlias, TypedDict

__all__ = [
    "ASGI2Application",
    "ASGI2Protocol",
    "ASGI3Application",
    "ASGIApplication",
    "ASGIReceiveCallable",
    "ASGIReceiveEvent",
    "ASGISendCallable",
    "ASGISendEvent",
    "ASGIVersions",
    "HTTPDisconnectEvent",
    "HTTPRequestEvent",
    "HTTPResponseBodyEvent",
    "HTTPResponsePathsendEvent",
    "HTTPResponseStartEvent",
    "HTTPResponseTrailersEvent",
    "HTTPScope",
    "HTTPServerPushEvent",
    "LifespanScope",
    "LifespanShutdownCompleteEvent",
    "LifespanShutdownEvent",
    "LifespanShutdownFailedEvent",
    "LifespanStartupCompleteEvent",
    "LifespanStartupEvent",
    "LifespanStartupFailedEvent",
    "Scope",
    "WWWScope",
    "WebSocketAcceptEvent",
    "WebSocketCloseEvent",
    "WebSocketConnectEvent",
    "WebSocketDisconnectEvent",
    "WebSocketReceiveEvent",
    "WebSocketResponseBodyEvent",
    "WebSocketResponseStartEvent",
    "WebSocketScope",
    "WebSocketSendEvent",
]


# --- Scopes -----------------------------------------------------------------


class ASGIVersions(TypedDict):
    """The ``scope["asgi"]`` entry: which spec and interface version apply."""

    spec_version: str
    version: Literal["2.0"] | Literal["3.0"]


class HTTPScope(TypedDict):
    """Scope of one HTTP request/response cycle."""

    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    method: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: Iterable[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    state: NotRequired[dict[str, Any]]
    extensions: dict[str, dict[object, object]] | None


class WebSocketScope(TypedDict):
    """Scope of one WebSocket connection, from handshake to close."""

    type: Literal["websocket"]
    asgi: ASGIVersions
    http_version: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: Iterable[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    subprotocols: Iterable[str]
    state: NotRequired[dict[str, Any]]
    extensions: dict[str, dict[object, object]] | None


class LifespanScope(TypedDict):
    """Scope of the lifespan connection a server opens around its run."""

    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: NotRequired[dict[str, Any]]


#: A scope that carries a network connection (HTTP or WebSocket).
WWWScope: TypeAlias = HTTPScope | WebSocketScope
#: Any scope an application can be called with.
Scope: TypeAlias = HTTPScope | WebSocketScope | LifespanScope


# --- HTTP events --------------------------------------------------------------


class HTTPRequestEvent(TypedDict):
    """``http.request``: a chunk of the request body (received)."""

    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPResponseDebugEvent(TypedDict):
    """``http.response.debug``: test-only response details (sent).

    Not part of the specification and, as in asgiref, left out of ``__all__``.
    """

    type: Literal["http.response.debug"]
    info: dict[str, object]


class HTTPResponseStartEvent(TypedDict):
    """``http.response.start``: status line and headers (sent)."""

    type: Literal["http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]
    trailers: bool


class HTTPResponseBodyEvent(TypedDict):
    """``http.response.body``: a chunk of the response body (sent)."""

    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


class HTTPResponseTrailersEvent(TypedDict):
    """``http.response.trailers``: trailing headers after the body (sent)."""

    type: Literal["http.response.trailers"]
    headers: Iterable[tuple[bytes, bytes]]
    more_trailers: bool


class HTTPResponsePathsendEvent(TypedDict):
    """``http.response.pathsend``: let the server send a file by path (sent)."""

    type: Literal["http.response.pathsend"]
    path: str


class HTTPServerPushEvent(TypedDict):
    """``http.response.push``: ask the server to push a resource (sent)."""

    type: Literal["http.response.push"]
    path: str
    headers: Iterable[tuple[bytes, bytes]]


class HTTPDisconnectEvent(TypedDict):
    """``http.disconnect``: the client went away or the response is done."""

    type: Literal["http.disconnect"]


# --- WebSocket events -----------------------------------------------------------


class WebSocketConnectEvent(TypedDict):
    """``websocket.connect``: the client asks to open the socket (received)."""

    type: Literal["websocket.connect"]


class WebSocketAcceptEvent(TypedDict):
    """``websocket.accept``: the application accepts the handshake (sent)."""

    type: Literal["websocket.accept"]
    subprotocol: str | None
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketReceiveEvent(TypedDict):
    """``websocket.receive``: a binary or text frame from the client."""

    type: Literal["websocket.receive"]
    bytes: bytes | None
    text: str | None


class WebSocketSendEvent(TypedDict):
    """``websocket.send``: a binary or text frame for the client."""

    type: Literal["websocket.send"]
    bytes: bytes | None
    text: str | None


class WebSocketResponseStartEvent(TypedDict):
    """``websocket.http.response.start``: reject the handshake with HTTP (sent)."""

    type: Literal["websocket.http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketResponseBodyEvent(TypedDict):
    """``websocket.http.response.body``: body of that HTTP rejection (sent)."""

    type: Literal["websocket.http.response.body"]
    body: bytes
    more_body: bool


class WebSocketDisconnectEvent(TypedDict):
    """``websocket.disconnect``: the socket closed, with its close code."""

    type: Literal["websocket.disconnect"]
    code: int
    reason: str | None


class WebSocketCloseEvent(TypedDict):
    """``websocket.close``: the application closes the socket (sent)."""

    type: Literal["websocket.close"]
    code: int
    reason: str | None


# --- Lifespan events ------------------------------------------------------------


class LifespanStartupEvent(TypedDict):
    """``lifespan.startup``: the server is starting (received)."""

    type: Literal["lifespan.startup"]


class LifespanShutdownEvent(TypedDict):
    """``lifespan.shutdown``: the server is stopping (received)."""

    type: Literal["lifespan.shutdown"]


class LifespanStartupCompleteEvent(TypedDict):
    """``lifespan.startup.complete``: startup succeeded (sent)."""

    type: Literal["lifespan.startup.complete"]


class LifespanStartupFailedEvent(TypedDict):
    """``lifespan.startup.failed``: startup failed, with a reason (sent)."""

    type: Literal["lifespan.startup.failed"]
    message: str


class LifespanShutdownCompleteEvent(TypedDict):
    """``lifespan.shutdown.complete``: shutdown succeeded (sent)."""

    type: Literal["lifespan.shutdown.complete"]


class LifespanShutdownFailedEvent(TypedDict):
    """``lifespan.shutdown.failed``: shutdown failed, with a reason (sent)."""

    type: Literal["lifespan.shutdown.failed"]
    message: str


# --- Callables and applications -------------------------------------------------

#: Any event ``receive`` can return.
ASGIReceiveEvent: TypeAlias = (
    HTTPRequestEvent
    | HTTPDisconnectEvent
    | WebSocketConnectEvent
    | WebSocketReceiveEvent
    | WebSocketDisconnectEvent
    | LifespanStartupEvent
    | LifespanShutdownEvent
)

#: Any event an application may pass to ``send``.
ASGISendEvent: TypeAlias = (
    HTTPResponseStartEvent
    | HTTPResponseBodyEvent
    | HTTPResponseTrailersEvent
    | HTTPServerPushEvent
    | HTTPDisconnectEvent
    | WebSocketAcceptEvent
    | WebSocketSendEvent
    | WebSocketResponseStartEvent
    | WebSocketResponseBodyEvent
    | WebSocketCloseEvent
    | LifespanStartupCompleteEvent
    | LifespanStartupFailedEvent
    | LifespanShutdownCompleteEvent
    | LifespanShutdownFailedEvent
)

#: The ``receive`` awaitable callable the server gives an application.
ASGIReceiveCallable: TypeAlias = Callable[[], Awaitable[ASGIReceiveEvent]]
#: The ``send`` awaitable callable the server gives an application.
ASGISendCallable: TypeAlias = Callable[[ASGISendEvent], Awaitable[None]]


class ASGI2Protocol(Protocol):
    """An ASGI 2 application instance: built from a scope, then awaited."""

    def __init__(self, scope: Scope) -> None: ...

    async def __call__(
        self,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
    ) -> None: ...


#: An ASGI 2 (double-callable) application: a class built per connection.
ASGI2Application: TypeAlias = type[ASGI2Protocol]
#: An ASGI 3 (single-callable) application.
ASGI3Application: TypeAlias = Callable[
    [
        Scope,
        ASGIReceiveCallable,
        ASGISendCallable,
    ],
    Awaitable[None],
]
#: Either application style.
ASGIApplication: TypeAlias = ASGI2Application | ASGI3Application
