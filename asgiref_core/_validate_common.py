"""The conformance checker's base class and the field checks its subclasses share.

A :class:`Checker` follows one connection. Each message is dispatched on its
``type`` through a table of handlers, one per direction, kept on the class so
that a new conversation builds nothing; a handler checks the message's keys
and moves the connection's state on. A message that is fine costs a dict
lookup, a call and a few type checks, and allocates nothing: the common
checks are written out inline in the handlers, and the helpers here that
build text only run once something is known to be wrong.

Handlers advance the state in a ``finally`` clause, so that a violation leaves
the checker where the offending message would have left a lenient server. A
caller that reports the violation and carries on (the ``"warn"`` mode) then
gets one report per mistake instead of a cascade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, NoReturn, TypeAlias, TypeGuard, cast

from asgiref_core._validate_errors import ASGIProtocolError, abbreviate

__all__ = ["Checker"]

Message: TypeAlias = Mapping[str, object]
#: A message handler: a plain function taking the checker and the message.
Handler: TypeAlias = Callable[[Any, Message], None]
ScopeCheck: TypeAlias = Callable[[Message], None]

SEND = "send"
RECEIVE = "receive"
RETURN = "return"
SCOPE = "scope"


class _Missing:
    """Stands for a key a message does not have."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: object = _Missing()

HEADERS_EXPECTED = (
    "an iterable of [name, value] pairs of byte strings, "
    "such as [(b'content-type', b'text/plain')]"
)
BYTES_EXPECTED = "a byte string (bytes; bytearray and memoryview are not allowed)"
BOOL_EXPECTED = "True or False"


class Checker:
    """Follows one ASGI connection and checks every message against the spec.

    Build one with :func:`~asgiref_core.validate.check_scope`, which picks the
    subclass for the scope's type and checks the scope first. Then report each
    message the application got from ``receive`` to :meth:`received`, each one
    it passed to ``send`` to :meth:`sent`, and a normal return of the
    application to :meth:`returned`. Each of them raises
    :class:`~asgiref_core.validate.ASGIProtocolError` on a violation, after
    recording it in :attr:`violations`; the checker stays usable, so a caller
    may report the error and go on checking the rest of the conversation.

    This base class is the checker for scope types the specification does not
    define: it only checks that every message is a dict with a ``str``
    ``type``.

    .. attribute:: scope
       :type: Mapping[str, object]

       The connection scope the conversation belongs to.

    .. attribute:: violations
       :type: list[ASGIProtocolError]

       Every violation raised so far (scope problems included), oldest first.
    """

    scope: Mapping[str, object]
    violations: list[ASGIProtocolError]

    #: The scope type this checker follows; empty for the permissive base.
    _protocol: ClassVar[str] = ""
    #: The handlers by message type, one table per direction. They are class
    #: attributes, so that starting a conversation builds no tables.
    _on_receive: ClassVar[Mapping[str, Handler]] = {}
    _on_send: ClassVar[Mapping[str, Handler]] = {}
    #: The extension each extension message needs, by message type.
    _extension_of: ClassVar[Mapping[str, str]] = {}

    def __init__(self, scope: Mapping[str, object]) -> None:
        self.scope = scope
        self.violations = []
        self._extensions = extension_names(scope)

    def received(self, message: object) -> None:
        """Check ``message``, which the application got from ``receive``."""
        if type(message) is dict or isinstance(message, Mapping):
            kind = message.get("type")
            if type(kind) is str:
                handler = self._on_receive.get(kind)
                if handler is not None:
                    handler(self, message)
                    return
        self._dispatch_slowly(RECEIVE, message, self._on_receive)

    def sent(self, message: object) -> None:
        """Check ``message``, which the application passed to ``send``."""
        if type(message) is dict or isinstance(message, Mapping):
            kind = message.get("type")
            if type(kind) is str:
                handler = self._on_send.get(kind)
                if handler is not None:
                    handler(self, message)
                    return
        self._dispatch_slowly(SEND, message, self._on_send)

    def returned(self) -> None:
        """Check that the conversation may end here: the application returned."""

    # -- machinery ----------------------------------------------------------

    def _scope_checks(self) -> tuple[ScopeCheck, ...]:
        """The checks :meth:`_check_scope` runs; none for unknown scope types."""
        return ()

    def _check_scope(self) -> list[ASGIProtocolError]:
        """Run every scope check, record what fails, and return the failures."""
        found: list[ASGIProtocolError] = []
        for check in self._scope_checks():
            try:
                check(self.scope)
            except ASGIProtocolError as error:
                found.append(error)
        self.violations.extend(found)
        return found

    def _dispatch_slowly(
        self, direction: str, message: object, handlers: Mapping[str, Handler]
    ) -> None:
        # Anything but a dict with a plain str type ends up here: report what
        # is wrong, or dispatch a type that is a str subclass or unknown.
        if not isinstance(message, Mapping):
            problem = (
                f"the message must be a dict, not {type(message).__name__} "
                f"(got {abbreviate(message)})"
            )
            expected = "a dict with a 'type' key, such as {'type': 'http.request'}"
            self._fail("message.dict", direction, message, expected, problem)
        kind = message.get("type", MISSING)
        if not isinstance(kind, str):
            expected = "a str 'type' naming the event, such as 'http.request'"
            self._bad_field("message.type", direction, message, "type", kind, expected)
        handler = handlers.get(kind)
        if handler is not None:
            handler(self, message)
        elif self._protocol:
            self._unknown(direction, message, kind)

    def _unknown(self, direction: str, message: Message, kind: str) -> NoReturn:
        handlers = self._on_send if direction == SEND else self._on_receive
        needs = self._extension_of
        listed = [
            name
            for name in handlers
            if name not in needs or needs[name] in self._extensions
        ]
        if direction == SEND:
            problem = (
                f"{kind!r} is not a message an application may send on "
                f"{self._protocol!r} connections"
            )
        else:
            problem = (
                f"{kind!r} is not a message a server may deliver on "
                f"{self._protocol!r} connections"
            )
        expected = "one of " + ", ".join(repr(name) for name in listed)
        if direction == SEND:
            expected += (
                " (extension messages only when scope['extensions'] advertises them)"
            )
        rule = f"{self._protocol}.unknown_message"
        self._fail(rule, direction, message, expected, problem)

    def _fail(
        self,
        rule: str,
        direction: str,
        message: object,
        expected: str,
        problem: str,
    ) -> NoReturn:
        error = ASGIProtocolError(rule, direction, message, expected, problem)
        self.violations.append(error)
        raise error

    def _bad_field(
        self,
        rule: str,
        direction: str,
        message: Message,
        key: str,
        value: object,
        expected: str,
        wanted: str = "",
    ) -> NoReturn:
        """Report a missing key, or a key whose value has the wrong type."""
        if value is MISSING:
            problem = f"missing required key {key!r}"
        elif wanted:
            problem = f"{key!r} must be {wanted} (got {abbreviate(value)})"
        else:
            kind = type(value).__name__
            problem = f"{key!r} has the wrong type: {kind} {abbreviate(value)}"
        self._fail(rule, direction, message, expected, problem)

    def _check_status(self, rule: str, message: Message, expected: str) -> None:
        """Check the ``status`` of a message the application sends."""
        status = message.get("status", MISSING)
        if type(status) is not int and not is_int(status):
            self._bad_field(rule, SEND, message, "status", status, expected, "int")
        if not 100 <= status <= 599:
            problem = f"'status' must be from 100 to 599 (got {status!r})"
            self._fail(rule, SEND, message, expected, problem)

    def _check_headers(
        self,
        rule: str,
        message: Message,
        headers: object,
        expected: str = HEADERS_EXPECTED,
        forbidden: bytes = b"",
    ) -> None:
        """Check the header list of a message the application sends."""
        if headers is MISSING:
            self._bad_field(rule, SEND, message, "headers", headers, expected)
        problem = header_problem(headers, response=True, forbidden=forbidden)
        if problem is not None:
            self._fail(rule, SEND, message, expected, problem)

    def _not_advertised(self, message: Message, extension: str) -> NoReturn:
        kind = message.get("type")
        problem = (
            f"{kind!r} belongs to the {extension!r} extension, which the server "
            "did not advertise in scope['extensions']"
        )
        expected = (
            f"the message only when scope['extensions'] has an {extension!r} "
            "key; check for it before sending"
        )
        self._fail(f"{kind}.extension", SEND, message, expected, problem)


