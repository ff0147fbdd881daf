"""Checks of a connection scope's keys, one function per key.

Each check raises :class:`~asgiref_core.validate.ASGIProtocolError` for its
key alone, so that a checker can run them all and report every problem with
a scope rather than only the first. The per-type tuples at the bottom say
which keys each scope type has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NoReturn, cast

from asgiref_core._validate_common import (
    HEADERS_EXPECTED,
    MISSING,
    SCOPE,
    Message,
    ScopeCheck,
    header_problem,
    is_int,
)
from asgiref_core._validate_errors import ASGIProtocolError, abbreviate

_ASGI_VERSIONS = ("3.0", "2.0")
_HTTP_VERSIONS = ("1.0", "1.1", "2")
_WEBSOCKET_HTTP_VERSIONS = ("1.1", "2")


def _fail(scope: Message, rule: str, expected: str, problem: str) -> NoReturn:
    raise ASGIProtocolError(rule, SCOPE, scope, expected, problem)


def _wrong(
    scope: Message, key: str, value: object, wanted: str, expected: str
) -> NoReturn:
    if value is MISSING:
        problem = f"missing required key {key!r}"
    else:
        problem = f"{key!r} must be {wanted} (got {abbreviate(value)})"
    _fail(scope, f"scope.{key}", expected, problem)


# -- every defined scope type --------------------------------------------------


def check_asgi(scope: Message) -> None:
    asgi = scope.get("asgi", MISSING)
    if type(asgi) is not dict and not isinstance(asgi, Mapping):
        expected = "scope['asgi'] to be a dict such as {'version': '3.0'}"
        _wrong(scope, "asgi", asgi, "a dict", expected)
    version = asgi.get("version", MISSING)
    if type(version) is not str or version not in _ASGI_VERSIONS:
        if version is MISSING:
            problem = "scope['asgi'] is missing 'version'"
        else:
            got = abbreviate(version)
            problem = f"scope['asgi']['version'] must be '3.0' or '2.0' (got {got})"
        expected = "the ASGI version the server implements: '3.0' (or '2.0')"
        _fail(scope, "scope.asgi.version", expected, problem)
    spec = asgi.get("spec_version", MISSING)
    if spec is not MISSING and type(spec) is not str and not isinstance(spec, str):
        problem = f"scope['asgi']['spec_version'] must be str (got {abbreviate(spec)})"
        expected = "the protocol spec version as a string, such as '2.3', or no key"
        _fail(scope, "scope.asgi.spec_version", expected, problem)


def check_state(scope: Message) -> None:
    state = scope.get("state", MISSING)
    if state is not MISSING and not isinstance(state, dict):
        expected = "a dict the server copies from the lifespan scope, or no key"
        _wrong(scope, "state", state, "a dict", expected)


def check_extensions(scope: Message) -> None:
    extensions = scope.get("extensions", MISSING)
    if extensions is MISSING or extensions is None:
        return
    expected = (
        "a dict mapping each extension's name to a dict, such as "
        "{'http.response.trailers': {}}, or None"
    )
    if not isinstance(extensions, Mapping):
        _wrong(scope, "extensions", extensions, "a dict or None", expected)
    for name, value in extensions.items():
        if not isinstance(name, str) or not isinstance(value, Mapping):
            problem = (
                "each extension must map a str name to a dict "
                f"(got {abbreviate(name)}: {abbreviate(value)})"
            )
            _fail(scope, "scope.extensions", expected, problem)


# -- http and websocket ----------------------------------------------------------


def _check_http_version(
    scope: Message, allowed: tuple[str, ...], required: bool
) -> None:
    version = scope.get("http_version", MISSING)
    if version is MISSING and not required:
        return
    if not isinstance(version, str) or version not in allowed:
        wanted = " or ".join(repr(item) for item in allowed)
        _wrong(scope, "http_version", version, wanted, f"one of {wanted}")


def check_http_version(scope: Message) -> None:
    _check_http_version(scope, _HTTP_VERSIONS, required=True)


def check_websocket_http_version(scope: Message) -> None:
    _check_http_version(scope, _WEBSOCKET_HTTP_VERSIONS, required=False)


def check_method(scope: Message) -> None:
    method = scope.get("method", MISSING)
    expected = "the request method as an uppercase str, such as 'GET'"
    if not isinstance(method, str):
        _wrong(scope, "method", method, "str", expected)
    if not method or method != method.upper():
        _wrong(scope, "method", method, "a non-empty uppercase str", expected)


def check_scheme(scope: Message) -> None:
    scheme = scope.get("scheme", MISSING)
    if scheme is not MISSING and (not isinstance(scheme, str) or not scheme):
        expected = "a non-empty str such as 'https' or 'wss', or no key"
        _wrong(scope, "scheme", scheme, "a non-empty str", expected)


def check_path(scope: Message) -> None:
    path = scope.get("path", MISSING)
    if not isinstance(path, str):
        expected = "the decoded request path as a str, such as '/users/42'"
        _wrong(scope, "path", path, "str", expected)


def check_raw_path(scope: Message) -> None:
    raw_path = scope.get("raw_path")
    if raw_path is not None and not isinstance(raw_path, bytes):
        expected = "the path exactly as received, as bytes (b'/users/42'), or None"
        _wrong(scope, "raw_path", raw_path, "bytes or None", expected)


def _check_query_string(scope: Message, required: bool) -> None:
    query = scope.get("query_string", MISSING)
    if not required and (query is MISSING or query is None):
        return
    if not isinstance(query, bytes):
        expected = "the percent-encoded query as bytes, such as b'page=2' or b''"
        _wrong(scope, "query_string", query, "bytes", expected)


def check_http_query_string(scope: Message) -> None:
    _check_query_string(scope, required=True)


def check_websocket_query_string(scope: Message) -> None:
    _check_query_string(scope, required=False)


def check_root_path(scope: Message) -> None:
    root_path = scope.get("root_path", MISSING)
    if root_path is not MISSING and not isinstance(root_path, str):
        expected = "the mount point as a str, such as '' or '/api'"
        _wrong(scope, "root_path", root_path, "str", expected)


def check_headers(scope: Message) -> None:
    headers = scope.get("headers", MISSING)
    if headers is MISSING:
        _wrong(scope, "headers", headers, "", HEADERS_EXPECTED)
    problem = header_problem(headers, response=False)
    if problem is not None:
        expected = (
            "an iterable of [name, value] pairs of byte strings, such as "
            "[(b'host', b'example.com')]"
        )
        _fail(scope, "scope.headers", expected, problem)


def _address_problem(address: object, *, unix_allowed: bool) -> str | None:
    if address is None:
        return None
    if type(address) is list or type(address) is tuple:
        if len(address) == 2:
            host, port = address
            if type(host) is str and type(port) is int and 0 <= port <= 65535:
                return None
        pair: tuple[object, ...] | list[object] = address
    elif isinstance(address, str | bytes | bytearray | Mapping):
        return f"must be a [host, port] pair (got {abbreviate(address)})"
    else:
        try:
            pair = tuple(cast("Iterable[object]", address))
        except TypeError:
            pair = ()
    if len(pair) != 2:
        return f"must be a two-item [host, port] pair (got {abbreviate(address)})"
    host, port = pair
    if not isinstance(host, str):
        return f"host must be str (got {abbreviate(host)})"
    if port is None and unix_allowed:
        return None
    if not is_int(port) or not 0 <= port <= 65535:
        return f"port must be an int from 0 to 65535 (got {abbreviate(port)})"
    return None


def check_client(scope: Message) -> None:
    client = scope.get("client")
    problem = _address_problem(client, unix_allowed=False)
    if problem is not None:
        expected = "[host, port] with a str host and an int port, or None"
        _fail(scope, "scope.client", expected, f"'client' {problem}")


def check_server(scope: Message) -> None:
    server = scope.get("server")
    problem = _address_problem(server, unix_allowed=True)
    if problem is not None:
        expected = (
            "[host, port] with a str host and an int port, [unix socket path, None], "
            "or None"
        )
        _fail(scope, "scope.server", expected, f"'server' {problem}")


def check_subprotocols(scope: Message) -> None:
    subprotocols = scope.get("subprotocols", MISSING)
    if subprotocols is MISSING:
        return
    expected = "an iterable of str the client offered, such as ['chat'], or no key"
    if isinstance(subprotocols, str | bytes | Mapping):
        _wrong(scope, "subprotocols", subprotocols, "a list of str", expected)
    try:
        iterator = iter(cast("Iterable[object]", subprotocols))
    except TypeError:
        _wrong(scope, "subprotocols", subprotocols, "a list of str", expected)
    if iterator is subprotocols:
        return  # a one-shot iterator: reading it would empty it for the app
    for item in iterator:
        if not isinstance(item, str):
            problem = f"'subprotocols' must hold str only (got {abbreviate(item)})"
            _fail(scope, "scope.subprotocols", expected, problem)


LIFESPAN_CHECKS: tuple[ScopeCheck, ...] = (check_asgi, check_state, check_extensions)

HTTP_CHECKS: tuple[ScopeCheck, ...] = (
    check_asgi,
    check_http_version,
    check_method,
    check_scheme,
    check_path,
    check_raw_path,
    check_http_query_string,
    check_root_path,
    check_headers,
    check_client,
    check_server,
    check_state,
    check_extensions,
)

WEBSOCKET_CHECKS: tuple[ScopeCheck, ...] = (
    check_asgi,
    check_websocket_http_version,
    check_scheme,
    check_path,
    check_raw_path,
    check_websocket_query_string,
    check_root_path,
    check_headers,
    check_client,
    check_server,
    check_subprotocols,
    check_state,
    check_extensions,
)
