"""The application's lifespan conversation, run on an adapter's loop for its life.

Startup decides whether the adapter serves requests; shutdown happens when
the adapter is closed. The outcome of startup goes to a ``settle`` callback;
what goes wrong later is kept in :attr:`Lifespan.problem` for ``close()``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from asgiref_core.typing import ASGI3Application, ASGIReceiveEvent, LifespanScope

__all__: list[str] = []


class Lifespan:
    """One application's lifespan, from ``lifespan.startup`` to its end.

    An application that raises or returns before it has received
    ``lifespan.startup`` does not support lifespan (servers must then carry on
    without it, as the ASGI spec says); one that raises after receiving it has
    failed to start, and so has one that sends ``lifespan.startup.failed``.

    ``settle(problem, state)`` is called once, on the loop, when startup is
    decided: ``problem`` None means requests may be served, with ``state``
    (None when lifespan is unsupported) copied into their scopes.
    """

    def __init__(
        self,
        application: ASGI3Application,
        loop: asyncio.AbstractEventLoop,
        settle: Callable[[str | None, dict[str, Any] | None], None],
    ) -> None:
        self.application = application
        self.settle = settle
        self.state: dict[str, Any] = {}
        self.received_startup = False
        self.startup_answered = False
        self.startup_completed = False
        self.shutdown_wanted: asyncio.Future[None] = loop.create_future()
        self.shutdown_received = False
        self.shutdown_answered = False
        #: Set once shutdown was answered or the lifespan coroutine ended.
        self.over = threading.Event()
        #: What went wrong after startup completed, for ``close()`` to report.
        self.problem: str | None = None

    async def run(self) -> None:
        scope: LifespanScope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.application(scope, self.receive, self.send)
        except BaseException as error:  # reported below, never lost
            self._ended(error)
        else:
            self._ended(None)
        finally:
            self.over.set()

    def _ended(self, error: BaseException | None) -> None:
        # Cancellation is the adapter closing, not the application failing.
        cancelled = isinstance(error, asyncio.CancelledError)
        if not self.startup_answered:
            self.startup_answered = True
            if error is not None and self.received_startup and not cancelled:
                self.settle(f"its lifespan startup raised {error!r}", None)
            else:
                # Unsupported: requests are served without lifespan state.
                self.settle(None, None)
        elif error is not None and self.startup_completed and not cancelled:
            when = "during shutdown" if self.shutdown_received else "after startup"
            self.problem = f"the application's lifespan raised {error!r} {when}"

    async def receive(self) -> ASGIReceiveEvent:
        if not self.received_startup:
            self.received_startup = True
            return {"type": "lifespan.startup"}
        if self.shutdown_received:
            # Nothing comes after shutdown; the loop stopping ends this wait.
            await self.shutdown_wanted.get_loop().create_future()
        await self.shutdown_wanted
        self.shutdown_received = True
        return {"type": "lifespan.shutdown"}

    async def send(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type") if isinstance(message, Mapping) else None
        if self.received_startup and not self.startup_answered:
            if kind == "lifespan.startup.complete":
                self.startup_answered = self.startup_completed = True
                self.settle(None, self.state)
                return
            if kind == "lifespan.startup.failed":
                self.startup_answered = True
                reason = message.get("message", "")
                self.settle(
                    f"its lifespan startup failed with message {reason!r}", None
                )
                return
            expected = "'lifespan.startup.complete' or 'lifespan.startup.failed'"
        elif self.shutdown_received and not self.shutdown_answered:
            if kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                self.shutdown_answered = True
                if kind == "lifespan.shutdown.failed":
                    reason = message.get("message", "")
                    self.problem = (
                        "the application's lifespan shutdown failed with "
                        f"message {reason!r}"
                    )
                self.over.set()
                return
            expected = "'lifespan.shutdown.complete' or 'lifespan.shutdown.failed'"
        elif not self.received_startup:
            expected = "nothing before receiving 'lifespan.startup'"
        else:
            expected = "nothing until 'lifespan.shutdown' is received"
        msg = f"unexpected lifespan message {message!r}; expected {expected}"
        raise RuntimeError(msg)

    def request_shutdown(self) -> None:
        """Called on the loop by ``close()``: answer the pending ``receive()``."""
        if not self.shutdown_wanted.done():
            self.shutdown_wanted.set_result(None)
