"""From an ASGI ``http`` scope and request body to a PEP 3333 environ.

Strings in the environ are PEP 3333's "bytes in str": the request's bytes,
each mapped to the code point of the same value (latin-1), whatever their
real encoding. Building the environ is one pass over the headers, so a
request with many headers costs in proportion to their number, and no
header may repeat more than ``duplicate_header_limit`` times.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable, Mapping
from tempfile import SpooledTemporaryFile
from typing import IO, Any, Final

__all__ = [
    "SPOOL_THRESHOLD",
    "TooManyHeadersError",
    "build_environ",
    "excess_duplicate",
    "read_request_body",
]

#: Request bodies larger than this go to a temporary file, not memory.
SPOOL_THRESHOLD: Final = 1024 * 1024

# Headers with an environ key of their own (no HTTP_ prefix).
_UNPREFIXED: Final = {
    "content-type": "CONTENT_TYPE",
    "content-length": "CONTENT_LENGTH",
}

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


class TooManyHeadersError(ValueError):
    """One header name repeats more often than ``duplicate_header_limit`` allows."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        super().__init__(
            f"the request repeats the {name!r} header more than {limit} times "
            f"(duplicate_header_limit={limit}); it was refused with 400 Bad Request"
        )


async def read_request_body(
    receive: Callable[[], Awaitable[Mapping[str, Any]]],
) -> IO[bytes] | None:
    """Receive the whole request body; ``None`` if the client left first.

    A body in one message stays in memory as it is; a longer one is spooled,
    and past :data:`SPOOL_THRESHOLD` it is written to a temporary file, so a
    huge upload never sits in memory whole.
    """
    message = await receive()
    chunk = _request_chunk(message)
    if chunk is None:
        return None
    if not message.get("more_body", False):
        return io.BytesIO(chunk)
    spool: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_THRESHOLD)  # noqa: SIM115
    try:
        spool.write(chunk)
        while True:
            message = await receive()
            chunk = _request_chunk(message)
            if chunk is None:
                spool.close()
                return None
            if chunk:
                spool.write(chunk)
            if not message.get("more_body", False):
                break
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _request_chunk(message: Mapping[str, Any]) -> bytes | None:
    kind = message.get("type")
    if kind == "http.request":
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray):
            msg = (
                "WsgiToAsgi got an 'http.request' message whose 'body' is "
                f"{type(body).__name__}, not bytes: {body!r:.80}"
            )
            raise TypeError(msg)
        return bytes(body)
    if kind == "http.disconnect":
        return None
    msg = (
        f"WsgiToAsgi expected an 'http.request' message while reading the "
        f"request body, got {kind!r}; the server must send the body first"
    )
    raise ValueError(msg)


def build_environ(
    scope: Mapping[str, Any], body: IO[bytes], duplicate_header_limit: int | None
) -> dict[str, Any]:
    """The WSGI environ for ``scope`` with ``body`` as ``wsgi.input``."""
    try:
        method = scope["method"]
        path = scope["path"]
    except KeyError as error:
        msg = (
            f"WsgiToAsgi got an 'http' scope without {error.args[0]!r}: {scope!r:.200}"
        )
        raise ValueError(msg) from None
    # PEP 3333's SCRIPT_NAME has no trailing slash: the slash starts PATH_INFO.
    script_name = _native(scope.get("root_path", "")).rstrip("/")
    path_info = _native(path)
    if script_name and (
        path_info == script_name or path_info.startswith(script_name + "/")
    ):
        # The path includes the mount point; PATH_INFO is what lies below it.
        path_info = path_info[len(script_name) :]
    scheme = scope.get("scheme") or "http"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        # Not to read later: the interpreter's stderr when the request ran.
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # wsgi.input ends where the body ends, with or without CONTENT_LENGTH.
        "wsgi.input_terminated": True,
    }
    server = scope.get("server")
    default_port = _DEFAULT_PORTS.get(scheme, "80")
    if server is None:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = default_port
    else:
        environ["SERVER_NAME"] = str(server[0])
        environ["SERVER_PORT"] = default_port if server[1] is None else str(server[1])
    client = scope.get("client")
    if client is not None:
        environ["REMOTE_ADDR"] = str(client[0])
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])
    _add_headers(environ, scope.get("headers", ()), duplicate_header_limit)
    return environ


def _native(text: str) -> str:
    """A decoded ASGI path as PEP 3333's native string of its UTF-8 bytes."""
    return text.encode("utf-8").decode("latin-1") if not text.isascii() else text


def excess_duplicate(headers: Any, limit: int) -> TooManyHeadersError | None:
    """The error for the first header repeated more than ``limit`` times, if any.

    Counts as :func:`build_environ` does (by environ key), without building
    anything, so a request can be refused before its body is read.
    """
    keys = _environ_keys
    counts: dict[str, int] = {}
    for raw_name, _ in headers:
        key = keys.get(raw_name) or _environ_key(raw_name)
        count = counts.get(key, 0) + 1
        if count > limit:
            return TooManyHeadersError(_header_name(raw_name), limit)
        counts[key] = count
    return None


def _add_headers(
    environ: dict[str, Any],
    headers: Any,
    limit: int | None,
) -> None:
    # Most headers appear once: each goes straight in, and only repeats are
    # collected, to be joined at the end.
    keys = _environ_keys
    repeats: dict[str, list[str]] = {}
    for raw_name, raw_value in headers:
        key = keys.get(raw_name)
        if key is None:
            key = _environ_key(raw_name)
        value = raw_value.decode("latin-1")
        first = environ.get(key)
        if first is None:
            environ[key] = value
            continue
        values = repeats.get(key)
        if values is None:
            values = repeats[key] = [first]
        if limit and len(values) >= limit:
            raise TooManyHeadersError(_header_name(raw_name), limit)
        values.append(value)
    for key, values in repeats.items():
        # Cookies are joined the way a browser joins them in one header.
        environ[key] = ("; " if key == "HTTP_COOKIE" else ", ").join(values)


# Header name -> environ key, for the names seen most; bounded, since names
# come from clients.
_environ_keys: dict[bytes, str] = {}
_ENVIRON_KEYS_LIMIT: Final = 512


def _environ_key(raw_name: bytes) -> str:
    lowered = raw_name.decode("latin-1").lower()
    key = _UNPREFIXED.get(lowered) or "HTTP_" + lowered.upper().replace("-", "_")
    if len(_environ_keys) >= _ENVIRON_KEYS_LIMIT:
        _environ_keys.clear()
    _environ_keys[raw_name] = key
    return key


def _header_name(raw_name: bytes) -> str:
    return raw_name.decode("latin-1").lower()
