"""The checker for ``http`` connections: one request, one response.

The request side is a run of ``http.request`` messages ending with one whose
``more_body`` is false, then only ``http.disconnect``. The response side is
one ``http.response.start``, body messages until the final one, then the
trailers if the start announced them. The extension messages fit into that
sequence where the extensions page of the specification puts them, and only
when the scope advertises their extension.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar, NoReturn

from asgiref_core._validate_common import (
    BOOL_EXPECTED,
    BYTES_EXPECTED,
    MISSING,
    RECEIVE,
    RETURN,
    SEND,
    Checker,
    Handler,
    Message,
    ScopeCheck,
    is_int,
    iterable,
    truthy,
)
from asgiref_core._validate_errors import abbreviate
from asgiref_core._validate_scope import HTTP_CHECKS

__all__: list[str] = []

# The request side.
_RECEIVING = 0  # more http.request messages may come
_RECEIVED = 1  # the body is complete
_DISCONNECTED = 2  # http.disconnect arrived
# The response side.
_IDLE = 0  # nothing sent yet
_STREAMING = 1  # started; the final body is still to come
_TRAILING = 2  # final body sent; the announced trailers are due
_DONE = 3  # complete

_TRAILERS = "http.response.trailers"
_PUSH = "http.response.push"
_ZEROCOPY = "http.response.zerocopysend"
_PATHSEND = "http.response.pathsend"
_EARLY_HINT = "http.response.early_hint"
_DEBUG = "http.response.debug"

_STATUS_EXPECTED = "an int HTTP status code such as 200"
_EXTENSION_MESSAGES = (_TRAILERS, _PUSH, _ZEROCOPY, _PATHSEND, _EARLY_HINT, _DEBUG)


class HTTPChecker(Checker):
    """Checks one ``http`` connection."""

    _protocol = "http"

    def __init__(self, scope: Mapping[str, object]) -> None:
        super().__init__(scope)
        self._request = _RECEIVING
        self._response = _IDLE
        self._trailers = False  # announced by http.response.start
        self._body_sent = False  # a body (or zero-copy) message was sent
        self._debug_sent = False

    def _scope_checks(self) -> tuple[ScopeCheck, ...]:
        return HTTP_CHECKS

    # -- receive ----------------------------------------------------------------

    def _request_message(self, message: Message) -> None:
        state = self._request
        more = message.get("more_body", False)
        try:
            if state != _RECEIVING:
                problem = (
                    "arrived after the request body was complete (an earlier "
                    "'http.request' had more_body False)"
                    if state == _RECEIVED
                    else "arrived after 'http.disconnect'"
                )
                expected = (
                    "'http.request' messages until one has more_body False, "
                    "then only 'http.disconnect'"
                )
                self._fail("http.request.order", RECEIVE, message, expected, problem)
            body = message.get("body", b"")
            if type(body) is not bytes and not isinstance(body, bytes):
                rule = "http.request.body"
                self._bad_field(
                    rule, RECEIVE, message, "body", body, BYTES_EXPECTED, "bytes"
                )
            if type(more) is not bool:
                rule = "http.request.more_body"
                self._bad_field(
                    rule, RECEIVE, message, "more_body", more, BOOL_EXPECTED, "bool"
                )
        finally:
            if state == _RECEIVING and not (
                more is True or (more is not False and truthy(more))
            ):
                self._request = _RECEIVED

    def _disconnect(self, message: Message) -> None:
        self._request = _DISCONNECTED

    # -- send: the core messages --------------------------------------------------

    def _start(self, message: Message) -> None:
        state = self._response
        trailers = message.get("trailers", False)
        try:
            if state != _IDLE:
                problem = (
                    "sent after the response was complete"
                    if state == _DONE
                    else "sent twice: the response had already started"
                )
                expected = "exactly one 'http.response.start', before any body"
                self._fail(
                    "http.response.start.order", SEND, message, expected, problem
                )
            self._check_status("http.response.start.status", message, _STATUS_EXPECTED)
            headers = message.get("headers", MISSING)
            if headers is not MISSING:
                self._check_headers("http.response.start.headers", message, headers)
            if trailers is not False:
                rule = "http.response.start.trailers"
                if type(trailers) is not bool:
                    self._bad_field(
                        rule, SEND, message, "trailers", trailers, BOOL_EXPECTED, "bool"
                    )
                if trailers and _TRAILERS not in self._extensions:
                    problem = (
                        "'trailers' is True, but the server did not advertise the "
                        f"{_TRAILERS!r} extension in scope['extensions']"
                    )
                    expected = (
                        f"'trailers': True only when scope['extensions'] has an "
                        f"{_TRAILERS!r} key"
                    )
                    self._fail(rule, SEND, message, expected, problem)
        finally:
            if state == _IDLE:
                self._response = _STREAMING
                self._trailers = trailers is True or (
                    trailers is not False and truthy(trailers)
                )

    def _body(self, message: Message) -> None:
        state = self._response
        more = message.get("more_body", False)
        try:
            if state != _STREAMING:
                self._out_of_order(
                    message,
                    "one or more 'http.response.body' after 'http.response.start'",
                )
            body = message.get("body", b"")
            if type(body) is not bytes and not isinstance(body, bytes):
                rule = "http.response.body.body"
                self._bad_field(
                    rule, SEND, message, "body", body, BYTES_EXPECTED, "bytes"
                )
            if type(more) is not bool:
                rule = "http.response.body.more_body"
                self._bad_field(
                    rule, SEND, message, "more_body", more, BOOL_EXPECTED, "bool"
                )
        finally:
            if state <= _STREAMING:
                self._advance_body(more)

    def _advance_body(self, more: object) -> None:
        self._body_sent = True
        if more is True or (more is not False and truthy(more)):
            self._response = _STREAMING
        else:
            self._response = _TRAILING if self._trailers else _DONE

    def _trailers_message(self, message: Message) -> None:
        # Whether the server offers trailers was checked on the start message.
        state = self._response
        more = message.get("more_trailers", False)
        try:
            if state != _TRAILING:
                expected = (
                    "'http.response.trailers' only after the final body of a "
                    "response whose start had 'trailers': True"
                )
                if state == _IDLE or self._trailers:
                    self._out_of_order(message, expected)
                problem = "sent, but 'http.response.start' did not announce trailers"
                self._fail(
                    "http.response.trailers.order", SEND, message, expected, problem
                )
            headers = message.get("headers", MISSING)
            self._check_headers("http.response.trailers.headers", message, headers)
            if type(more) is not bool:
                rule = "http.response.trailers.more_trailers"
                self._bad_field(
                    rule, SEND, message, "more_trailers", more, BOOL_EXPECTED, "bool"
                )
        finally:
            if state == _TRAILING and not (
                more is True or (more is not False and truthy(more))
            ):
                self._response = _DONE

    def _out_of_order(self, message: Message, expected: str) -> NoReturn:
        """Report a response message sent in the wrong state of the response."""
        state = self._response
        if state == _IDLE:
            problem = "sent before 'http.response.start'"
        elif state == _STREAMING:
            problem = "sent before the final body (the last one had more_body True)"
        elif state == _TRAILING:
            problem = (
                "sent after the final body, while the announced "
                "'http.response.trailers' were due"
            )
        else:
            problem = "sent after the response was complete"
        rule = f"{message.get('type')}.order"
        self._fail(rule, SEND, message, expected, problem)

    # -- send: extension messages -------------------------------------------------

    def _push(self, message: Message) -> None:
        if _PUSH not in self._extensions:
            self._not_advertised(message, _PUSH)
        if self._response != _STREAMING:
            self._out_of_order(
                message, "a push after 'http.response.start', before the final body"
            )
        path = message.get("path", MISSING)
        if not isinstance(path, str):
            expected = "the pushed resource's path as a str, such as '/style.css'"
            self._bad_field(
                "http.response.push.path", SEND, message, "path", path, expected, "str"
            )
        headers = message.get("headers", MISSING)
        self._check_headers("http.response.push.headers", message, headers)

    def _zerocopysend(self, message: Message) -> None:
        if _ZEROCOPY not in self._extensions:
            self._not_advertised(message, _ZEROCOPY)
        state = self._response
        more = message.get("more_body", False)
        try:
            if state != _STREAMING:
                self._out_of_order(
                    message,
                    "zero-copy sends after 'http.response.start', up to the final body",
                )
            file = message.get("file", MISSING)
            if not callable(getattr(file, "fileno", None)):
                rule = "http.response.zerocopysend.file"
                expected = "an open file with a fileno(), such as open(path, 'rb')"
                wanted = "a file object with fileno()"
                self._bad_field(rule, SEND, message, "file", file, expected, wanted)
            for key in ("offset", "count"):
                value = message.get(key)
                if value is not None and (not is_int(value) or value < 0):
                    rule = f"{_ZEROCOPY}.{key}"
                    expected = f"a non-negative int {key!r}, or no key"
                    wanted = "a non-negative int"
                    self._bad_field(rule, SEND, message, key, value, expected, wanted)
            if type(more) is not bool:
                rule = "http.response.zerocopysend.more_body"
                self._bad_field(
                    rule, SEND, message, "more_body", more, BOOL_EXPECTED, "bool"
                )
        finally:
            if state <= _STREAMING:
                self._advance_body(more)

    def _pathsend(self, message: Message) -> None:
        if _PATHSEND not in self._extensions:
            self._not_advertised(message, _PATHSEND)
        state = self._response
        try:
            expected = "one path send after 'http.response.start', in place of any body"
            if state != _STREAMING:
                self._out_of_order(message, expected)
            if self._body_sent:
                problem = "sent after 'http.response.body': the two cannot be mixed"
                self._fail(
                    "http.response.pathsend.order", SEND, message, expected, problem
                )
            path = message.get("path", MISSING)
            rule = "http.response.pathsend.path"
            expected = "the absolute path of the file to send, as a str"
            if not isinstance(path, str):
                self._bad_field(rule, SEND, message, "path", path, expected, "str")
            if not os.path.isabs(path):
                problem = f"'path' must be absolute (got {abbreviate(path)})"
                self._fail(rule, SEND, message, expected, problem)
        finally:
            if state <= _STREAMING:
                self._advance_body(False)

    def _early_hint(self, message: Message) -> None:
        if _EARLY_HINT not in self._extensions:
            self._not_advertised(message, _EARLY_HINT)
        if self._response > _STREAMING:
            self._out_of_order(message, "early hints before the final body")
        links = message.get("links", MISSING)
        expected = (
            "an iterable of Link header values as bytes, such as "
            "[b'</style.css>; rel=preload']"
        )
        rule = "http.response.early_hint.links"
        if type(links) is list or type(links) is tuple:
            for link in links:
                if not isinstance(link, bytes):
                    problem = f"'links' must hold bytes only (got {abbreviate(link)})"
                    self._fail(rule, SEND, message, expected, problem)
        elif (
            links is MISSING
            or isinstance(links, str | bytes | Mapping)
            or not iterable(links)
        ):
            self._bad_field(
                rule, SEND, message, "links", links, expected, "a list of bytes"
            )
        # Any other iterable is left alone: reading it could consume it.

    def _debug(self, message: Message) -> None:
        if _DEBUG not in self._extensions:
            self._not_advertised(message, _DEBUG)
        try:
            expected = "one debug message, before 'http.response.start'"
            if self._debug_sent:
                problem = "sent twice"
                self._fail(
                    "http.response.debug.order", SEND, message, expected, problem
                )
            if self._response != _IDLE:
                self._out_of_order(message, expected)
            info = message.get("info", MISSING)
            if not isinstance(info, Mapping):
                expected = "a dict of debug information"
                self._bad_field(
                    "http.response.debug.info",
                    SEND,
                    message,
                    "info",
                    info,
                    expected,
                    "a dict",
                )
        finally:
            self._debug_sent = True

    # -- the end ----------------------------------------------------------------

    def returned(self) -> None:
        """Check the response was finished, unless the client had gone away."""
        state = self._response
        if state == _DONE or self._request == _DISCONNECTED:
            return
        if state == _IDLE:
            detail = "'http.response.start' was never sent"
        elif state == _TRAILING:
            detail = "the announced 'http.response.trailers' were never sent"
        elif self._body_sent:
            detail = "the last body had more_body True"
        else:
            detail = "no body followed 'http.response.start'"
        problem = (
            f"returned without completing the response ({detail}) while the "
            "client was still connected (no 'http.disconnect' received)"
        )
        expected = (
            "a complete response (a final body with more_body False, then any "
            "announced trailers) before returning, unless the client disconnected"
        )
        self._fail("http.returned", RETURN, None, expected, problem)

    _on_receive: ClassVar[Mapping[str, Handler]] = {
        "http.request": _request_message,
        "http.disconnect": _disconnect,
    }
    _on_send: ClassVar[Mapping[str, Handler]] = {
        "http.response.start": _start,
        "http.response.body": _body,
        _TRAILERS: _trailers_message,
        _PUSH: _push,
        _ZEROCOPY: _zerocopysend,
        _PATHSEND: _pathsend,
        _EARLY_HINT: _early_hint,
        _DEBUG: _debug,
    }
    _extension_of: ClassVar[Mapping[str, str]] = {
        name: name for name in _EXTENSION_MESSAGES
    }
