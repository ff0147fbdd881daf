"""The checker for the ``lifespan`` connection: startup, then shutdown.

The server sends ``lifespan.startup`` once, and later ``lifespan.shutdown``
once. The application answers each exactly once, with ``.complete`` or
``.failed``, and only after it received the event it answers.

Returning is allowed at any point except one: while the server is waiting for
an answer. The specification lets an application that does not support
lifespan say so by raising (never checked here, as nothing returned), and an
application that returns before receiving anything, or after answering
startup, leaves the server nothing to wait for. One that returns after
receiving ``lifespan.startup`` or ``lifespan.shutdown`` without answering
leaves the server waiting for a ``.complete`` or ``.failed`` that can no
longer come: that is the violation ``returned()`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NoReturn

from asgiref_core._validate_common import (
    MISSING,
    RECEIVE,
    RETURN,
    SEND,
    Checker,
    Handler,
    Message,
    ScopeCheck,
)
from asgiref_core._validate_scope import LIFESPAN_CHECKS

__all__: list[str] = []

_WAITING = 0  # the event has not been received
_RECEIVED = 1  # received, not answered yet
_ANSWERED = 2


class LifespanChecker(Checker):
    """Checks the ``lifespan`` connection."""

    _protocol = "lifespan"

    def __init__(self, scope: Mapping[str, object]) -> None:
        super().__init__(scope)
        self._startup = _WAITING
        self._shutdown = _WAITING

    def _scope_checks(self) -> tuple[ScopeCheck, ...]:
        return LIFESPAN_CHECKS

    # -- receive ------------------------------------------------------------------

    def _startup_event(self, message: Message) -> None:
        if self._startup != _WAITING:
            problem = "received a second time"
            expected = "exactly one 'lifespan.startup', as the first message"
            self._fail("lifespan.startup.order", RECEIVE, message, expected, problem)
        self._startup = _RECEIVED

    def _shutdown_event(self, message: Message) -> None:
        try:
            if self._startup == _WAITING or self._shutdown != _WAITING:
                problem = (
                    "received a second time"
                    if self._shutdown != _WAITING
                    else "received before 'lifespan.startup'"
                )
                expected = "exactly one 'lifespan.shutdown', after 'lifespan.startup'"
                self._fail(
                    "lifespan.shutdown.order", RECEIVE, message, expected, problem
                )
        finally:
            if self._shutdown == _WAITING:
                self._shutdown = _RECEIVED

    # -- send ---------------------------------------------------------------------

    def _startup_answer(self, message: Message) -> None:
        if self._startup != _RECEIVED:
            self._misplaced_answer(message, "lifespan.startup", self._startup)
        self._startup = _ANSWERED

    def _startup_failed(self, message: Message) -> None:
        self._startup_answer(message)
        self._check_failure_text(message)

    def _shutdown_answer(self, message: Message) -> None:
        if self._shutdown != _RECEIVED:
            self._misplaced_answer(message, "lifespan.shutdown", self._shutdown)
        self._shutdown = _ANSWERED

    def _shutdown_failed(self, message: Message) -> None:
        self._shutdown_answer(message)
        self._check_failure_text(message)

    def _misplaced_answer(self, message: Message, event: str, state: int) -> NoReturn:
        if state == _WAITING:
            problem = f"sent before {event!r} was received"
        else:
            problem = f"sent after {event!r} had already been answered"
        expected = (
            f"exactly one answer ('{event}.complete' or '{event}.failed'), "
            f"after receiving {event!r}"
        )
        self._fail(f"{message.get('type')}.order", SEND, message, expected, problem)

    def _check_failure_text(self, message: Message) -> None:
        text = message.get("message", MISSING)
        if text is not MISSING and not isinstance(text, str):
            expected = "a str saying what failed, for the server to log, or no key"
            rule = f"{message.get('type')}.message"
            self._bad_field(rule, SEND, message, "message", text, expected, "str")

    # -- the end --------------------------------------------------------------------

    def returned(self) -> None:
        """Check the server is not left waiting for an answer."""
        for event, state in (
            ("lifespan.startup", self._startup),
            ("lifespan.shutdown", self._shutdown),
        ):
            if state == _RECEIVED:
                problem = (
                    f"returned after receiving {event!r} without answering it, "
                    "so the server waits for an answer that cannot come"
                )
                expected = (
                    f"'{event}.complete' or '{event}.failed' before returning "
                    "(an application without lifespan support should raise instead)"
                )
                self._fail("lifespan.returned", RETURN, None, expected, problem)

    _on_receive: ClassVar[Mapping[str, Handler]] = {
        "lifespan.startup": _startup_event,
        "lifespan.shutdown": _shutdown_event,
    }
    _on_send: ClassVar[Mapping[str, Handler]] = {
        "lifespan.startup.complete": _startup_answer,
        "lifespan.startup.failed": _startup_failed,
        "lifespan.shutdown.complete": _shutdown_answer,
        "lifespan.shutdown.failed": _shutdown_failed,
    }
