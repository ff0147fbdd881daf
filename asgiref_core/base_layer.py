"""The base class channel layers build on: capacities, name rules, errors.

A channel layer carries messages between parts of an application (or between
processes) over named channels, and fans them out to named groups of
channels. This module holds what every layer shares and nothing that depends
on where messages are stored: per-channel capacities matched by glob,
channel and group name validation, and the exceptions a layer raises. Its
methods and attributes match Django Channels' ``BaseChannelLayer``, so a
layer written for Channels can switch bases without changes.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol

__all__ = ["BaseChannelLayer", "ChannelFull"]


class ChannelFull(Exception):
    """A send found the channel holding as many messages as its capacity.

    The message was not stored. ``channel`` names the full channel (``None``
    when the layer does not say).
    """

    def __init__(self, channel: str | None = None, capacity: int | None = None) -> None:
        self.channel = channel
        self.capacity = capacity
        if channel is None:
            super().__init__()
        elif capacity is None:
            super().__init__(f"channel {channel!r} is full")
        else:
            super().__init__(
                f"channel {channel!r} is full: it holds {capacity} messages, its "
                "capacity; receive from it, or raise 'capacity' or "
                "'channel_capacity' for it"
            )


# The class attribute of the same name on BaseChannelLayer refers to this.
_ChannelFull = ChannelFull

# Django Channels' own ChannelFull -> a class deriving from both it and ours.
_bilingual: dict[type[BaseException], type[ChannelFull]] = {}


def _channel_full(channel: str, capacity: int) -> ChannelFull:
    """The :class:`ChannelFull` a layer raises, catchable as Channels' too.

    Code written for Django Channels catches ``channels.exceptions.ChannelFull``.
    When Channels is loaded (as it is whenever it built the layer from its
    settings), the error also derives from that class. Channels is never
    imported here: only a module already loaded is looked at.
    """
    exceptions = sys.modules.get("channels.exceptions")
    peer = getattr(exceptions, "ChannelFull", None)
    if not (isinstance(peer, type) and issubclass(peer, Exception)):
        return ChannelFull(channel, capacity)
    bilingual = _bilingual.get(peer)
    if bilingual is None:
        bilingual = _bilingual[peer] = type(
            "ChannelFull", (ChannelFull, peer), {"__module__": __name__}
        )
    return bilingual(channel, capacity)


class _Pattern(Protocol):
    """A compiled regular expression, or anything with its ``match``."""

    def match(self, string: str, /) -> Any: ...


def _describe(value: object) -> str:
    """``repr`` of a value, cut short so an enormous name stays readable."""
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:117]}..."


def _require_positive(option: str, value: object, *, integer: bool) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    msg = (
        f"channel layer option {option!r} must be a positive "
        f"{'int' if integer else 'number'} (got {_describe(value)})"
    )
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(msg)
    if not value > 0:  # type: ignore[operator]
        raise ValueError(msg)


class BaseChannelLayer:
    """Shared machinery for channel layers; the API methods are left to subclasses.

    ``expiry`` is how many seconds an unreceived message lives. ``capacity``
    is how many messages a channel may hold before sends to it raise
    :class:`ChannelFull`. ``channel_capacity`` overrides ``capacity`` for
    channels whose name matches: it maps glob patterns (``"http.*"``) or
    compiled regular expressions to capacities, and the first match, in
    order, wins.
    """

    MAX_NAME_LENGTH: ClassVar[int] = 100

    #: Channel names: ASCII letters, digits, ``-``, ``_`` and ``.``, with an
    #: optional process-local part after a ``!``.
    channel_name_regex: ClassVar[re.Pattern[str]] = re.compile(
        r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$"
    )
    #: Group names: ASCII letters, digits, ``-``, ``_`` and ``.``.
    group_name_regex: ClassVar[re.Pattern[str]] = re.compile(r"^[a-zA-Z\d\-_.]+$")
    invalid_name_error: ClassVar[str] = (
        "{} name must be a valid unicode string "
        f"with length < {MAX_NAME_LENGTH} "
        "containing only ASCII alphanumerics, hyphens, underscores, or periods."
    )

    #: The optional parts of the channel layer specification a layer provides
    #: (``"groups"``, ``"flush"``).
    extensions: ClassVar[list[str]] = []

    # Reachable from any layer instance, as in the first channel layer API.
    ChannelFull: ClassVar[type[_ChannelFull]] = _ChannelFull

    def __init__(
        self,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[str | _Pattern, int]
        | Iterable[tuple[str | _Pattern, int]]
        | None = None,
    ) -> None:
        _require_positive("expiry", expiry, integer=False)
        _require_positive("capacity", capacity, integer=True)
        self.expiry = expiry
        self.capacity = capacity
        self.channel_capacity: list[tuple[_Pattern, int]] = self.compile_capacities(
            channel_capacity or {}
        )

    # -- capacities ---------------------------------------------------------

    def compile_capacities(
        self,
        channel_capacity: Mapping[str | _Pattern, int]
        | Iterable[tuple[str | _Pattern, int]],
    ) -> list[tuple[_Pattern, int]]:
        """Turn ``{pattern: capacity}`` into the ordered ``(regex, capacity)`` list.

        A string is a glob (``fnmatch`` rules); anything with a ``match``
        method, such as a compiled regex, is used as it is.
        """
        pairs = (
            channel_capacity.items()
            if isinstance(channel_capacity, Mapping)
            else channel_capacity
        )
        compiled: list[tuple[_Pattern, int]] = []
        for pattern, capacity in pairs:
            if isinstance(pattern, str):
                compiled.append((re.compile(fnmatch.translate(pattern)), capacity))
            elif callable(getattr(pattern, "match", None)):
                compiled.append((pattern, capacity))
            else:
                msg = (
                    f"channel_capacity key {_describe(pattern)} is neither a glob "
                    "string nor a compiled regular expression; use a pattern such "
                    "as 'http.request.*' or re.compile(...)"
                )
                raise TypeError(msg)
            if (
                not isinstance(capacity, int)
                or isinstance(capacity, bool)
                or capacity < 1
            ):
                msg = (
                    f"channel_capacity[{_describe(pattern)}] must be a positive int "
                    f"(got {_describe(capacity)})"
                )
                raise TypeError(msg)
        return compiled

    def get_capacity(self, channel: str) -> int:
        """``channel``'s capacity: the first matching override, else ``capacity``."""
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity

    # -- names --------------------------------------------------------------

    def match_type_and_length(self, name: object) -> bool:
        """Whether ``name`` is a string shorter than ``MAX_NAME_LENGTH``."""
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def _invalid_name(self, kind: str, name: object, why: str) -> TypeError:
        return TypeError(
            f"{self.invalid_name_error.format(kind)} Got {_describe(name)}: {why}."
        )

    def require_valid_channel_name(self, name: object, receive: bool = False) -> bool:
        """Return ``True`` for a valid channel name; raise ``TypeError`` otherwise.

        With ``receive=True`` a process-local name must end at its ``!``,
        the form a layer receives on for a whole process.
        """
        if not isinstance(name, str):
            raise self._invalid_name(
                "Channel", name, f"not a str but {type(name).__name__}"
            )
        if len(name) >= self.MAX_NAME_LENGTH:
            raise self._invalid_name("Channel", name, f"{len(name)} characters long")
        if self.channel_name_regex.match(name) is None:
            raise self._invalid_name(
                "Channel", name, "it has a character outside that set"
            )
        if receive and "!" in name and not name.endswith("!"):
            local_part = _describe(self.non_local_name(name))
            msg = (
                "Specific channel names in receive() must end at the ! "
                f"(got {_describe(name)}; receive on {local_part})"
            )
            raise TypeError(msg)
        return True

    def require_valid_group_name(self, name: object) -> bool:
        """Return ``True`` for a valid group name; raise ``TypeError`` otherwise."""
        if not isinstance(name, str):
            raise self._invalid_name(
                "Group", name, f"not a str but {type(name).__name__}"
            )
        if len(name) >= self.MAX_NAME_LENGTH:
            raise self._invalid_name("Group", name, f"{len(name)} characters long")
        if self.group_name_regex.match(name) is None:
            raise self._invalid_name(
                "Group", name, "it has a character outside that set"
            )
        return True

    def valid_channel_names(self, names: list[str], receive: bool = False) -> bool:
        """Validate a non-empty list of channel names."""
        if not isinstance(names, list) or not names:
            msg = (
                "names must be a non-empty list of channel names "
                f"(got {_describe(names)})"
            )
            raise TypeError(msg)
        for name in names:
            self.require_valid_channel_name(name, receive=receive)
        return True

    def valid_channel_name(self, channel_name: object, receive: bool = False) -> bool:
        """Deprecated spelling of :meth:`require_valid_channel_name`."""
        warnings.warn(
            "valid_channel_name() is deprecated; use require_valid_channel_name()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_channel_name(channel_name, receive=receive)

    def valid_group_name(self, group_name: object) -> bool:
        """Deprecated spelling of :meth:`require_valid_group_name`."""
        warnings.warn(
            "valid_group_name() is deprecated; use require_valid_group_name()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_group_name(group_name)

    def non_local_name(self, name: str) -> str:
        """The part of a channel name every process shares.

        For a process-local name (``"reply.abc!def"``) that is everything up
        to and including the ``!``; any other name is returned whole.
        """
        bang = name.find("!")
        return name if bang < 0 else name[: bang + 1]

    # -- the API subclasses provide ------------------------------------------

    def _not_implemented(self, method: str, extension: str = "") -> NotImplementedError:
        part = f"the {extension!r} extension" if extension else "the core API"
        return NotImplementedError(
            f"{type(self).__name__} does not implement {method}() ({part}); "
            "channel layers override it"
        )

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Put ``message`` on ``channel``."""
        raise self._not_implemented("send")

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for, remove and return the next message on ``channel``."""
        raise self._not_implemented("receive")

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A fresh channel name only this process receives on."""
        raise self._not_implemented("new_channel")

    async def flush(self) -> None:
        """Drop every message and group (the ``flush`` extension)."""
        raise self._not_implemented("flush", "flush")

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group`` (the ``groups`` extension)."""
        raise self._not_implemented("group_add", "groups")

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group`` (the ``groups`` extension)."""
        raise self._not_implemented("group_discard", "groups")

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send ``message`` to every channel in ``group`` (the ``groups`` extension)."""
        raise self._not_implemented("group_send", "groups")

    async def close(self) -> None:
        """Release what the layer holds open; the base layer holds nothing."""
