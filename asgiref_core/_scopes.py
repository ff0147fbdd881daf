"""Complete, specification-correct connection scopes for tests.

A real server fills in every key of a scope; a test that hand-writes
``{"type": "http", "path": "/"}`` exercises an application under conditions no
server produces, and frameworks then fail on a missing ``server`` or
``raw_path`` rather than on the behaviour under test. These builders produce
the full scope a server would, from the few things a test cares about, and let
any key be overridden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias
from urllib.parse import quote, unquote

__all__ = [
    "HeadersInput",
    "http_scope",
    "lifespan_scope",
    "normalize_headers",
    "websocket_scope",
]

#: Headers as a test may give them: a mapping or ``(name, value)`` pairs, each
#: part ``str`` (encoded as latin-1) or ``bytes``.
HeadersInput: TypeAlias = (
    Mapping[str, str | bytes]
    | Mapping[bytes, str | bytes]
    | Mapping[str | bytes, str | bytes]
    | Iterable[tuple[str | bytes, str | bytes]]
)

#: The ASGI version and the HTTP/WebSocket specification version the testing
#: communicators implement (2.5: websocket disconnect reason; 2.4: ``send`` on a
#: closed connection raises ``OSError``).
ASGI_VERSION = "3.0"
WWW_SPEC_VERSION = "2.5"
LIFESPAN_SPEC_VERSION = "2.0"

DEFAULT_CLIENT = ("127.0.0.1", 50000)
DEFAULT_SERVER = ("testserver", 80)

# Characters that stay as they are when a test's path becomes ``raw_path``:
# the URL path grammar's own, plus ``%`` so escapes the test wrote survive.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._~:@!$&'()*+,;=-]*")


def normalize_headers(
    headers: HeadersInput | None, *, where: str
) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI wants them: a list of ``(lowercase name, value)`` byte pairs."""
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    normalized: list[tuple[bytes, bytes]] = []
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            msg = (
                f"{where}: each header must be a (name, value) pair (got {pair!r}); "
                "pass a dict or a list of 2-tuples of str or bytes"
            )
            raise TypeError(msg) from None
        normalized.append(
            (_header_bytes(name, where).lower(), _header_bytes(value, where))
        )
    return normalized


def _header_bytes(part: object, where: str) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, str):
        try:
            return part.encode("latin-1")
        except UnicodeEncodeError:
            msg = (
                f"{where}: header text {part!r} is not latin-1; encode it "
                "yourself and pass bytes"
            )
            raise ValueError(msg) from None
    msg = f"{where}: header names and values must be str or bytes (got {part!r})"
    raise TypeError(msg)


def _split_target(
    path: str, query_string: bytes | str | None, where: str
) -> tuple[str, bytes, bytes]:
    """``(path, raw_path, query_string)`` from a request target like ``/a%20b?x=1``."""
    given: object = path  # checked at run time: callers may not be type-checked
    if not isinstance(given, str):
        msg = f"{where}: path must be str, like '/items?page=2' (got {path!r})"
        raise TypeError(msg)
    if not path.startswith("/"):
        msg = f"{where}: path must start with '/' (got {path!r})"
        raise ValueError(msg)
    if query_string is None and _PLAIN_PATH.fullmatch(path):
        # The common case in tests, "/items/3": nothing to escape or decode.
        return path, path.encode("ascii"), b""
    # Split by hand: urlsplit would read "//x" as a host name.
    raw_target, has_query, target_query = path.partition("#")[0].partition("?")
    if has_query:
        if query_string is not None:
            msg = (
                f"{where}: the query string was given twice, in path {path!r} "
                f"and as query_string={query_string!r}; give it once"
            )
            raise ValueError(msg)
        # What a client puts on the wire: non-ASCII and spaces escaped.
        query = quote(target_query, safe=_QUERY_SAFE).encode("ascii")
    elif query_string is None:
        query = b""
    elif isinstance(query_string, str):
        query = query_string.encode("latin-1")
    else:
        query = query_string
    raw_path = quote(raw_target, safe=_PATH_SAFE).encode("ascii")
    return unquote(raw_target), raw_path, query


def _asgi(spec_version: str) -> dict[str, str]:
    return {"version": ASGI_VERSION, "spec_version": spec_version}