def extension_names(scope: Message) -> frozenset[str]:
    """The extension names the scope advertises; empty when it has none."""
    extensions = scope.get("extensions")
    if not isinstance(extensions, Mapping):
        return frozenset()
    return frozenset(name for name in extensions if isinstance(name, str))


def spec_version(scope: Message) -> tuple[int, ...] | None:
    """``scope["asgi"]["spec_version"]`` as numbers, or ``None`` if not given."""
    asgi = scope.get("asgi")
    version = asgi.get("spec_version") if isinstance(asgi, Mapping) else None
    if not isinstance(version, str):
        return None
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


def truthy(value: object) -> bool:
    """``bool(value)``, or ``False`` for an object whose truth raises."""
    try:
        return bool(value)
    except Exception:  # a broken __bool__ counts as false, as it was never True
        return False


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int (an :class:`~enum.IntEnum` too), not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def header_problem(
    headers: object, *, response: bool, forbidden: bytes = b""
) -> str | None:
    """What is wrong with an ASGI header list, or ``None`` when it is fine.

    Every entry must be a ``[name, value]`` pair of byte strings with a
    non-empty name. Headers an application sends (``response``) must also have
    no HTTP/2 pseudo headers (names starting with ``:``); a ``forbidden`` name
    is refused as well. Header case is not checked (see the interpretations
    in the validation reference: Django sends ``Content-Type``, and every
    server accepts it).

    A one-shot iterator (a generator, say) is not looked into, as reading it
    here would leave nothing for the server.
    """
    if type(headers) is list or type(headers) is tuple:
        items: Iterable[Any] = headers
    elif isinstance(headers, str | bytes | bytearray | memoryview | Mapping):
        return (
            f"the headers must be an iterable of [name, value] pairs, not "
            f"{type(headers).__name__} (got {abbreviate(headers)})"
        )
    else:
        try:
            items = cast("Iterable[Any]", headers)
            iterator = iter(items)
        except TypeError:
            return (
                f"the headers must be an iterable of [name, value] pairs "
                f"(got {type(headers).__name__} {abbreviate(headers)})"
            )
        if iterator is headers:
            return None
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            return (
                "each header must be a two-item [name, value] pair "
                f"(got {abbreviate(item)})"
            )
        if (type(name) is not bytes or type(value) is not bytes) and (
            not isinstance(name, bytes) or not isinstance(value, bytes)
        ):
            return (
                "header names and values must be bytes "
                f"(got {abbreviate(name)}: {abbreviate(value)})"
            )
        if not name:
            return f"header names must not be empty (got {abbreviate(item)})"
        if response:
            if name[0] == 58:  # b":"
                return f"pseudo headers such as {name!r} must not be sent"
            if name == forbidden:
                return f"the {name!r} header must not be sent here"
    return None


def iterable(value: object) -> bool:
    """Whether ``iter(value)`` works."""
    try:
        iter(cast("Iterable[object]", value))
    except TypeError:
        return False
    return True
