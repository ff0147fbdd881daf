"""What the two sides of one :class:`~asgiref_core.wsgi.AsgiToWsgi` request hand over.

The application's side runs on the adapter's loop, the WSGI server's side on
the server's thread, and neither touches the other's objects. Loop to WSGI
thread: lists of :data:`Entry` on a :class:`~queue.SimpleQueue`, a list per
batch, so everything the application sends in one go costs one wake-up. WSGI
thread to loop: callbacks scheduled with :func:`call_soon`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from asgiref_core.typing import HTTPDisconnectEvent, HTTPRequestEvent

    #: WSGI thread -> loop: a request body chunk, or the client having left.
    BodyEvent = HTTPRequestEvent | HTTPDisconnectEvent

__all__: list[str] = []


class Disconnected(OSError):
    """What ``send()`` raises once the WSGI server has given up on the response.

    An :class:`OSError`, as ASGI spec 2.4 asks of a send on a closed connection.
    """

    def __init__(
        self,
        message: str = "the client disconnected: the WSGI server closed the response",
    ) -> None:
        # The message has a default so that the two places that raise it agree,
        # and a parameter so that copy and pickle can rebuild the exception.
        super().__init__(message)


class ReadRequest:
    """Loop -> WSGI thread: the application waits for the next request body chunk."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "READ"


#: The only :class:`ReadRequest`: it carries nothing, so one instance serves all.
READ: Final = ReadRequest()


class Start:
    """Loop -> WSGI thread: the response's status line and headers."""

    __slots__ = ("headers", "status")

    def __init__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = headers


class Ack:
    """Loop -> WSGI thread: report back once the bytes before this were taken."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class Done:
    """Loop -> WSGI thread: the application returned (``error`` None) or raised."""

    __slots__ = ("error", "response_complete")

    def __init__(self, error: BaseException | None, response_complete: bool) -> None:
        self.error = error
        self.response_complete = response_complete


#: Loop -> WSGI thread: a piece of the response body, or one of the above.
Entry = bytes | Start | Ack | Done | ReadRequest


def disconnect_event() -> HTTPDisconnectEvent:
    # A new dict each time: the application owns the messages it receives.
    return {"type": "http.disconnect"}


def call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any
) -> None:
    """Schedule ``callback`` on ``loop`` from another thread, unless it has closed."""
    # A closed loop raises RuntimeError; it belonged to a closed adapter, which
    # has already told every request, so there is nobody left to tell.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