def _with_host(
    headers: list[tuple[bytes, bytes]], server: tuple[str, int | None] | None
) -> list[tuple[bytes, bytes]]:
    # Every HTTP/1.1 client sends Host, and frameworks build URLs from it.
    if server is None or any(name == b"host" for name, _ in headers):
        return headers
    host, port = server
    value = host if port in (None, 80, 443) else f"{host}:{port}"
    return [(b"host", value.encode("latin-1")), *headers]


def http_scope(
    method: str = "GET",
    path: str = "/",
    *,
    headers: HeadersInput | None = None,
    query_string: bytes | str | None = None,
    scheme: str = "http",
    http_version: str = "1.1",
    root_path: str = "",
    client: tuple[str, int] | None = DEFAULT_CLIENT,
    server: tuple[str, int | None] | None = DEFAULT_SERVER,
    state: Mapping[str, Any] | None = None,
    extensions: Mapping[str, Any] | None = None,
    scope: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The scope a server builds for an HTTP request.

    ``path`` may carry the query string (``"/search?q=asgi"``) and percent
    escapes; ``path`` in the scope is decoded, ``raw_path`` keeps the bytes. A
    ``host`` header is added from ``server`` unless one is given. ``state`` is
    copied shallowly, as servers copy the lifespan state into each request.
    Unless ``extensions`` is given, the ``http.response.trailers`` extension
    is advertised.
    Keys in ``scope`` override everything else.
    """
    where = f"http_scope({method!r}, {path!r})"
    decoded, raw_path, query = _split_target(path, query_string, where)
    built: dict[str, Any] = {
        "type": "http",
        "asgi": _asgi(WWW_SPEC_VERSION),
        "http_version": http_version,
        "method": method.upper(),
        "scheme": scheme,
        "path": decoded,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": _with_host(normalize_headers(headers, where=where), server),
        "client": client,
        "server": server,
        # The communicators read trailers, so they say so, as a server would.
        "extensions": (
            dict(extensions)
            if extensions is not None
            else {"http.response.trailers": {}}
        ),
    }
    if state is not None:
        built["state"] = dict(state)
    if scope:
        built.update(scope)
    return built


def websocket_scope(
    path: str = "/",
    *,
    headers: HeadersInput | None = None,
    query_string: bytes | str | None = None,
    subprotocols: Iterable[str] | None = None,
    scheme: str = "ws",
    http_version: str = "1.1",
    root_path: str = "",
    client: tuple[str, int] | None = DEFAULT_CLIENT,
    server: tuple[str, int | None] | None = DEFAULT_SERVER,
    state: Mapping[str, Any] | None = None,
    extensions: Mapping[str, Any] | None = None,
    scope: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The scope a server builds for a WebSocket handshake.

    Like :func:`http_scope`; ``subprotocols`` also becomes a
    ``sec-websocket-protocol`` header. The ``websocket.http.response``
    extension (denial responses) is advertised unless ``extensions`` is given.
    """
    where = f"websocket_scope({path!r})"
    decoded, raw_path, query = _split_target(path, query_string, where)
    offered = list(subprotocols) if subprotocols is not None else []
    names: list[object] = list(offered)
    for name in names:
        if not isinstance(name, str):
            msg = f"{where}: subprotocols must be str (got {name!r} in {offered!r})"
            raise TypeError(msg)
    header_list = normalize_headers(headers, where=where)
    if offered and not any(
        name == b"sec-websocket-protocol" for name, _ in header_list
    ):
        header_list.append((b"sec-websocket-protocol", ", ".join(offered).encode()))
    built: dict[str, Any] = {
        "type": "websocket",
        "asgi": _asgi(WWW_SPEC_VERSION),
        "http_version": http_version,
        "scheme": scheme,
        "path": decoded,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": _with_host(header_list, server),
        "client": client,
        "server": server,
        "subprotocols": offered,
        "extensions": (
            dict(extensions)
            if extensions is not None
            else {"websocket.http.response": {}}
        ),
    }
    if state is not None:
        built["state"] = dict(state)
    if scope:
        built.update(scope)
    return built


def lifespan_scope(
    *, state: dict[str, Any] | None = None, scope: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The scope a server builds for the lifespan protocol.

    ``state`` is the very dict the application fills in at startup (not a
    copy): pass it on to the request scopes afterwards.
    """
    built: dict[str, Any] = {
        "type": "lifespan",
        "asgi": _asgi(LIFESPAN_SPEC_VERSION),
        "state": {} if state is None else state,
    }
    if scope:
        built.update(scope)
    return built
