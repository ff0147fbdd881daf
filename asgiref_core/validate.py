"""Check that an ASGI application and its server keep to the ASGI specification.

This is to ASGI what :mod:`wsgiref.validate` is to WSGI. :func:`validator`
wraps an application so that the scope it is called with, every message it
receives, every message it sends and the way it returns are checked against
the ASGI 3 specification's ``http``, ``websocket`` and ``lifespan`` protocols
and the extensions it defines::

    from asgiref_core.validate import validator

    application = validator(application)  # raises ASGIProtocolError
    application = validator(application, mode="warn")  # warns, carries on

Code that plays the server itself (a test communicator, say) uses the
checker directly: :func:`check_scope` checks a scope and returns a
:class:`Checker` for the conversation, which is then told about each message
in turn.

Every violation is an :class:`ASGIProtocolError` carrying the id of the rule
it broke (the reference page lists them), the direction of the offending
message, the message itself, and what was expected instead. Checks are exact
about Python types, as the specification is: a byte string is :class:`bytes`
(not :class:`bytearray` or :class:`memoryview`), a Unicode string is
:class:`str`, and extra keys in a message are always allowed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

from asgiref_core._validate_common import Checker
from asgiref_core._validate_errors import ASGIProtocolError, ASGIProtocolWarning
from asgiref_core._validate_errors import abbreviate as _abbreviate
from asgiref_core._validate_http import HTTPChecker as _HTTPChecker
from asgiref_core._validate_lifespan import LifespanChecker as _LifespanChecker
from asgiref_core._validate_websocket import WebSocketChecker as _WebSocketChecker
from asgiref_core.compatibility import guarantee_single_callable
from asgiref_core.typing import (
    ASGI3Application,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)

__all__ = [
    "ASGIProtocolError",
    "ASGIProtocolWarning",
    "Checker",
    "check_scope",
    "validator",
]

# The classes live in private modules; tracebacks and documentation should
# name the module users import them from.
for _public in (ASGIProtocolError, ASGIProtocolWarning, Checker):
    _public.__module__ = __name__
del _public

_CHECKERS: dict[str, type[Checker]] = {
    "http": _HTTPChecker,
    "websocket": _WebSocketChecker,
    "lifespan": _LifespanChecker,
}
_MODES = ("raise", "warn")


def check_scope(scope: object, *, trusted: bool = False) -> Checker:
    """Check a connection scope and return the :class:`Checker` for its conversation.

    The checker is the one for the scope's ``type``: ``"http"``,
    ``"websocket"`` or ``"lifespan"``. A scope of any other type gets a
    permissive :class:`Checker` that only checks that each message is a dict
    with a ``str`` ``type``.

    ``trusted=True`` skips the checks of the scope itself and only returns the
    checker: for a harness that built the scope from known-good parts (the
    testing communicators' scope builders do) and wants the messages checked
    at the lowest cost.

    :raises ASGIProtocolError: for the first problem with the scope (its
        ``direction`` is ``"scope"``).
    """
    if trusted and isinstance(scope, Mapping):
        kind = scope.get("type")
        if isinstance(kind, str):
            return _CHECKERS.get(kind, Checker)(scope)
    checker, problems = _start(scope)
    if problems:
        raise problems[0]
    return checker


def _start(scope: object) -> tuple[Checker, list[ASGIProtocolError]]:
    """A checker for ``scope`` and every problem with the scope, all recorded."""
    if not isinstance(scope, Mapping):
        checker = Checker({})
        problem = f"the scope must be a dict, not {type(scope).__name__}"
        expected = "a dict such as {'type': 'http', 'asgi': {'version': '3.0'}, ...}"
        error = ASGIProtocolError("scope.dict", "scope", scope, expected, problem)
        checker.violations.append(error)
        return checker, [error]
    kind = scope.get("type")
    if not isinstance(kind, str):
        checker = Checker(scope)
        problem = (
            "missing required key 'type'"
            if "type" not in scope
            else f"'type' must be str (got {_abbreviate(kind)})"
        )
        expected = (
            "the protocol name as a str, such as 'http', 'websocket' or 'lifespan'"
        )
        error = ASGIProtocolError("scope.type", "scope", scope, expected, problem)
        checker.violations.append(error)
        return checker, [error]
    checker = _CHECKERS.get(kind, Checker)(scope)
    return checker, checker._check_scope()


def validator(application: object, *, mode: str = "raise") -> ASGI3Application:
    """Wrap ``application`` so that its whole conversation is checked.

    :param application: an ASGI 3 application, or an ASGI 2 (double-callable)
        one, which is adapted first.
    :param mode: what a violation does. ``"raise"``: an offending message the
        application sends raises :class:`ASGIProtocolError` out of its
        ``send()`` call and is not passed on; a bad scope, an offending message
        from the server and a wrong return raise out of the wrapped call; and a
        violation the application caught and swallowed is raised when it
        returns. ``"warn"``: each violation is issued as an
        :class:`ASGIProtocolWarning` and everything goes on unchanged.
    :returns: an ASGI 3 application; each call checks one connection.
    :raises ValueError: for an unknown ``mode``.
    :raises TypeError: if ``application`` is not callable.
    """
    if mode not in _MODES:
        msg = f"validator() mode must be 'raise' or 'warn' (got {mode!r})"
        raise ValueError(msg)
    if not callable(application):
        msg = (
            "validator() needs an ASGI application, a callable "
            f"(got {type(application).__name__} {_abbreviate(application)})"
        )
        raise TypeError(msg)
    inner = guarantee_single_callable(cast("Callable[..., Any]", application))
    warn = mode == "warn"

    async def validated_application(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        checker, problems = _start(scope)
        if problems and not warn:
            raise problems[0]
        for problem in problems:
            _warn(problem)

        async def checked_receive() -> ASGIReceiveEvent:
            message = await receive()
            try:
                checker.received(message)
            except ASGIProtocolError as error:
                if not warn:
                    raise
                _warn(error)
            return message

        async def checked_send(message: ASGISendEvent) -> None:
            try:
                checker.sent(message)
            except ASGIProtocolError as error:
                if not warn:
                    raise
                _warn(error)
            await send(message)

        await inner(scope, checked_receive, checked_send)
        if not warn and checker.violations:
            # The application caught a violation and carried on regardless.
            raise checker.violations[0]
        try:
            checker.returned()
        except ASGIProtocolError as error:
            if not warn:
                raise
            _warn(error)

    return validated_application


def _warn(error: ASGIProtocolError) -> None:
    # _warn() <- the checking function <- the code that called it: the
    # application for messages, the server for the scope and the return.
    warnings.warn(ASGIProtocolWarning(str(error)), stacklevel=3)
