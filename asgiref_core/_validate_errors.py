"""The conformance checker's exception and warning, and how they show a message.

A violation names the rule it broke, which way the offending message was
travelling, what was wrong with it and what the specification expects
instead. The offending message is shown too, but abbreviated: a response body
of several megabytes must not flood a test report.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ASGIProtocolError", "ASGIProtocolWarning"]

#: Where a message came from, as the first words of a violation's text.
_ORIGINS = {
    "scope": "scope",
    "send": "sent",
    "receive": "received",
    "return": "application",
}

# How much of a long value the abbreviated form keeps, and the limits on
# containers, so that the whole text stays a few lines long.
_LONG = 200
_KEPT = 60
_ITEMS = 12
_DEPTH = 4


class ASGIProtocolError(Exception):
    """A scope, message or application exit that breaks the ASGI specification.

    :param rule: the stable id of the rule that was broken, such as
        ``"http.response.start.status"``; the reference page lists them all.
    :param direction: ``"scope"`` (the connection scope), ``"send"`` (a message
        the application passed to ``send``), ``"receive"`` (a message the
        application got from ``receive``) or ``"return"`` (the application's
        coroutine returned).
    :param message: the offending message or scope; ``None`` for ``"return"``.
    :param expected: what the specification expects, in words.
    :param problem: what was wrong, naming the offending value.

    ``str()`` of the exception puts these together::

        sent 'http.response.start' message: 'status' must be int (got '200');
        expected an int HTTP status code such as 200
        [rule http.response.start.status]

    (on one line), followed by the offending message on a second line, with
    long strings, byte strings and containers shortened.
    """

    rule: str
    direction: str
    message: object
    expected: str
    problem: str

    def __init__(
        self,
        rule: str,
        direction: str,
        message: object,
        expected: str,
        problem: str,
    ) -> None:
        self.rule = rule
        self.direction = direction
        self.message = message
        self.expected = expected
        self.problem = problem
        super().__init__(_format(rule, direction, message, expected, problem))

    def __reduce__(self) -> tuple[object, ...]:
        # The default would call __init__ with the formatted text alone.
        arguments = (self.rule, self.direction, self.message, self.expected)
        return (type(self), (*arguments, self.problem), self.__dict__ or None)


class ASGIProtocolWarning(UserWarning):
    """A violation reported as a warning, with the same text as the error.

    :func:`~asgiref_core.validate.validator` issues these in ``"warn"`` mode
    and lets the conversation go on.
    """


def _format(
    rule: str, direction: str, message: object, expected: str, problem: str
) -> str:
    origin = _ORIGINS.get(direction, direction)
    if direction in ("send", "receive"):
        kind = message.get("type") if isinstance(message, Mapping) else None
        origin += f" {kind!r} message" if isinstance(kind, str) else " message"
    text = f"{origin}: {problem}; expected {expected} [rule {rule}]"
    if direction == "return":
        return text
    label = "scope" if direction == "scope" else "message"
    return f"{text}\n  offending {label}: {abbreviate(message)}"


def abbreviate(value: object, depth: int = 0) -> str:
    """``repr(value)``, with long strings and large containers shortened.

    Only the failure path calls this, so it favours clarity over speed.
    """
    if isinstance(value, bytes | bytearray | memoryview | str):
        return _abbreviate_text(value)
    if isinstance(value, Mapping | list | tuple) and depth >= _DEPTH:
        return f"<{type(value).__name__} of {len(value)} items>"
    if isinstance(value, Mapping):
        parts = [
            f"{abbreviate(key, depth + 1)}: {abbreviate(item, depth + 1)}"
            for key, item in list(value.items())[:_ITEMS]
        ]
        if len(value) > _ITEMS:
            parts.append(f"... ({len(value) - _ITEMS} more items)")
        text = "{" + ", ".join(parts) + "}"
        return text if type(value) is dict else f"{type(value).__name__}({text})"
    if isinstance(value, list | tuple):
        parts = [abbreviate(item, depth + 1) for item in value[:_ITEMS]]
        if len(value) > _ITEMS:
            parts.append(f"... ({len(value) - _ITEMS} more items)")
        if isinstance(value, list):
            return "[" + ", ".join(parts) + "]"
        return "(" + ", ".join(parts) + (",)" if len(parts) == 1 else ")")
    try:
        text = repr(value)
    except Exception as error:  # a broken repr is shown, never raised
        return f"<{type(value).__name__} object; repr() failed: {error!r}>"
    if len(text) > _LONG:
        return f"{text[:_KEPT]}... ({len(text)} characters of repr)"
    return text


def _abbreviate_text(value: bytes | bytearray | memoryview | str) -> str:
    if isinstance(value, memoryview):
        size = value.nbytes
        if size > _LONG:
            return f"<memoryview of {size} bytes>"
        return f"<memoryview of {value.tobytes()!r}>"
    if len(value) <= _LONG:
        return repr(value)
    unit = "characters" if isinstance(value, str) else "bytes"
    return f"{value[:_KEPT]!r}... ({len(value)} {unit})"
