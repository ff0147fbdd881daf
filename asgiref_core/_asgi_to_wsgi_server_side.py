"""One request as the WSGI server sees it, run on the server's thread.

This side reads ``wsgi.input`` (the stream belongs to the server's thread, and
a blocking read on the shared loop would stall every other request), calls
``start_response`` and hands the response body to the server, while the
application runs on the adapter's loop behind an
:class:`~asgiref_core._asgi_to_wsgi_app_side.AppSide`. The body is read one
chunk at a time, when the application asks for it, except for the first
chunk: read before the application is scheduled, it makes the first
``receive()`` of a small request answer at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Final

from asgiref_core._asgi_to_wsgi_app_side import AppSide
from asgiref_core._asgi_to_wsgi_handover import (
    READ,
    Ack,
    Disconnected,
    Done,
    Start,
    call_soon,
    disconnect_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from wsgiref.types import StartResponse, WSGIEnvironment

    from asgiref_core._asgi_to_wsgi_handover import BodyEvent, Entry
    from asgiref_core.typing import HTTPScope

__all__: list[str] = []

#: Most bytes one read of ``wsgi.input`` asks for: the size of the request body
#: chunks, and of the largest body read before the application is scheduled.
_CHUNK: Final = 64 * 1024


class ServerSide:
    """The WSGI side of one request: the body's reader and the response's source.

    Creating it reads the first body chunk and creates the request's
    :class:`AppSide` (:attr:`app_side`) for the loop to run.
    """

    __slots__ = (
        "app_side",
        "disconnect_timeout",
        "finished",
        "loop",
        "pending",
        "queue",
        "read",
        "remaining",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scope: HTTPScope,
        environ: WSGIEnvironment,
        content_length: int | None,
        disconnect_timeout: float,
    ) -> None:
        self.loop = loop
        self.disconnect_timeout = disconnect_timeout
        self.queue: SimpleQueue[list[Entry]] = SimpleQueue()
        #: Entries taken off the queue and not yet dealt with.
        self.pending: deque[Entry] = deque()
        self.read: Callable[[int], bytes] | None = None
        #: Body bytes still to read; None when the stream ends by itself.
        self.remaining: int | None = None
        #: The application's outcome has been dealt with: nothing more to wait for.
        self.finished = False
        first_message = self._first_message(environ, content_length)
        self.app_side = AppSide(loop, scope, self.queue, first_message)

    # --- the request body ---------------------------------------------------

    def _first_message(self, environ: WSGIEnvironment, length: int | None) -> BodyEvent:
        """Read the start of the body here, before the application is scheduled.

        One read: for a small body it is normally all of it (it came in with
        the headers), so the application's first ``receive()`` needs no round
        trip. Without a length the body is empty unless the server says the
        stream ends by itself (``wsgi.input_terminated``): PEP 3333 forbids
        reading past the length.
        """
        if length is None and not environ.get("wsgi.input_terminated"):
            length = 0
        if length == 0:
            return {"type": "http.request", "body": b"", "more_body": False}
        try:
            stream = environ["wsgi.input"]
        except KeyError:
            msg = (
                "the WSGI environ has no 'wsgi.input' but the request has a body "
                f"(CONTENT_LENGTH {environ.get('CONTENT_LENGTH')!r}); the WSGI "
                "server must provide the body stream"
            )
            raise ValueError(msg) from None
        # read1() where the stream has it: it returns what has arrived instead
        # of waiting for a whole chunk, so a client that streams its body and
        # reads the response as it goes is never left waiting on this side.
        self.read = getattr(stream, "read1", None) or stream.read
        self.remaining = length
        return self._read_chunk()

    def _read_chunk(self) -> BodyEvent:
        read = self.read
        remaining = self.remaining
        if read is None or remaining == 0:
            return {"type": "http.request", "body": b"", "more_body": False}
        size = _CHUNK if remaining is None else min(_CHUNK, remaining)
        try:
            data = read(size)
        except (OSError, ValueError):
            # A reset connection, or a stream the server already closed.
            return disconnect_event()
        if type(data) is not bytes:
            data = bytes(data)
        if remaining is None:
            return {"type": "http.request", "body": data, "more_body": bool(data)}
        if not data:
            # The stream ended short of the announced length: the client left.
            return disconnect_event()
        remaining -= len(data)
        self.remaining = remaining
        return {"type": "http.request", "body": data, "more_body": remaining > 0}

    def serve_read(self) -> None:
        call_soon(self.loop, self.app_side.deliver, self._read_chunk())

    # --- the response ---------------------------------------------------------

    def next_entry(self, timeout: float | None = None) -> Entry | None:
        """The next entry from the loop; None if ``timeout`` passed first."""
        pending = self.pending
        if not pending:
            try:
                pending.extend(self.queue.get(timeout=timeout))
            except Empty:
                return None
        return pending.popleft()

    def respond(self, start_response: StartResponse) -> Iterable[bytes]:
        """Wait for the response to start, then hand it to the WSGI server."""
        try:
            while True:
                entry = self.next_entry()
                if type(entry) is Start:
                    break
                if entry is READ:
                    self.serve_read()
                elif type(entry) is Done:
                    self.finished = True
                    if entry.error is not None:
                        raise entry.error
                    msg = (
                        "the ASGI application returned without starting a "
                        "response; send an 'http.response.start' message and "
                        "then the body before returning"
                    )
                    raise RuntimeError(msg)
            start_response(entry.status, entry.headers)
        except BaseException:
            if not self.finished:
                self.abandon()
            raise
        pending = self.pending
        if pending:
            last = pending[-1]
            # All of it is here and nothing is left to do on this thread (a
            # read request would still have to be served): a list lets the
            # server set Content-Length.
            if (
                type(last) is Done
                and last.error is None
                and last.response_complete
                and READ not in pending
            ):
                self.finished = True
                return [entry for entry in pending if type(entry) is bytes]
        return ResponseBody(self)

    def outcome(self, done: Done) -> None:
        """Deal with how the application ended, once the response had started."""
        self.finished = True
        if done.error is not None:
            raise done.error
        if not done.response_complete:
            msg = (
                "the ASGI application returned before completing the response; "
                "its last 'http.response.body' message must have more_body False"
            )
            raise RuntimeError(msg)

    def abandon(self) -> None:
        """Tell the application the client is gone; wait for it to wind down.

        It gets ``disconnect_timeout`` seconds to notice (``send()`` raises,
        ``receive()`` answers ``http.disconnect``), then is cancelled and gets
        as long again. What it raises because of the disconnect is expected
        and dropped.
        """
        self.finished = True
        grace = self.disconnect_timeout
        call_soon(self.loop, self.app_side.client_gone)
        done = self._wait_done(grace)
        if done is None:
            call_soon(self.loop, self.app_side.cancel)
            done = self._wait_done(grace)
        if done is None:
            msg = (
                f"the ASGI application was still running {2 * grace:g}s after "
                "the WSGI server closed its response, despite being cancelled; "
                "it must return once send() raises OSError or receive() returns "
                "'http.disconnect'"
            )
            raise RuntimeError(msg)
        if done.error is not None and not caused_by_disconnect(done.error):
            raise done.error

    def _wait_done(self, timeout: float) -> Done | None:
        deadline = time.monotonic() + timeout
        while True:
            entry = self.next_entry(max(deadline - time.monotonic(), 0.0))
            if entry is None:
                return None
            # Body, checkpoints and read requests have no taker any more.
            if type(entry) is Done:
                return entry


class ResponseBody:
    """The iterable given to the WSGI server: the body as the application sends it.

    The server closing it before the end is how a WSGI application learns that
    the client went away; the application hears of it through its
    ``send()``/``receive()``.
    """

    __slots__ = ("_server_side",)

    def __init__(self, server_side: ServerSide) -> None:
        self._server_side = server_side

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        server_side = self._server_side
        while not server_side.finished:
            entry = server_side.next_entry()
            if type(entry) is bytes:
                return entry
            if entry is READ:
                server_side.serve_read()
            elif type(entry) is Ack:
                # Reaching this entry means the server came back for more,
                # so it has taken everything before it.
                call_soon(
                    server_side.loop, server_side.app_side.acknowledge, entry.size
                )
            elif type(entry) is Done:
                server_side.outcome(entry)
        raise StopIteration

    def close(self) -> None:
        if not self._server_side.finished:
            self._server_side.abandon()


def caused_by_disconnect(error: BaseException) -> bool:
    """Whether ``error`` is how the application reacted to the client leaving.

    After the server drops a response, ``send()`` raises, ``receive()``
    answers ``http.disconnect`` and a late application may be cancelled;
    frameworks turn those into exceptions of their own (chained, or inside a
    group).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, Disconnected | asyncio.CancelledError):
            return True
        if isinstance(current, BaseExceptionGroup):
            return all(caused_by_disconnect(inner) for inner in current.exceptions)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
