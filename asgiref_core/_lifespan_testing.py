"""``LifespanCommunicator``: run an application's startup and shutdown like a server.

The lifespan protocol has three outcomes per phase, and test harnesses tend to
get the unhappy ones wrong: an application that answers
``lifespan.startup.failed`` must fail promptly with its message (not hang or
time out), and one that raises on the lifespan scope, or returns at once,
simply does not support lifespan, which a server tolerates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from asgiref_core._communicator import ApplicationCommunicator, ValidateMode
from asgiref_core._scopes import lifespan_scope
from asgiref_core._sync_call import describe_callable
from asgiref_core._testing_errors import UnexpectedMessageError

__all__ = ["LifespanCommunicator", "LifespanFailedError", "LifespanOutcome"]


class LifespanFailedError(Exception):
    """A lifespan phase did not complete (raised by :meth:`LifespanOutcome.check`)."""

    def __init__(self, outcome: LifespanOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.describe())


class LifespanOutcome:
    """How one phase (``"startup"`` or ``"shutdown"``) of the lifespan went."""

    __slots__ = ("application", "error", "message", "phase", "status")

    def __init__(
        self,
        phase: str,
        status: str,
        *,
        message: str = "",
        error: BaseException | None = None,
        application: str = "",
    ) -> None:
        #: ``"startup"`` or ``"shutdown"``.
        self.phase = phase
        #: ``"complete"``, ``"failed"`` (the application said so) or
        #: ``"unsupported"`` (it raised on the lifespan scope, or returned
        #: without answering).
        self.status = status
        #: The ``message`` of a ``lifespan.<phase>.failed`` event.
        self.message = message
        #: What the application raised, if it raised.
        self.error = error
        self.application = application

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def supported(self) -> bool:
        return self.status != "unsupported"

    def __bool__(self) -> bool:
        return self.complete

    def check(self) -> LifespanOutcome:
        """Raise :class:`LifespanFailedError` if the application reported failure."""
        if self.failed:
            raise LifespanFailedError(self)
        return self

    def describe(self) -> str:
        who = f"the application {self.application}" if self.application else "it"
        if self.complete:
            return f"lifespan {self.phase} complete"
        if self.failed:
            said = f": {self.message}" if self.message else " (no message given)"
            return f"lifespan {self.phase} failed, as {who} reported{said}"
        if self.error is not None:
            return (
                f"lifespan not supported: {who} raised {self.error!r} on the "
                "lifespan scope"
            )
        return f"lifespan not supported: {who} returned without answering"

    def __repr__(self) -> str:
        return f"<LifespanOutcome {self.describe()}>"


class LifespanCommunicator(ApplicationCommunicator):
    """Drive ``application`` through the lifespan protocol.

    ``state`` is the dict the application fills in at startup; pass
    :attr:`state` on to request communicators (their ``state=`` argument),
    which copy it shallowly into each scope as a server does.

    As an async context manager it runs startup on entry (raising
    :class:`LifespanFailedError` if the application reports failure) and
    shutdown on exit.
    """

    _lean_queues = True

    def __init__(
        self,
        application: object,
        *,
        state: dict[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        validate: ValidateMode = True,
        cancel_on_timeout: bool = True,
        transcript_size: int = 20,
    ) -> None:
        built = lifespan_scope(state=state, scope=scope)
        super().__init__(
            application,
            built,
            cancel_on_timeout=cancel_on_timeout,
            validate=False,
            transcript_size=transcript_size,
        )
        self._start_validation(validate, trusted=scope is None)
        self.startup_outcome: LifespanOutcome | None = None
        self.shutdown_outcome: LifespanOutcome | None = None

    @property
    def state(self) -> dict[str, Any]:
        """The lifespan state namespace (the scope's ``state`` dict)."""
        state: dict[str, Any] = self.scope["state"]
        return state

    async def startup(self, timeout: float = 10) -> LifespanOutcome:
        """Send ``lifespan.startup`` and wait up to ``timeout`` for the answer."""
        if self.startup_outcome is not None:
            msg = "lifespan startup already ran; a lifespan starts up once"
            raise RuntimeError(msg)
        self.startup_outcome = await self._phase("startup", timeout)
        return self.startup_outcome

    async def shutdown(self, timeout: float = 10) -> LifespanOutcome:
        """Send ``lifespan.shutdown`` and wait up to ``timeout`` for the answer.

        Without a completed startup there is nothing to shut down, and the
        startup's outcome is returned again.
        """
        if self.shutdown_outcome is not None:
            return self.shutdown_outcome
        startup = self.startup_outcome
        if startup is None:
            msg = "lifespan shutdown before startup; call startup() first"
            raise RuntimeError(msg)
        if not startup.complete:
            return startup
        self.shutdown_outcome = await self._phase("shutdown", timeout)
        if self.shutdown_outcome.supported:
            # The application may now return; give it the same time to do so.
            await self._wait_for_task(self.future, timeout)
            await self.aclose()
        return self.shutdown_outcome

    async def __aenter__(self) -> LifespanCommunicator:
        (await self.startup()).check()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            outcome = await self.shutdown()
            if exc is None and outcome.phase == "shutdown":
                outcome.check()
        finally:
            await super().__aexit__(exc_type, exc, traceback)

    async def _phase(self, phase: str, timeout: float) -> LifespanOutcome:
        app = describe_callable(self.application)
        await self.send_input({"type": f"lifespan.{phase}"})
        message = await self._next_output(timeout)
        if message is None:
            future = self.future
            if future.done() and self.violation is None:
                # Raising or returning without a word both mean: no lifespan.
                error = None if future.cancelled() else future.exception()
                if phase == "startup" or error is not None:
                    return LifespanOutcome(
                        phase, "unsupported", error=error, application=app
                    )
            what = (
                f"'lifespan.{phase}.complete' or 'lifespan.{phase}.failed' "
                f"(lifespan {phase})"
            )
            await self._no_output(what, timeout)
        kind = message.get("type")
        if kind == f"lifespan.{phase}.complete":
            return LifespanOutcome(phase, "complete", application=app)
        if kind == f"lifespan.{phase}.failed":
            outcome = LifespanOutcome(
                phase, "failed", message=message.get("message") or "", application=app
            )
            # Frameworks often raise right after reporting the failure; keep
            # that error with the outcome (and off asyncio's "never retrieved"
            # log), now or once the application ends.
            self.future.add_done_callback(lambda task: _keep_error(task, outcome))
            return outcome
        raise UnexpectedMessageError(
            f"'lifespan.{phase}.complete' or 'lifespan.{phase}.failed'",
            message,
            where=f"LifespanCommunicator {phase}",
        )


def _keep_error(task: asyncio.Task[None], outcome: LifespanOutcome) -> None:
    if not task.cancelled():
        outcome.error = task.exception()
