"""Serve an ASGI application from a WSGI server: :class:`AsgiToWsgi`.

The adapter is a WSGI callable. Each call builds an ASGI ``http`` scope from
the environ and runs the application on an event loop that the adapter keeps
in one background thread, shared by every request, while the WSGI server's
thread that made the call reads the request body and hands the response back
to the server.

How the work is split between the two threads, and why:

* The WSGI thread does everything that touches the WSGI server: it builds
  the scope, reads ``wsgi.input`` (the stream belongs to the server's thread,
  and a blocking read on the shared loop would stall every other request) and
  calls ``start_response``. The loop thread only runs application code.
* Crossing between threads is the expensive part of a small request, so it
  happens as rarely as possible. A small request body is read before the
  application is scheduled, so its first ``receive()`` answers at once; what
  the application sends is collected and handed over in one batch when it
  next waits for something or returns, so a small response wakes the WSGI
  thread once. A small request costs one hop to the loop and one back.
* Neither direction buffers without bound. The body is read one chunk at a
  time, when the application asks for it. Response bytes handed to the WSGI
  thread and not yet taken by the server are counted, and ``send()`` waits
  while there are too many of them, so an endless stream to a slow client
  holds a few hundred kilobytes, not everything produced so far.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from asgiref_core._bridge_state import thread_name
from asgiref_core.compatibility import guarantee_single_callable

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType
    from wsgiref.types import StartResponse, WSGIEnvironment

    from asgiref_core.typing import (
        ASGI3Application,
        ASGIApplication,
        ASGIReceiveEvent,
        HTTPDisconnectEvent,
        HTTPRequestEvent,
        HTTPScope,
        LifespanScope,
    )

    _BodyEvent = HTTPRequestEvent | HTTPDisconnectEvent

__all__ = ["AsgiToWsgi"]

#: Most bytes one read of ``wsgi.input`` asks for: the size of the request body
#: chunks, and of the largest body read before the application is scheduled.
_CHUNK: Final = 64 * 1024
#: Response bytes in flight after which the loop asks the WSGI thread to report
#: back once the server has taken them.
_CHECKPOINT: Final = 64 * 1024
#: Response bytes in flight (handed over, not yet taken by the server) at which
#: ``send()`` waits. Acknowledged in checkpoint-sized steps, so the application
#: resumes while the rest is still being written.
_HIGH_WATER: Final = 4 * _CHECKPOINT

#: The HTTP spec version the scopes claim. 2.4 is the one where ``send()`` on a
#: closed connection raises ``OSError``, which lets frameworks stop streaming
#: without running a disconnect listener next to every response.
_HTTP_SPEC_VERSION: Final = "2.4"

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

_HTTP_VERSIONS: Final = {
    "HTTP/1.1": "1.1",
    "HTTP/1.0": "1.0",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
    "HTTP/3": "3",
    "HTTP/3.0": "3",
}

# A decoded path made only of these characters is also its own raw form.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9/._~:@!$&'()*+,;=-]*")
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"

# Environ key -> header name. Header names come from clients, so the cache
# stops growing at a size no legitimate mix of headers reaches.
_HEADER_NAMES: dict[str, bytes] = {}
_HEADER_NAMES_MAX: Final = 512


class _Disconnected(OSError):
    """What ``send()`` raises once the WSGI server has given up on the response."""


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Loop -> WSGI thread: the application waits for the next request body chunk.
_READ: Final = _Marker("_READ")


class _Start:
    """Loop -> WSGI thread: the response's status line and headers."""

    __slots__ = ("headers", "status")

    def __init__(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.headers = headers


class _Ack:
    """Loop -> WSGI thread: report back once the bytes before this were taken."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


class _Done:
    """Loop -> WSGI thread: the application returned or raised."""

    __slots__ = ("complete", "error")

    def __init__(self, error: BaseException | None, complete: bool) -> None:
        self.error = error
        self.complete = complete


_Entry = bytes | _Start | _Ack | _Done | _Marker


def _disconnect() -> HTTPDisconnectEvent:
    return {"type": "http.disconnect"}


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: Any
) -> bool:
    """Schedule ``callback`` on ``loop`` from another thread; False once it closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        # The adapter was closed: its loop has already told every request.
        return False
    return True


def _caused_by_disconnect(error: BaseException) -> bool:
    """Whether ``error`` is how the application reacted to the client leaving.

    After the server drops a response, ``send()`` raises, receive answers
    ``http.disconnect`` and a late application may be cancelled; frameworks
    turn those into exceptions of their own (chained, or inside a group).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, _Disconnected | asyncio.CancelledError):
            return True
        if isinstance(current, BaseExceptionGroup):
            return all(_caused_by_disconnect(inner) for inner in current.exceptions)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        # PEP 3333 says latin-1; a server that handed over real text anyway
        # most likely decoded UTF-8 bytes.
        return text.encode("utf-8")


def _header_name(key: str) -> bytes:
    name = key[5:].lower().replace("_", "-").encode("latin-1")
    if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
        _HEADER_NAMES[key] = name
    return name


def _text(raw: bytes) -> str:
    # Paths are UTF-8 on the wire by convention only; a stray byte becomes
    # U+FFFD here, and ``raw_path`` keeps the exact bytes for whoever needs them.
    return raw.decode("utf-8", "replace")


class _Exchange:
    """One request: its ``receive``/``send`` side, run on the adapter's loop,
    and its WSGI side, run on the WSGI server's thread.

    The loop side never blocks on the WSGI thread and the WSGI thread never
    touches loop objects: the loop puts lists of entries on ``queue`` and the
    WSGI thread answers through ``call_soon_threadsafe``.
    """

    __slots__ = (
        "body_done",
        "checkpoint",
        "complete",
        "disconnected",
        "drain",
        "finished",
        "flush_pending",
        "inbox",
        "loop",
        "outbox",
        "pending",
        "queue",
        "read",
        "read_requested",
        "remaining",
        "scope",
        "started",
        "task",
        "unacked",
        "waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, scope: HTTPScope) -> None:
        self.loop = loop
        self.scope = scope
        self.queue: SimpleQueue[list[_Entry]] = SimpleQueue()
        self.task: asyncio.Task[None] | None = None
        # Loop side.
        self.inbox: ASGIReceiveEvent | None = None
        self.waiter: asyncio.Future[ASGIReceiveEvent] | None = None
        self.read_requested = False
        self.body_done = False
        self.outbox: list[_Entry] = []
        self.flush_pending = False
        self.started = False
        self.complete = False
        self.disconnected = False
        self.unacked = 0
        self.checkpoint = 0
        self.drain: asyncio.Future[None] | None = None
        # WSGI side.
        self.pending: deque[_Entry] = deque()
        self.read: Callable[[int], bytes] | None = None
        self.remaining: int | None = None
        self.finished = False

    # --- loop side: the application's receive and send ---------------------

    async def receive(self) -> ASGIReceiveEvent:
        message = self.inbox
        if message is not None:
            self.inbox = None
            return message
        if self.disconnected or self.complete:
            # As ASGI servers do once the response is out: nothing more will
            # arrive on this request.
            return _disconnect()
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
            self.outbox.append(_READ)
            self.flush()
        # Past the end of the body the waiter stays unanswered until the
        # response completes or the client leaves: then comes http.disconnect.
        try:
            return await waiter
        finally:
            self.waiter = None

    async def send(self, message: Mapping[str, Any]) -> None:
        if self.disconnected:
            raise _Disconnected(
                "the client disconnected: the WSGI server closed the response"
            )
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            msg = (
                f"ASGI messages must be dicts with a 'type' key (got {message!r}); "
                "send {'type': 'http.response.start', ...} and then "
                "{'type': 'http.response.body', ...}"
            )
            raise TypeError(msg) from None
        if kind == "http.response.body" and self.started and not self.complete:
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = _body_bytes(body)
            if body:
                size = len(body)
                self.outbox.append(body)
                self.unacked += size
                self.checkpoint += size
                if self.checkpoint >= _CHECKPOINT:
                    self.outbox.append(_Ack(self.checkpoint))
                    self.checkpoint = 0
            if not message.get("more_body", False):
                self.complete = True
                self._answer_waiter(_disconnect())
            elif self.unacked >= _HIGH_WATER:
                await self._wait_for_server()
                return
            self.schedule_flush()
            return
        if kind == "http.response.start" and not self.started:
            self.outbox.append(_start(message))
            self.started = True
            self.schedule_flush()
            return
        raise self._out_of_order(kind, message)

    def _out_of_order(self, kind: object, message: Mapping[str, Any]) -> Exception:
        if kind == "http.response.body" and not self.started:
            problem = "before 'http.response.start'"
            fix = "send 'http.response.start' with the status and headers first"
        elif kind in ("http.response.body", "http.response.start") and self.complete:
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
        if self.disconnected:
            raise _Disconnected(
                "the client disconnected: the WSGI server closed the response"
            )

    def _answer_waiter(self, message: ASGIReceiveEvent) -> bool:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
            return True
        return False

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
        self.outbox.append(_Done(error, self.complete))
        self.flush()

    # --- loop side: called from the WSGI thread ------------------------------

    def deliver(self, message: _BodyEvent) -> None:
        """A body chunk (or http.disconnect) the WSGI thread has read."""
        self.read_requested = False
        if message["type"] == "http.disconnect":
            self.disconnected = self.body_done = True
        elif not message["more_body"]:
            self.body_done = True
        if self.complete:
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
        self.disconnected = True
        self.inbox = None
        self._answer_waiter(_disconnect())
        drain = self.drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    # --- WSGI side ------------------------------------------------------------

    def first_message(self, environ: WSGIEnvironment, length: int | None) -> None:
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
            self.inbox = {"type": "http.request", "body": b"", "more_body": False}
            self.body_done = True
            return
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
        message = self.read_chunk()
        self.inbox = message
        if message["type"] == "http.disconnect":
            self.disconnected = self.body_done = True
        else:
            self.body_done = not message["more_body"]

    def read_chunk(self) -> _BodyEvent:
        read = self.read
        remaining = self.remaining
        if read is None or remaining == 0:
            return {"type": "http.request", "body": b"", "more_body": False}
        size = _CHUNK if remaining is None else min(_CHUNK, remaining)
        try:
            data = read(size)
        except (OSError, ValueError):
            # A reset connection, or a stream the server already closed.
            return _disconnect()
        if type(data) is not bytes:
            data = bytes(data)
        if remaining is None:
            return {"type": "http.request", "body": data, "more_body": bool(data)}
        if not data:
            return _disconnect()
        remaining -= len(data)
        self.remaining = remaining
        return {"type": "http.request", "body": data, "more_body": remaining > 0}

    def next_entry(self, timeout: float | None = None) -> _Entry | None:
        pending = self.pending
        if not pending:
            try:
                pending.extend(self.queue.get(timeout=timeout))
            except Empty:
                return None
        return pending.popleft()

    def serve_read(self) -> None:
        _call_soon(self.loop, self.deliver, self.read_chunk())

    def respond(self, start_response: StartResponse, grace: float) -> Iterable[bytes]:
        """Wait for the response to start, then hand it to the WSGI server."""
        try:
            while True:
                entry = self.next_entry()
                if type(entry) is _Start:
                    break
                if entry is _READ:
                    self.serve_read()
                elif type(entry) is _Done:
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
                self.abandon(grace)
            raise
        pending = self.pending
        if pending:
            last = pending[-1]
            if type(last) is _Done and last.error is None and last.complete:
                # All of it is here: a list lets the server set Content-Length.
                chunks = [entry for entry in pending if type(entry) is bytes]
                if all(type(entry) is not _Marker for entry in pending):
                    self.finished = True
                    return chunks
        return _ResponseBody(self, grace)

    def outcome(self, done: _Done) -> None:
        self.finished = True
        if done.error is not None:
            raise done.error
        if not done.complete:
            msg = (
                "the ASGI application returned before completing the response; "
                "its last 'http.response.body' message must have more_body False"
            )
            raise RuntimeError(msg)

    def abandon(self, grace: float) -> None:
        """Tell the application the client is gone; wait for it to wind down.

        It gets ``grace`` seconds to notice (``send()`` raises, ``receive()``
        answers ``http.disconnect``), then is cancelled and gets as long again.
        What it raises because of the disconnect is expected and dropped.
        """
        self.finished = True
        _call_soon(self.loop, self.client_gone)
        done = self._wait_done(grace)
        if done is None:
            _call_soon(self.loop, self.cancel)
            done = self._wait_done(grace)
        if done is None:
            msg = (
                f"the ASGI application was still running {2 * grace:g}s after "
                "the WSGI server closed its response, despite being cancelled; "
                "it must return once send() raises OSError or receive() returns "
                "'http.disconnect'"
            )
            raise RuntimeError(msg)
        if done.error is not None and not _caused_by_disconnect(done.error):
            raise done.error

    def _wait_done(self, timeout: float) -> _Done | None:
        deadline = time.monotonic() + timeout
        while True:
            entry = self.next_entry(max(deadline - time.monotonic(), 0.0))
            if entry is None:
                return None
            # Body, checkpoints and read requests have no taker any more.
            if type(entry) is _Done:
                return entry


def _body_bytes(body: object) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    msg = (
        f"'http.response.body' message: 'body' must be bytes (got {body!r}); "
        "encode text before sending it"
    )
    raise TypeError(msg)


def _start(message: Mapping[str, Any]) -> _Start:
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
    return _Start(line, headers)


class _ResponseBody:
    """The iterable given to the WSGI server: the body as the application sends it.

    The server closing it before the end is how a WSGI application learns that
    the client went away; the application hears of it through its
    ``send()``/``receive()``.
    """

    __slots__ = ("_exchange", "_grace")

    def __init__(self, exchange: _Exchange, grace: float) -> None:
        self._exchange = exchange
        self._grace = grace

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        exchange = self._exchange
        while not exchange.finished:
            entry = exchange.next_entry()
            if type(entry) is bytes:
                return entry
            if entry is _READ:
                exchange.serve_read()
            elif type(entry) is _Ack:
                # Reaching this entry means the server came back for more,
                # so it has taken everything before it.
                _call_soon(exchange.loop, exchange.acknowledge, entry.size)
            elif type(entry) is _Done:
                exchange.outcome(entry)
        raise StopIteration

    def close(self) -> None:
        if not self._exchange.finished:
            self._exchange.abandon(self._grace)


class _Lifespan:
    """The application's lifespan conversation, on the loop for the adapter's life.

    An application that raises or returns before it has received
    ``lifespan.startup`` does not support lifespan (servers must then carry on
    without it, as the ASGI spec says); one that raises after receiving it has
    failed to start, and so has one that sends ``lifespan.startup.failed``.
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
        if not self.shutdown_wanted.done():
            self.shutdown_wanted.set_result(None)


class AsgiToWsgi:
    """A WSGI application that runs an ASGI application.

    ``AsgiToWsgi(app)`` can be handed to any WSGI server. ``app`` is an ASGI 3
    application or an ASGI 2 (double-callable) one. Its event loop runs in one
    background thread per adapter, started by the first request, which first
    runs the application's lifespan startup; applications without lifespan
    support are served all the same. Call :meth:`close` (or use the adapter
    as a context manager) when the server has stopped: it runs the lifespan
    shutdown and stops the thread.

    :param lifespan: whether to run the lifespan protocol at all.
    :param startup_timeout: seconds requests wait for lifespan startup before
        failing with :class:`TimeoutError`; None waits without limit.
    :param shutdown_timeout: seconds :meth:`close` waits for requests still in
        progress, and again for lifespan shutdown.
    :param disconnect_timeout: seconds the application gets to finish after
        the WSGI server closed its response early, and again once cancelled.

    The application sees the request body as ``http.request`` messages of at
    most 64 KiB, read as it asks for them, and its response body goes to the
    server as it sends it, with ``send()`` waiting while the server has not
    taken what came before. When the server closes the response early (the
    client went away), ``receive()`` answers ``http.disconnect`` and ``send()``
    raises :class:`OSError`. Exceptions the application raises come out of the
    WSGI call or its response iterator, where the server reports them.
    """

    def __init__(
        self,
        asgi_application: ASGIApplication | Callable[..., Any],
        *,
        lifespan: bool = True,
        startup_timeout: float | None = 60.0,
        shutdown_timeout: float = 10.0,
        disconnect_timeout: float = 5.0,
    ) -> None:
        given: object = asgi_application  # checked at run time too
        if not callable(given):
            msg = (
                "AsgiToWsgi() needs an ASGI application, a callable such as "
                "'async def app(scope, receive, send)' "
                f"(got {type(asgi_application).__name__} {asgi_application!r})"
            )
            raise TypeError(msg)
        for name, value in (
            ("startup_timeout", startup_timeout),
            ("shutdown_timeout", shutdown_timeout),
            ("disconnect_timeout", disconnect_timeout),
        ):
            if value is not None and not value >= 0:
                msg = (
                    f"AsgiToWsgi() {name} must be a number of seconds >= 0 "
                    f"(got {value!r})"
                )
                raise ValueError(msg)
        self.asgi_application = asgi_application
        self._application = guarantee_single_callable(asgi_application)
        self._name = (
            getattr(asgi_application, "__qualname__", None)
            or type(asgi_application).__qualname__
        )
        self._use_lifespan = lifespan
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._disconnect_timeout = disconnect_timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lifespan: _Lifespan | None = None
        self._closed = False
        # Requests may go straight to the application: startup settled well.
        self._ready = False
        self._started = threading.Event()
        self._startup_deadline = float("inf")
        self._startup_problem: str | None = None
        self._state: dict[str, Any] | None = None
        # Requests scheduled and not finished; touched by the loop, and by
        # WSGI threads only under the lock.
        self._active: set[_Exchange] = set()
        self._idle = threading.Event()
        self._stopping = False
        self._loop_thread_id: int | None = None

    def __repr__(self) -> str:
        return f"AsgiToWsgi({self._name})"

    def __enter__(self) -> AsgiToWsgi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- WSGI ---------------------------------------------------------------

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if not self._ready:
            self._wait_until_ready()
        if threading.get_ident() == self._loop_thread_id:
            msg = (
                f"{self!r} was called from its own loop thread, by the application "
                "it runs: it would wait for itself for ever; run the WSGI call in "
                "another thread (asgiref_core.sync.sync_to_async does)"
            )
            raise RuntimeError(msg)
        content_length = environ.get("CONTENT_LENGTH")
        length: int | None = None
        if content_length:
            text = content_length.strip()
            if not (text.isascii() and text.isdigit()):
                return _bad_request(start_response, content_length)
            length = int(text)
        loop = self._loop
        if loop is None:  # cannot happen once ready; keeps the type exact
            raise RuntimeError(self._closed_message())
        exchange = _Exchange(loop, self._scope(environ))
        exchange.first_message(environ, length)
        with self._lock:
            if self._closed:
                raise RuntimeError(self._closed_message())
            self._active.add(exchange)
            loop.call_soon_threadsafe(self._spawn, exchange)
        return exchange.respond(start_response, self._disconnect_timeout)

    def _scope(self, environ: WSGIEnvironment) -> HTTPScope:
        headers: list[tuple[bytes, bytes]] = []
        for key, value in environ.items():
            if key[:5] == "HTTP_" and key not in (
                "HTTP_CONTENT_TYPE",
                "HTTP_CONTENT_LENGTH",
            ):
                name = _HEADER_NAMES.get(key) or _header_name(key)
                headers.append((name, _latin1(value)))
        content_type = environ.get("CONTENT_TYPE")
        if content_type:
            headers.append((b"content-type", _latin1(content_type)))
        content_length = environ.get("CONTENT_LENGTH")
        if content_length:
            headers.append((b"content-length", _latin1(content_length)))

        # PEP 3333 carries the path's bytes as latin-1 text; ASGI wants the
        # text those bytes spell in UTF-8, and the path includes root_path.
        script_name = environ.get("SCRIPT_NAME", "")
        full = script_name + environ.get("PATH_INFO", "")
        raw = _latin1(full)
        if raw.isascii():
            path, root_path = full, script_name
        else:
            path, root_path = _text(raw), _text(_latin1(script_name))
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if uri and uri[0] == "/":
            # The server kept the request target as received: use it as is.
            raw_path = _latin1(uri.partition("?")[0])
        elif _PLAIN_PATH.fullmatch(full):
            raw_path = raw
        else:
            raw_path = quote(raw, safe=_PATH_SAFE).encode("ascii")

        protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        http_version = _HTTP_VERSIONS.get(protocol) or protocol.rpartition("/")[2]
        remote = environ.get("REMOTE_ADDR")
        client: tuple[str, int] | None = None
        if remote:
            port = environ.get("REMOTE_PORT", "")
            client = (remote, int(port) if port.isdigit() else 0)
        server_port = environ.get("SERVER_PORT", "")
        scope: HTTPScope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": _HTTP_SPEC_VERSION},
            "http_version": http_version,
            "method": environ["REQUEST_METHOD"],
            "scheme": environ.get("wsgi.url_scheme", "http"),
            "path": path,
            "raw_path": raw_path,
            "query_string": _latin1(environ.get("QUERY_STRING", "")),
            "root_path": root_path,
            "headers": headers,
            "client": client,
            "server": (
                environ.get("SERVER_NAME", ""),
                int(server_port) if server_port.isdigit() else None,
            ),
            "extensions": {},
        }
        if self._state is not None:
            # Each request gets its own copy, as the lifespan spec says.
            scope["state"] = self._state.copy()
        return scope

    # --- the loop ---------------------------------------------------------------

    def _spawn(self, exchange: _Exchange) -> None:
        if self._stopping:
            self._active.discard(exchange)
            exchange.finish(RuntimeError(self._closed_message()))
            return
        exchange.task = exchange.loop.create_task(self._run(exchange))

    async def _run(self, exchange: _Exchange) -> None:
        error: BaseException | None = None
        try:
            await self._application(
                exchange.scope,
                exchange.receive,
                exchange.send,
            )
        except BaseException as raised:  # handed to the WSGI thread, which raises it
            error = raised
            if self._stopping and isinstance(raised, asyncio.CancelledError):
                error = RuntimeError(self._closed_message())
                error.__cause__ = raised
        self._active.discard(exchange)
        if self._closed and not self._active:
            self._idle.set()
        exchange.finish(error)

    def _wait_until_ready(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(self._closed_message())
            if self._thread is None:
                self._start()
        timeout = self._startup_deadline - time.monotonic()
        if not self._started.wait(None if timeout == float("inf") else max(timeout, 0)):
            msg = (
                f"{self!r}: the application's lifespan startup did not finish "
                f"within startup_timeout={self._startup_timeout!r}s; make its "
                "startup send 'lifespan.startup.complete', or raise the timeout"
            )
            raise TimeoutError(msg)
        if self._startup_problem is not None:
            raise RuntimeError(self._startup_problem)

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop,
            args=(loop,),
            name=thread_name("asgi-to-wsgi"),
            daemon=True,
        )
        self._loop = loop
        self._thread = thread
        if self._startup_timeout is not None:
            self._startup_deadline = time.monotonic() + self._startup_timeout
        thread.start()
        if self._use_lifespan:
            loop.call_soon_threadsafe(self._begin_lifespan, loop)
        else:
            self._settle_startup(None, None, locked=True)

    def _begin_lifespan(self, loop: asyncio.AbstractEventLoop) -> None:
        lifespan = _Lifespan(self._application, loop, self._settle_startup)
        self._lifespan = lifespan
        loop.create_task(lifespan.run())

    def _settle_startup(
        self, problem: str | None, state: dict[str, Any] | None, *, locked: bool = False
    ) -> None:
        if not locked:
            with self._lock:
                self._settle_startup(problem, state, locked=True)
            return
        if self._started.is_set():
            return
        if problem is not None and not self._closed:
            problem = (
                f"{self!r} cannot serve requests: {problem}; fix the error in "
                "its startup"
            )
        self._startup_problem = problem
        self._state = state
        self._ready = problem is None and not self._closed
        self._started.set()

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_thread_id = threading.get_ident()
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                self._wind_down(loop)
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def _wind_down(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stopping = True
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=self._shutdown_timeout))
        # Requests whose task never got to run: tell their WSGI threads.
        for exchange in list(self._active):
            exchange.finish(RuntimeError(self._closed_message()))
        self._active.clear()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())

    # --- closing ------------------------------------------------------------------

    def close(self) -> None:
        """Run the lifespan shutdown, stop the loop and join its thread.

        Requests still in progress get up to ``shutdown_timeout`` seconds to
        finish and are then cancelled; the lifespan shutdown gets as long
        again. Calling it again does nothing.

        :raises RuntimeError: if the lifespan shutdown failed or timed out (the
            adapter is closed all the same), or if called from the
            application itself, on the adapter's own loop.
        """
        with self._lock:
            if self._closed:
                return
            thread = self._thread
            if thread is threading.current_thread():
                msg = (
                    f"{self!r}.close() was called from the adapter's own loop "
                    "thread, which it would have to wait for; close the adapter "
                    "from the thread that runs the WSGI server"
                )
                raise RuntimeError(msg)
            self._closed = True
            self._ready = False
            busy = bool(self._active)
            loop = self._loop
            if not self._started.is_set():
                # Wakes requests still waiting for startup.
                self._startup_problem = self._closed_message()
                self._started.set()
        if loop is None or thread is None:
            return
        problem: str | None = None
        if busy:
            self._idle.wait(self._shutdown_timeout)
        lifespan = self._lifespan
        # Shutdown follows a completed startup only; one still running (its
        # requests have already timed out) is cancelled with the loop.
        if lifespan is not None and lifespan.startup_completed:
            _call_soon(loop, lifespan.request_shutdown)
            if not lifespan.over.wait(self._shutdown_timeout):
                problem = (
                    "the application's lifespan shutdown did not finish within "
                    f"shutdown_timeout={self._shutdown_timeout!r}s"
                )
            else:
                problem = lifespan.problem
        _call_soon(loop, loop.stop)
        thread.join()
        if problem is not None:
            msg = f"{self!r}.close(): {problem}; the adapter is closed regardless"
            raise RuntimeError(msg)

    def _closed_message(self) -> str:
        return (
            f"{self!r} was closed and serves no more requests; close it only "
            "after the WSGI server has stopped, or create a new adapter"
        )


def _bad_request(start_response: StartResponse, content_length: str) -> list[bytes]:
    # A malformed request, not an application error: answered here, as an
    # HTTP server would.
    body = f"Bad Request: invalid Content-Length {content_length!r}\n".encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
