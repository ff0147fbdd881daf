"""One request as the ASGI application sees it: ``receive`` and ``send``, on the loop.

Everything here runs on the adapter's loop and never blocks on the WSGI
thread. What the application sends is collected in an outbox and handed over
in one batch when it next waits for something or returns, so a small response
wakes the WSGI thread once. Response bytes handed over and not yet taken by
the WSGI server are counted, and ``send()`` waits while there are
too many of them, so an endless stream to a slow client holds a few
hundred kilobytes, not everything produced so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from asgiref_core._asgi_to_wsgi_handover import (
    READ,
    Ack,
    Disconnected,
    Done,
    Start,
    disconnect_event,
)

if TYPE_CHECKING:
    import asyncio
    from queue import SimpleQueue

    from asgiref_core._asgi_to_wsgi_handover import BodyEvent, Entry
    from asgiref_core.typing import ASGIReceiveEvent, HTTPScope

__all__: list[str] = []

#: Response bytes in flight after which the loop asks the WSGI thread to report
#: back once the server has taken them.
_CHECKPOINT: Final = 64 * 1024
#: Response bytes in flight (handed over, not yet taken by the server) at which
#: ``send()`` waits. Acknowledged in checkpoint-sized steps, so the application
#: resumes while the rest is still being written.
_HIGH_WATER: Final = 4 * _CHECKPOINT

_STATUS_LINES: Final = {
    status.value: f"{status.value} {status.phrase}" for status in HTTPStatus
}

#: Headers PEP 3333 forbids applications to set: the WSGI server owns the
#: connection, so these are dropped from the application's response.
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)


class AppSide:
    """The application's ``receive`` and ``send`` for one request.

    The WSGI thread reaches it only through ``call_soon_threadsafe``: its
    :meth:`deliver`, :meth:`acknowledge`, :meth:`client_gone` and
    :meth:`cancel`.
    """

    __slots__ = (
        "body_done",
        "client_disconnected",
        "drain",
        "flush_pending",
        "inbox",
        "loop",
        "outbox",
        "queue",
        "read_requested",
        "response_complete",
        "response_started",
        "scope",
        "since_checkpoint",
        "task",
        "unacked",
        "waiter",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scope: HTTPScope,
        queue: SimpleQueue[list[Entry]],
        first_message: BodyEvent,
    ) -> None:
        self.loop = loop
        self.scope = scope
        #: Where batches of entries go to the WSGI thread.
        self.queue = queue
        self.task: asyncio.Task[None] | None = None
        # Receiving: a message read before anybody asked, and the receive()
        # waiting for one.
        self.inbox: ASGIReceiveEvent | None = first_message
        self.waiter: asyncio.Future[ASGIReceiveEvent] | None = None
        self.read_requested = False
        self.body_done = False
        self.client_disconnected = False
        self._note_body_progress(first_message)
        # Sending: entries not handed over yet, and whether a flush is due.
        self.outbox: list[Entry] = []
        self.flush_pending = False
        self.response_started = False
        self.response_complete = False
        # Flow control: bytes the server has not taken, bytes since the last
        # Ack entry, and what send() waits on while unacked is too high.
        self.unacked = 0
        self.since_checkpoint = 0
        self.drain: asyncio.Future[None] | None = None

    def _note_body_progress(self, message: BodyEvent) -> None:
        if message["type"] == "http.disconnect":
            self.client_disconnected = self.body_done = True
        elif not message["more_body"]:
            self.body_done = True

    # --- the application's receive and send -----------------------------------

    async def receive(self) -> ASGIReceiveEvent:
        message = self.inbox
        if message is not None:
            self.inbox = None
            return message
        if self.client_disconnected or self.response_complete:
            # As ASGI servers do once the response is out: nothing more will
            # arrive on this request.
            return disconnect_event()
        if self.waiter is not None:
            msg = (
                "receive() was called while an earlier receive() call on the "
                "same request was still waiting; await one receive() at a time"
            )
            raise RuntimeError(msg)
        waiter: asyncio.Future[ASGIReceiveEvent] = self.loop.create_future()
        self.waiter = waiter
        if not self.body_done and not self.read_requested:
            self.read_requested = True
            self.outbox.append(READ)
            self.flush()
        # Past the end of the body the waiter stays unanswered until the
        # response completes or the client leaves: then comes http.disconnect.
        try:
            return await waiter
        finally:
            self.waiter = None

    async def send(self, message: Mapping[str, Any]) -> None:
        if self.client_disconnected:
            raise Disconnected
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            msg = (
                f"ASGI messages must be dicts with a 'type' key (got {message!r}); "
                "send {'type': 'http.response.start', ...} and then "
                "{'type': 'http.response.body', ...}"
            )
            raise TypeError(msg) from None
        # The body first: it is what a streaming response sends most often.
        if (
            kind == "http.response.body"
            and self.response_started
            and not self.response_complete
        ):
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = _body_bytes(body)
            if body:
                size = len(body)
                self.outbox.append(body)
                self.unacked += size
                self.since_checkpoint += size
                if self.since_checkpoint >= _CHECKPOINT:
                    self.outbox.append(Ack(self.since_checkpoint))
                    self.since_checkpoint = 0
            if not message.get("more_body", False):
                self.response_complete = True
                self._answer_waiter(disconnect_event())
            elif self.unacked >= _HIGH_WATER:
                await self._wait_for_server()
                return
            self.schedule_flush()
            return
        if kind == "http.response.start" and not self.response_started:
            self.outbox.append(_response_start(message))
            self.response_started = True
            self.schedule_flush()
            return
        raise self._out_of_order(kind, message)

    def _out_of_order(self, kind: object, message: Mapping[str, Any]) -> Exception:
        if kind == "http.response.body" and not self.response_started:
            problem = "before 'http.response.start'"
            fix = "send 'http.response.start' with the status and headers first"
        elif (
            kind in ("http.response.body", "http.response.start")
            and self.response_complete
        ):
            problem = "after the response was complete"
            fix = (
                "send nothing after the 'http.response.body' message whose "
                "more_body is False"
            )
        elif kind == "http.response.start":
            problem = "twice"
            fix = "send 'http.response.start' once, then the body"
        else:
            problem = "on an HTTP connection"
            fix = "send 'http.response.start' and 'http.response.body' messages only"
        msg = f"ASGI message type {kind!r} was sent {problem} ({message!r}); {fix}"
        return RuntimeError(msg)

    async def _wait_for_server(self) -> None:
        drain: asyncio.Future[None] = self.loop.create_future()
        self.drain = drain
        self.flush()
        try:
            await drain
        finally:
            self.drain = None
        if self.client_disconnected:
            raise Disconnected

    def _answer_waiter(self, message: ASGIReceiveEvent) -> bool:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
            return True
        return False

    # --- handing entries to the WSGI thread ---------------------------------------

    def schedule_flush(self) -> None:
        # Deferred to when the application next waits or returns, so that
        # everything it sends in one go travels in one batch.
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_pending = False
        self.flush()

    def flush(self) -> None:
        if self.outbox:
            self.queue.put(self.outbox)
            self.outbox = []

    def finish(self, error: BaseException | None) -> None:
        """The application returned (``error`` None) or raised ``error``."""
        self.outbox.append(Done(error, self.response_complete))
        self.flush()

    # --- called from the WSGI thread, through call_soon_threadsafe -----------------

    def deliver(self, message: BodyEvent) -> None:
        """A body chunk (or http.disconnect) the WSGI thread has read."""
        self.read_requested = False
        self._note_body_progress(message)
        if self.response_complete:
            return
        if not self._answer_waiter(message):
            # Its receive() was cancelled meanwhile: keep it for the next one.
            self.inbox = message

    def acknowledge(self, size: int) -> None:
        """The WSGI server took ``size`` more bytes of the response."""
        self.unacked -= size
        drain = self.drain
        if drain is not None and not drain.done() and self.unacked < _HIGH_WATER:
            drain.set_result(None)

    def client_gone(self) -> None:
        """The WSGI server closed the response before the application finished."""
        self.client_disconnected = True
        self.inbox = None
        self._answer_waiter(disconnect_event())
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _body_bytes(body: object) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    msg = (
        f"'http.response.body' message: 'body' must be bytes (got {body!r}); "
        "encode text before sending it"
    )
    raise TypeError(msg)


def _response_start(message: Mapping[str, Any]) -> Start:
    """The WSGI status line and headers of an ``http.response.start`` message."""
    status = message.get("status")
    if type(status) is not int or not 100 <= status <= 999:
        msg = (
            f"'http.response.start' message: 'status' must be an int from 100 to "
            f"999 (got {status!r}); pass the HTTP status code, such as 200"
        )
        raise TypeError(msg) if type(status) is not int else ValueError(msg)
    line = _STATUS_LINES.get(status) or f"{status} Unknown"
    headers: list[tuple[str, str]] = []
    try:
        for name, value in message.get("headers", ()):
            if name.lower() not in _HOP_BY_HOP:
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
    except (AttributeError, TypeError, ValueError):
        msg = (
            "'http.response.start' message: 'headers' must be (name, value) "
            f"pairs of bytes (got {message.get('headers')!r}); encode header "
            "names and values, such as (b'content-type', b'text/plain')"
        )
        raise TypeError(msg) from None
    return Start(line, headers)
