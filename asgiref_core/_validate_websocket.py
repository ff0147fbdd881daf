"""The checker for ``websocket`` connections: a handshake, frames, a close.

The server first delivers ``websocket.connect``. The application answers it
with ``websocket.accept``, with ``websocket.close`` (a refusal), or, when the
scope advertises the ``websocket.http.response`` extension, with an HTTP
denial response. Frames flow both ways only after an accept; nothing is sent
after a close, and a ``websocket.disconnect`` ends the receive side.

Two send-side keys came with later versions of the specification: accept
``headers`` (2.1) and a close ``reason`` (2.3). A server that declares an
older ``scope["asgi"]["spec_version"]`` does not understand them, so sending
them is reported. A scope without ``spec_version`` is not held to this, even
though the specification says to assume ``"2.0"`` then: test harnesses and
servers routinely leave it out while handling both keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NoReturn

from asgiref_core._validate_common import (
    BOOL_EXPECTED,
    BYTES_EXPECTED,
    HEADERS_EXPECTED,
    MISSING,
    RECEIVE,
    RETURN,
    SEND,
    Checker,
    Handler,
    Message,
    ScopeCheck,
    is_int,
    spec_version,
    truthy,
)
from asgiref_core._validate_scope import WEBSOCKET_CHECKS

__all__: list[str] = []

# What the application has answered.
_HANDSHAKE = 0  # nothing yet
_OPEN = 1  # accepted
_CLOSED = 2  # closed (before or after accepting)
_DENYING = 3  # denial response started
_DENIED = 4  # denial response complete

_DENIAL = "websocket.http.response"
_DENIAL_START = "websocket.http.response.start"
_DENIAL_BODY = "websocket.http.response.body"

_CODE_EXPECTED = (
    "an int close code an application may send: 1000-1003, 1007-1014 or "
    "3000-4999 (1004-1006 and 1015 are reserved)"
)
_ACCEPT_HEADERS_EXPECTED = HEADERS_EXPECTED + ", without sec-websocket-protocol"
_REASON_LIMIT = 123  # bytes: a close frame's payload is 125, two of them the code


class WebSocketChecker(Checker):
    """Checks one ``websocket`` connection."""

    _protocol = "websocket"

    def __init__(self, scope: Mapping[str, object]) -> None:
        super().__init__(scope)
        self._spec = spec_version(scope)
        self._offered = _offered_subprotocols(scope)
        self._connected = False  # websocket.connect received
        self._disconnected = False  # websocket.disconnect received
        self._accepted = False
        self._phase = _HANDSHAKE

    def _scope_checks(self) -> tuple[ScopeCheck, ...]:
        return WEBSOCKET_CHECKS

    # -- receive ----------------------------------------------------------------

    def _connect(self, message: Message) -> None:
        if self._connected:
            problem = "received a second time"
            expected = "exactly one 'websocket.connect', as the first message"
            self._fail("websocket.connect.order", RECEIVE, message, expected, problem)
        self._connected = True

    def _not_connected(self, message: Message) -> NoReturn:
        problem = (
            f"received before 'websocket.connect' (got {message.get('type')!r} first)"
        )
        expected = "'websocket.connect' as the first message from receive()"
        self._fail("websocket.connect.order", RECEIVE, message, expected, problem)

    def _receive(self, message: Message) -> None:
        if not self._connected:
            self._not_connected(message)
        if self._disconnected or not self._accepted:
            problem = (
                "received after 'websocket.disconnect'"
                if self._disconnected
                else "received, but the application never accepted the connection"
            )
            expected = "data only between 'websocket.accept' and 'websocket.disconnect'"
            self._fail("websocket.receive.order", RECEIVE, message, expected, problem)
        self._check_frame("websocket.receive", RECEIVE, message)

    def _disconnect(self, message: Message) -> None:
        try:
            if not self._connected:
                self._not_connected(message)
            code = message.get("code", MISSING)
            if type(code) is not int and not is_int(code):
                expected = (
                    "the int close code, such as 1000 (1005 if the client sent none)"
                )
                rule = "websocket.disconnect.code"
                self._bad_field(rule, RECEIVE, message, "code", code, expected, "int")
            reason = message.get("reason")
            if reason is not None and not isinstance(reason, str):
                expected = "the close reason as a str, or None"
                rule = "websocket.disconnect.reason"
                self._bad_field(
                    rule, RECEIVE, message, "reason", reason, expected, "str or None"
                )
        finally:
            self._disconnected = True

    def _check_frame(self, kind: str, direction: str, message: Message) -> None:
        data = message.get("bytes")
        text = message.get("text")
        if data is None:
            if text is None:
                problem = "both 'bytes' and 'text' are None or missing"
            elif type(text) is str or isinstance(text, str):
                return
            else:
                expected = "the text frame's content as a str"
                self._bad_field(
                    f"{kind}.text", direction, message, "text", text, expected, "str"
                )
        elif text is not None:
            problem = "both 'bytes' and 'text' are set"
        elif type(data) is bytes or isinstance(data, bytes):
            return
        else:
            rule = f"{kind}.bytes"
            self._bad_field(
                rule, direction, message, "bytes", data, BYTES_EXPECTED, "bytes"
            )
        expected = (
            "exactly one of 'bytes' (bytes) or 'text' (str) to be set, the other None"
        )
        self._fail(f"{kind}.frame", direction, message, expected, problem)

    # -- send ---------------------------------------------------------------------

    def _out_of_order(self, message: Message, expected: str) -> NoReturn:
        phase = self._phase
        if not self._connected and phase == _HANDSHAKE:
            problem = "sent before 'websocket.connect' was received"
        elif phase == _HANDSHAKE:
            problem = "sent before 'websocket.accept'"
        elif phase == _OPEN:
            problem = "sent after 'websocket.accept'"
        elif phase == _CLOSED:
            problem = "sent after 'websocket.close'"
        elif phase == _DENYING:
            problem = f"sent after {_DENIAL_START!r}"
        else:
            problem = "sent after the denial response was complete"
        self._fail(f"{message.get('type')}.order", SEND, message, expected, problem)

    def _accept(self, message: Message) -> None:
        phase = self._phase
        try:
            if phase != _HANDSHAKE or not self._connected:
                expected = (
                    "one 'websocket.accept', after 'websocket.connect' was received"
                )
                self._out_of_order(message, expected)
            subprotocol = message.get("subprotocol")
            if subprotocol is not None:
                self._check_subprotocol(message, subprotocol)
            headers = message.get("headers", MISSING)
            if headers is not MISSING:
                rule = "websocket.accept.headers"
                expected = _ACCEPT_HEADERS_EXPECTED
                forbidden = b"sec-websocket-protocol"
                self._check_headers(rule, message, headers, expected, forbidden)
                if headers and self._spec is not None and self._spec < (2, 1):
                    self._too_new(message, rule, "headers", "2.1")
        finally:
            if phase == _HANDSHAKE:
                self._phase = _OPEN
                self._accepted = True

    def _check_subprotocol(self, message: Message, subprotocol: object) -> None:
        offered = self._offered
        rule = "websocket.accept.subprotocol"
        if not isinstance(subprotocol, str):
            expected = (
                "one of the subprotocols in scope['subprotocols'] as a str, or None"
            )
            self._bad_field(
                rule, SEND, message, "subprotocol", subprotocol, expected, "str or None"
            )
        if offered is not None and subprotocol not in offered:
            problem = (
                f"'subprotocol' {subprotocol!r} was not offered by the client "
                f"(scope['subprotocols'] is {sorted(offered)!r})"
            )
            expected = "None, or one of the subprotocols in scope['subprotocols']"
            self._fail(rule, SEND, message, expected, problem)

    def _too_new(self, message: Message, rule: str, key: str, version: str) -> NoReturn:
        declared = ".".join(str(part) for part in self._spec or ())
        problem = (
            f"{key!r} needs spec version {version}, but the server declares "
            f"scope['asgi']['spec_version'] {declared!r}"
        )
        expected = f"no {key!r} when the server's spec_version is below {version}"
        self._fail(rule, SEND, message, expected, problem)

    def _send(self, message: Message) -> None:
        if self._phase != _OPEN:
            self._out_of_order(
                message, "data only between 'websocket.accept' and 'websocket.close'"
            )
        self._check_frame("websocket.send", SEND, message)

    def _close(self, message: Message) -> None:
        # A close may come before websocket.connect was read: it refuses the
        # connection all the same, and frameworks do send it that early.
        phase = self._phase
        try:
            if phase not in (_HANDSHAKE, _OPEN):
                expected = "one 'websocket.close', and none after a denial response"
                self._out_of_order(message, expected)
            code = message.get("code", 1000)
            if type(code) is not int and not is_int(code):
                self._bad_field(
                    "websocket.close.code",
                    SEND,
                    message,
                    "code",
                    code,
                    _CODE_EXPECTED,
                    "int",
                )
            if not (
                1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
            ):
                problem = f"{code!r} is not a close code an application may send"
                self._fail(
                    "websocket.close.code", SEND, message, _CODE_EXPECTED, problem
                )
            reason = message.get("reason")
            if reason is not None:
                self._check_reason(message, reason)
        finally:
            if phase in (_HANDSHAKE, _OPEN):
                self._phase = _CLOSED

    def _check_reason(self, message: Message, reason: object) -> None:
        rule = "websocket.close.reason"
        expected = f"a str of at most {_REASON_LIMIT} bytes in UTF-8, or None"
        if not isinstance(reason, str):
            self._bad_field(
                rule, SEND, message, "reason", reason, expected, "str or None"
            )
        if len(reason) * 4 > _REASON_LIMIT:
            size = len(reason.encode("utf-8", "surrogatepass"))
            if size > _REASON_LIMIT:
                problem = (
                    f"'reason' is {size} bytes in UTF-8, too long for a close frame"
                )
                self._fail(rule, SEND, message, expected, problem)
        if reason and self._spec is not None and self._spec < (2, 3):
            self._too_new(message, rule, "reason", "2.3")

    def _denial_start(self, message: Message) -> None:
        if _DENIAL not in self._extensions:
            self._not_advertised(message, _DENIAL)
        phase = self._phase
        try:
            if phase != _HANDSHAKE or not self._connected:
                expected = (
                    f"one {_DENIAL_START!r}, after 'websocket.connect' and instead "
                    "of 'websocket.accept'"
                )
                self._out_of_order(message, expected)
            expected = "an int HTTP status code such as 403"
            self._check_status(
                "websocket.http.response.start.status", message, expected
            )
            headers = message.get("headers", MISSING)
            if headers is not MISSING:
                self._check_headers(
                    "websocket.http.response.start.headers", message, headers
                )
        finally:
            if phase == _HANDSHAKE:
                self._phase = _DENYING

    def _denial_body(self, message: Message) -> None:
        if _DENIAL not in self._extensions:
            self._not_advertised(message, _DENIAL)
        phase = self._phase
        more = message.get("more_body", False)
        try:
            if phase != _DENYING:
                expected = f"body messages after {_DENIAL_START!r}, up to the final one"
                self._out_of_order(message, expected)
            body = message.get("body", b"")
            if type(body) is not bytes and not isinstance(body, bytes):
                rule = "websocket.http.response.body.body"
                self._bad_field(
                    rule, SEND, message, "body", body, BYTES_EXPECTED, "bytes"
                )
            if type(more) is not bool:
                rule = "websocket.http.response.body.more_body"
                self._bad_field(
                    rule, SEND, message, "more_body", more, BOOL_EXPECTED, "bool"
                )
        finally:
            if phase == _DENYING and not (
                more is True or (more is not False and truthy(more))
            ):
                self._phase = _DENIED

    # -- the end ----------------------------------------------------------------

    def returned(self) -> None:
        """Check the connection was closed, denied, or lost before returning."""
        phase = self._phase
        if phase in (_CLOSED, _DENIED) or self._disconnected:
            return
        if phase == _HANDSHAKE:
            detail = "the handshake was never answered with an accept, close or denial"
        elif phase == _OPEN:
            detail = "the connection was accepted and never closed"
        else:
            detail = "the denial response's final body was never sent"
        problem = (
            f"returned with the connection unfinished ({detail}) while the client "
            "was still connected (no 'websocket.disconnect' received)"
        )
        expected = (
            "'websocket.close' (or a complete denial response) before returning, "
            "unless the client disconnected"
        )
        self._fail("websocket.returned", RETURN, None, expected, problem)

    _on_receive: ClassVar[Mapping[str, Handler]] = {
        "websocket.connect": _connect,
        "websocket.receive": _receive,
        "websocket.disconnect": _disconnect,
    }
    _on_send: ClassVar[Mapping[str, Handler]] = {
        "websocket.accept": _accept,
        "websocket.send": _send,
        "websocket.close": _close,
        _DENIAL_START: _denial_start,
        _DENIAL_BODY: _denial_body,
    }
    _extension_of: ClassVar[Mapping[str, str]] = {
        _DENIAL_START: _DENIAL,
        _DENIAL_BODY: _DENIAL,
    }


def _offered_subprotocols(scope: Message) -> frozenset[str] | None:
    """The subprotocols the client offered; ``None`` when they cannot be read."""
    offered = scope.get("subprotocols", ())
    if not isinstance(offered, list | tuple | set | frozenset):
        return None
    return frozenset(item for item in offered if isinstance(item, str))
