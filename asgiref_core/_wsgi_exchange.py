"""One request through a WSGI application, run on a worker thread for an ASGI server.

The WSGI call runs on one of the library's pooled worker threads (named
``asgiref_core-wsgi-<n>``), so concurrent requests run side by side, and its
response travels back as ASGI messages in batches: the worker appends to an
outbox and wakes the loop only when the loop is waiting, so a small response
costs one hop to the worker and one back. A streamed response is sent chunk
by chunk as the application yields it; the worker stops producing while more
than :data:`HIGH_WATER` bytes are unsent, so a slow client never makes a
fast application buffer without bound.

The client leaving (``http.disconnect`` while the response streams, or
``send`` raising ``OSError``) stops the iteration at the next chunk, and the
iterable's ``close()`` is called on the worker in every case, as PEP 3333
requires.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import IO, Any, Final

from asgiref_core._workers import run_pooled

__all__ = ["HIGH_WATER", "WsgiExchange"]

# RFC 9110's token: what a header name may be made of.
_HEADER_NAME: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")

#: Unsent response bytes past which the WSGI thread waits for the client.
HIGH_WATER: Final = 1024 * 1024

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_Send = Callable[[Any], Awaitable[None]]
_Receive = Callable[[], Awaitable[Mapping[str, Any]]]


class _Done:
    """Posted by the worker once the call is over and the iterable closed."""

    __slots__ = ()


_DONE: Final = _Done()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _ClientGoneError(ConnectionResetError):
    """Raised by ``write()`` once the client is gone; the call then ends quietly."""


class WsgiExchange:
    """The state of one request's WSGI call, shared by the loop and the worker.

    Worker side: :meth:`start_response`, ``write`` and :meth:`_run`. Loop
    side: :meth:`_exchange`. The two meet in ``_outbox``, under ``_lock``.
    """

    wsgi_application: Callable[..., Iterable[bytes]]

    def __init__(self, wsgi_application: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_application = wsgi_application
        # Kept under asgiref's names: the response start message, whether it
        # has been sent, and the Content-Length the application declared.
        self.response_start: dict[str, Any] | None = None
        self.response_started = False
        self.response_content_length: int | None = None
        self._lock = threading.Lock()
        self._outbox: list[object] = []
        self._waiter: asyncio.Future[None] | None = None
        self._unsent = 0
        # Made when the worker first has to wait for the client (rare).
        self._drained: threading.Event | None = None
        self._client_gone = False
        # Worker thread only.
        self._pending: list[object] = []
        self._pending_bytes = 0
        self._remaining: int | None = None
        self._complete = False

    # -- the worker side: PEP 3333's callables -----------------------------

    def start_response(
        self,
        status: str,
        response_headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """PEP 3333's ``start_response``: record the status and headers."""
        if exc_info is not None:
            try:
                if self.response_started:
                    # Too late to replace the response: PEP 3333 has the
                    # error re-raised in the application.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.response_start is not None:
            msg = (
                "start_response() was called a second time without exc_info; "
                "only an application handling an error may replace its response "
                "(pass exc_info=sys.exc_info())"
            )
            raise RuntimeError(msg)
        headers, content_length = _response_headers(response_headers)
        self.response_start = {
            "type": "http.response.start",
            "status": _status_code(status),
            "headers": headers,
        }
        self.response_content_length = content_length
        self._remaining = content_length
        return self._write

    def _write(self, data: bytes) -> None:
        """PEP 3333's ``write()``: send ``data`` at once."""
        if self._client_gone:
            msg = "the client disconnected; the response can no longer be written"
            raise _ClientGoneError(msg)
        self._body(data, final=False, source="data for write()")
        self._flush()

    def _run(
        self, environ: dict[str, Any], body: IO[bytes]
    ) -> Callable[[], None] | None:
        """The WSGI call, on the worker thread; reports back through the outbox.

        The request body is closed here, after the call, not by the loop: a
        cancelled ASGI call must not pull the input from under a running
        application.
        """
        outcome: object = _DONE
        try:
            result = self.wsgi_application(environ, self.start_response)
            try:
                self._iterate(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except _ClientGoneError:
            pass
        except BaseException as error:  # handed to the loop, which raises it
            outcome = error
        finally:
            body.close()
        self._pending.append(outcome)
        waiter = self._hand_over(final=True)
        # Woken by the pool once this thread is back in it, so the next
        # request finds this (warm) thread idle rather than starting another.
        return None if waiter is None else functools.partial(self._wake, waiter)

    def _iterate(self, result: Iterable[bytes]) -> None:
        if isinstance(result, list | tuple):
            # The number of chunks is known, so the last one can close the
            # response, and everything goes back to the loop in one batch.
            last = len(result) - 1
            for index, chunk in enumerate(result):
                self._body(chunk, final=index == last, source="a body chunk")
                if self._complete:
                    break
        else:
            for chunk in result:
                self._body(chunk, final=False, source="a body chunk")
                self._flush()
                if self._complete or self._client_gone:
                    return
        if self.response_start is None:
            msg = (
                "the WSGI application returned without calling start_response(); "
                "call start_response(status, headers) before returning the body"
            )
            raise RuntimeError(msg)
        if not self._complete:
            self._body(b"", final=True, source="the end of the body")

    def _body(self, chunk: object, *, final: bool, source: str) -> None:
        if type(chunk) is not bytes:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                msg = (
                    f"the WSGI application produced {source} that is a "
                    f"{type(chunk).__name__}, not bytes: {chunk!r:.80}; "
                    "encode text before returning it"
                )
                raise TypeError(msg)
            chunk = bytes(chunk)
        if self.response_start is None:
            msg = (
                f"the WSGI application produced {source} before calling "
                "start_response(); call start_response(status, headers) first"
            )
            raise RuntimeError(msg)
        if self._complete:
            return  # past the declared Content-Length: dropped, as PEP 3333 asks
        if not chunk and not final:
            return  # headers wait for the first non-empty chunk (PEP 3333)
        if self._remaining is not None:
            if len(chunk) >= self._remaining:
                # Nothing past the declared Content-Length is sent.
                chunk = chunk[: self._remaining]
                final = True
            self._remaining -= len(chunk)
        if not self.response_started:
            self.response_started = True
            self._pending.append(self.response_start)
        self._pending.append(
            {"type": "http.response.body", "body": chunk, "more_body": not final}
        )
        self._pending_bytes += len(chunk)
        if final:
            self._complete = True

    def _flush(self) -> None:
        """Hand the pending messages to the loop; wait while too much is unsent."""
        self._wake(self._hand_over(final=False))

    def _hand_over(self, *, final: bool) -> asyncio.Future[None] | None:
        """Move the pending messages to the outbox; the waiter to wake, if any.

        Unless ``final``, waits first while the client is too far behind.
        """
        pending = self._pending
        if not pending:
            return None
        self._pending = []
        with self._lock:
            self._outbox.extend(pending)
            self._unsent += self._pending_bytes
            self._pending_bytes = 0
            waiter = self._waiter
            self._waiter = None
            drained = None
            if not final and self._unsent > HIGH_WATER and not self._client_gone:
                drained = self._drained
                if drained is None:
                    drained = self._drained = threading.Event()
                drained.clear()
        if drained is not None:
            self._wake(waiter)
            waiter = None
            drained.wait()
        return waiter

    def _wake(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None:
            try:
                waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:
                # The loop is closed: nobody will send anything any more.
                self._client_gone = True

    # -- the loop side -------------------------------------------------------

    async def _exchange(
        self,
        environ: dict[str, Any],
        body: IO[bytes],
        receive: _Receive,
        send: _Send,
    ) -> None:
        """Run the WSGI call on a worker and send its response as it comes.

        The worker owns ``body`` from here on, and closes it.
        """
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        run_pooled(functools.partial(context.run, self._run, environ, body), "wsgi")
        watcher: asyncio.Task[None] | None = None
        try:
            while True:
                with self._lock:
                    batch = self._outbox
                    if batch:
                        self._outbox = []
                    else:
                        waiter = self._waiter = loop.create_future()
                if not batch:
                    if watcher is None and self.response_started:
                        # The response streams: notice the client leaving.
                        watcher = loop.create_task(self._watch_disconnect(receive))
                    await waiter
                    continue
                for item in batch:
                    if type(item) is dict:
                        await self._send(send, item)
                    elif isinstance(item, BaseException):
                        raise item
                    else:
                        return  # _DONE: the call is over, its iterable closed
        except BaseException:
            self._give_up()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
                # Leave no task behind; its outcome (a cancellation, or the
                # receive() error that ended it) does not change this call's.
                await asyncio.wait([watcher])
                if not watcher.cancelled():
                    watcher.exception()

    async def _send(self, send: _Send, message: dict[str, Any]) -> None:
        if self._client_gone:
            return
        try:
            await send(message)
        except OSError:
            # An ASGI 2.4 server says the client is gone; stop the call.
            self._give_up()
            return
        body = message.get("body")
        if body:
            with self._lock:
                self._unsent -= len(body)
                if self._drained is not None and self._unsent <= HIGH_WATER // 2:
                    self._drained.set()

    async def _watch_disconnect(self, receive: _Receive) -> None:
        message = await receive()
        # After the body, a server sends nothing but http.disconnect. From one
        # that sends anything else, no disconnect can be told: stop watching
        # rather than spin on it.
        if message.get("type") == "http.disconnect":
            self._give_up()

    def _give_up(self) -> None:
        """Nobody will take the response: let the worker stop at its next step."""
        with self._lock:
            self._client_gone = True
            if self._drained is not None:
                self._drained.set()


def _status_code(status: object) -> int:
    if isinstance(status, str):
        code = status.partition(" ")[0]
        if len(code) == 3 and code.isdigit() and code[0] != "0":
            return int(code)
    msg = (
        f"start_response() status must be a str such as '200 OK' (got {status!r}); "
        "the status code comes first, then a space and the reason phrase"
    )
    raise ValueError(msg) if isinstance(status, str) else TypeError(msg)


def _response_headers(
    response_headers: object,
) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """ASGI header pairs for WSGI ones, and the declared Content-Length."""
    if not isinstance(response_headers, list):
        msg = (
            "start_response() headers must be a list of (name, value) tuples "
            f"(got {type(response_headers).__name__}: {response_headers!r:.80})"
        )
        raise TypeError(msg)
    headers: list[tuple[bytes, bytes]] = []
    content_length = None
    for pair in response_headers:
        try:
            name, value = pair
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError
            raw_name = name.lower().encode("latin-1")
            raw_value = value.encode("latin-1")
        except (TypeError, ValueError):
            msg = (
                "start_response() headers must be (str, str) pairs of latin-1 "
                f"text (got {pair!r:.80})"
            )
            raise TypeError(msg) from None
        if _HEADER_NAME.fullmatch(raw_name) is None:
            msg = (
                f"start_response() header name {name!r} is not an HTTP token; "
                "use letters, digits and !#$%&'*+-.^_`|~ only"
            )
            raise ValueError(msg)
        if b"\n" in raw_value or b"\r" in raw_value or b"\0" in raw_value:
            msg = (
                f"start_response() header {name!r} holds a line break or NUL "
                f"({value!r:.80}); a header value must be one line"
            )
            raise ValueError(msg)
        if raw_name == b"content-length":
            content_length = _content_length(value)
        headers.append((raw_name, raw_value))
    return headers, content_length


def _content_length(value: str) -> int | None:
    stripped = value.strip()
    return int(stripped) if stripped.isascii() and stripped.isdigit() else None
