"""Drive ASGI applications from tests, playing the server's part.

:class:`ApplicationCommunicator` mirrors asgiref 3.13's class of the same
name (Django Channels builds on it). The protocol communicators build on it in
turn, each framework-agnostic and validating the conversation by default:
:class:`HttpCommunicator`, :class:`WebsocketCommunicator` and
:class:`LifespanCommunicator`. :func:`http_scope`, :func:`websocket_scope` and
:func:`lifespan_scope` build the complete scopes they use.
"""

from __future__ import annotations

from asgiref_core._communicator import ApplicationCommunicator, ValidateMode
from asgiref_core._http_testing import HttpCommunicator, HttpResponse
from asgiref_core._lifespan_testing import (
    LifespanCommunicator,
    LifespanFailedError,
    LifespanOutcome,
)
from asgiref_core._scopes import http_scope, lifespan_scope, websocket_scope
from asgiref_core._testing_errors import ClientDisconnectedError, UnexpectedMessageError
from asgiref_core._transcript import Transcript, TranscriptEntry
from asgiref_core._websocket_testing import (
    WebsocketClosedError,
    WebsocketCommunicator,
    WebsocketConnection,
)

__all__ = [
    "ApplicationCommunicator",
    "ClientDisconnectedError",
    "HttpCommunicator",
    "HttpResponse",
    "LifespanCommunicator",
    "LifespanFailedError",
    "LifespanOutcome",
    "Transcript",
    "TranscriptEntry",
    "UnexpectedMessageError",
    "ValidateMode",
    "WebsocketClosedError",
    "WebsocketCommunicator",
    "WebsocketConnection",
    "http_scope",
    "lifespan_scope",
    "websocket_scope",
]
