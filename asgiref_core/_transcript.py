"""The bounded record of a conversation that communicators keep for error messages.

A failing protocol test is much easier to read when the error shows the last
few messages each side sent. Keeping that record must cost next to nothing on
the hot path, so an entry is one tuple appended to a bounded deque; all the
formatting happens only when an error message is built.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple

__all__ = ["FROM_APP", "TO_APP", "Transcript", "TranscriptEntry", "describe_message"]

#: Direction of a message the application took from ``receive()``.
TO_APP = "to app"
#: Direction of a message the application passed to ``send()``.
FROM_APP = "from app"

# Longest byte or text value shown whole in an error message; longer ones are
# cut, with their full length said, so a large body cannot flood the output.
_VALUE_LIMIT = 80


class TranscriptEntry(NamedTuple):
    """One message of a conversation, as the communicator saw it."""

    #: :func:`time.monotonic` when the message passed.
    at: float
    #: ``"to app"`` (taken by the application from ``receive()``) or
    #: ``"from app"`` (passed by the application to ``send()``).
    direction: str
    #: The message itself (not a copy).
    message: object


class Transcript:
    """The last ``size`` messages of one conversation, oldest first."""

    __slots__ = ("_entries", "size")

    def __init__(self, size: int = 20) -> None:
        if size < 1:
            msg = f"a transcript must keep at least one message (got size={size!r})"
            raise ValueError(msg)
        self.size = size
        self._entries: deque[tuple[float, str, object]] = deque(maxlen=size)

    def record(self, direction: str, message: object) -> None:
        # A plain tuple: building the named tuple costs more than the append,
        # and entries are read far less often than they are written.
        self._entries.append((time.monotonic(), direction, message))

    def entries(self) -> list[TranscriptEntry]:
        return [TranscriptEntry(*entry) for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def format(self, *, now: float | None = None, indent: str = "  ") -> str:
        """The entries as text, one per line, newest last, with their age."""
        return format_entries(self.entries(), now=now, indent=indent)


def format_entries(
    entries: Iterable[TranscriptEntry], *, now: float | None = None, indent: str = "  "
) -> str:
    if now is None:
        now = time.monotonic()
    lines = [
        f"{indent}{now - entry.at:6.3f}s ago  {entry.direction:<8}  "
        f"{describe_message(entry.message)}"
        for entry in entries
    ]
    return "\n".join(lines) if lines else f"{indent}(no messages yet)"


def describe_message(message: object) -> str:
    """A message's repr, with long byte and text values shortened."""
    if not isinstance(message, Mapping):
        return _short(message)
    items = ", ".join(f"{key!r}: {_short(value)}" for key, value in message.items())
    return "{" + items + "}"


def _short(value: object) -> str:
    if isinstance(value, bytes | bytearray | str) and len(value) > _VALUE_LIMIT:
        kind = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:_VALUE_LIMIT]!r}... ({len(value)} {kind})"
    text = repr(value)
    if len(text) > 4 * _VALUE_LIMIT:
        return f"{text[: 4 * _VALUE_LIMIT]}... (repr cut)"
    return text
