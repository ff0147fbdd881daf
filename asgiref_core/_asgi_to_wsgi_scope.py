"""The ASGI ``http`` scope of a WSGI request, built from its environ.

Runs on the WSGI server's thread for every request, so the common case (an
ASCII path, headers already seen) is kept to dict lookups and slicing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

    from asgiref_core.typing import HTTPScope

__all__: list[str] = []

#: The HTTP spec version the scopes claim. 2.4 is the one where ``send()`` on a
#: closed connection raises ``OSError``, which lets frameworks stop streaming
#: without running a disconnect listener next to every response.
_HTTP_SPEC_VERSION: Final = "2.4"

_HTTP_VERSIONS: Final = {
    "HTTP/1.1": "1.1",
    "HTTP/1.0": "1.0",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
    "HTTP/3": "3",
    "HTTP/3.0": "3",
}

# A decoded path made only of these characters is also its own raw form.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9/._~:@!$&'()*+,;=-]*")
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"

# Environ key -> header name. Header names come from clients, so the cache
# stops growing at a size no legitimate mix of headers reaches.
_HEADER_NAMES: dict[str, bytes] = {}
_HEADER_NAMES_MAX: Final = 512


def build_scope(
    environ: WSGIEnvironment, lifespan_state: dict[str, Any] | None
) -> HTTPScope:
    """The scope of the request ``environ`` describes.

    ``lifespan_state`` is what the application's lifespan startup stored, if
    it ran; the scope gets a shallow copy of it.
    """
    headers: list[tuple[bytes, bytes]] = []
    for key, value in environ.items():
        if key[:5] == "HTTP_" and key not in (
            "HTTP_CONTENT_TYPE",
            "HTTP_CONTENT_LENGTH",
        ):
            # The lookup inline, the call only on a miss: this runs per header.
            name = _HEADER_NAMES.get(key) or _new_header_name(key)
            headers.append((name, _environ_bytes(value)))
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        headers.append((b"content-type", _environ_bytes(content_type)))
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        headers.append((b"content-length", _environ_bytes(content_length)))

    # PEP 3333 carries the path's bytes as latin-1 text; ASGI wants the
    # text those bytes spell in UTF-8, and the path includes root_path.
    script_name = environ.get("SCRIPT_NAME", "")
    full = script_name + environ.get("PATH_INFO", "")
    raw = _environ_bytes(full)
    if raw.isascii():
        path, root_path = full, script_name
    else:
        path, root_path = _path_text(raw), _path_text(_environ_bytes(script_name))
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri and uri[0] == "/":
        # The server kept the request target as received: use it as is.
        raw_path = _environ_bytes(uri.partition("?")[0])
    elif _PLAIN_PATH.fullmatch(full):
        raw_path = raw
    else:
        raw_path = quote(raw, safe=_PATH_SAFE).encode("ascii")

    protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    http_version = _HTTP_VERSIONS.get(protocol) or protocol.rpartition("/")[2]
    remote = environ.get("REMOTE_ADDR")
    client: tuple[str, int] | None = None
    if remote:
        port = environ.get("REMOTE_PORT", "")
        client = (remote, int(port) if port.isdigit() else 0)
    server_port = environ.get("SERVER_PORT", "")
    scope: HTTPScope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": _HTTP_SPEC_VERSION},
        "http_version": http_version,
        "method": environ["REQUEST_METHOD"],
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": path,
        "raw_path": raw_path,
        "query_string": _environ_bytes(environ.get("QUERY_STRING", "")),
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": (
            environ.get("SERVER_NAME", ""),
            int(server_port) if server_port.isdigit() else None,
        ),
        "extensions": {},
    }
    if lifespan_state is not None:
        # Each request gets its own copy, as the lifespan spec says.
        scope["state"] = lifespan_state.copy()
    return scope


def _environ_bytes(text: str) -> bytes:
    """The bytes an environ string stands for."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        # PEP 3333 says latin-1; a server that handed over real text anyway
        # most likely decoded UTF-8 bytes.
        return text.encode("utf-8")


def _new_header_name(key: str) -> bytes:
    """The header name of environ key ``key`` (``HTTP_X_ID`` -> ``x-id``), cached."""
    name = key[5:].lower().replace("_", "-").encode("latin-1")
    if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
        _HEADER_NAMES[key] = name
    return name


def _path_text(raw: bytes) -> str:
    # Paths are UTF-8 on the wire by convention only; a stray byte becomes
    # U+FFFD here, and ``raw_path`` keeps the exact bytes for whoever needs them.
    return raw.decode("utf-8", "replace")
