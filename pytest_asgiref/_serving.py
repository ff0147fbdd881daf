"""One test's served application: the app, its loop, its state and its scopes.

Every communicator a fixture builds goes through :class:`Serving`, which
applies the marker's ``scope`` overrides and the ``pytest_asgiref_scope``
hook, passes the lifespan state on, sets the validation mode, and keeps the
communicators so that teardown can close them and report what the test never
saw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from asgiref_core.testing import (
    ApplicationCommunicator,
    ValidateMode,
    http_scope,
    websocket_scope,
)
from asgiref_core.validate import ASGIProtocolError
from pytest_asgiref._loops import ServingLoop
from pytest_asgiref._markers import LoadedApp

__all__ = ["Serving", "validate_mode"]

C = TypeVar("C", bound=ApplicationCommunicator)

# The scope-shaping keyword arguments each builder accepts.
_HTTP_SCOPE_ARGUMENTS = frozenset(
    {
        "headers",
        "query_string",
        "scheme",
        "http_version",
        "root_path",
        "client",
        "server",
        "state",
        "extensions",
        "scope",
    }
)
_WEBSOCKET_SCOPE_ARGUMENTS = _HTTP_SCOPE_ARGUMENTS | {"subprotocols"}


def validate_mode(setting: str) -> ValidateMode:
    """The communicators' ``validate=`` value for an ``asgi_validate`` setting."""
    return False if setting == "off" else setting  # type: ignore[return-value]


@dataclass(slots=True)
class Serving:
    """What the fixtures of one test share."""

    request: pytest.FixtureRequest
    app: LoadedApp
    loop: ServingLoop
    state: dict[str, Any] | None
    validate: ValidateMode
    opened: list[tuple[str, ApplicationCommunicator]] = field(default_factory=list)
    _adjusts: bool = False

    def __post_init__(self) -> None:
        hook = self.request.node.ihook.pytest_asgiref_scope
        self._adjusts = bool(self.app.choice.scope) or bool(hook.get_hookimpls())

    def open(
        self,
        fixture: str,
        factory: Callable[..., C],
        arguments: dict[str, Any],
        *,
        kind: str | None,
        track: bool = True,
    ) -> C:
        """Build a communicator with the test's defaults (and track it).

        ``kind`` is ``"http"`` or ``"websocket"`` for a communicator whose
        scope the fixture shapes, ``None`` for one given a scope whole.
        """
        arguments.setdefault("validate", self.validate)
        if kind is not None:
            if self.state is not None and "state" not in arguments:
                arguments["state"] = self.state
            if self._adjusts:
                arguments["scope"] = self.adjusted_scope(kind, arguments)
        communicator = factory(self.app.asgi, **arguments)
        if track:
            self.opened.append((fixture, communicator))
        return communicator

    def track(self, fixture: str, communicator: ApplicationCommunicator) -> None:
        """Close ``communicator`` at teardown."""
        self.opened.append((fixture, communicator))

    def adjusted_scope(self, kind: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The complete scope for ``arguments``, after overrides and the hook."""
        if kind == "http":
            allowed = _HTTP_SCOPE_ARGUMENTS
            shaping = {k: v for k, v in arguments.items() if k in allowed}
            scope = http_scope(
                arguments.get("method", "GET"), arguments.get("path", "/"), **shaping
            )
        else:
            allowed = _WEBSOCKET_SCOPE_ARGUMENTS
            shaping = {k: v for k, v in arguments.items() if k in allowed}
            scope = websocket_scope(arguments.get("path", "/"), **shaping)
        user = arguments.get("scope")
        scope.update(self.app.choice.scope)
        if user:
            # What the test passed wins over the marker's defaults.
            scope.update(user)
        if self._adjusts:
            self.request.node.ihook.pytest_asgiref_scope(
                scope=scope, request=self.request
            )
        return scope

    async def close_all(self) -> list[str]:
        """Close every communicator; describe the failures the test never saw."""
        problems: list[str] = []
        opened, self.opened = self.opened, []
        for fixture, communicator in opened:
            try:
                await communicator.aclose(repeat_seen=False)
            except ASGIProtocolError as violation:
                problems.append(
                    f"{fixture}: the application broke the ASGI protocol after "
                    f"the test's last read:\n{_with_notes(violation)}"
                )
            except Exception as error:
                problems.append(
                    f"{fixture}: the application raised after the test's last "
                    f"read: {type(error).__name__}: {_with_notes(error)}"
                )
        return problems


def _with_notes(error: BaseException) -> str:
    """``str(error)`` and its notes (a violation's transcript is one), as a
    traceback would show them."""
    notes: list[str] = getattr(error, "__notes__", [])
    return "\n".join([str(error), *notes])
