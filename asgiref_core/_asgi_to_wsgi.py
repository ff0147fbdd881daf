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

This module holds the adapter and its loop thread. One request's two sides
are in ``_asgi_to_wsgi_server_side`` (the WSGI thread's) and
``_asgi_to_wsgi_app_side`` (the loop's), with what they hand each other in
``_asgi_to_wsgi_handover``; the scope comes from ``_asgi_to_wsgi_scope`` and
the lifespan protocol runs in ``_asgi_to_wsgi_lifespan``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asgiref_core._asgi_to_wsgi_handover import call_soon
from asgiref_core._asgi_to_wsgi_lifespan import Lifespan
from asgiref_core._asgi_to_wsgi_scope import build_scope
from asgiref_core._asgi_to_wsgi_server_side import ServerSide
from asgiref_core._bridge_state import thread_name
from asgiref_core.compatibility import guarantee_single_callable

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType
    from wsgiref.types import StartResponse, WSGIEnvironment

    from asgiref_core._asgi_to_wsgi_app_side import AppSide
    from asgiref_core.typing import ASGIApplication

__all__ = ["AsgiToWsgi"]


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
        given: object = asgi_application  # typed callable; callers pass anything
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
        self._loop_thread_id: int | None = None
        self._lifespan: Lifespan | None = None
        self._closed = False
        # Requests may go straight to the application: startup settled well.
        self._ready = False
        self._startup_settled = threading.Event()
        self._startup_deadline = float("inf")
        self._startup_problem: str | None = None
        self._lifespan_state: dict[str, Any] | None = None
        # Requests scheduled and not finished; touched by the loop, and by
        # WSGI threads only under the lock.
        self._active: set[AppSide] = set()
        # Set once closed with no request left, for close() to stop waiting.
        self._idle = threading.Event()
        # The loop is winding down: requests reaching it now are refused, and
        # requests cancelled now are told the adapter was closed.
        self._stopping = False

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
        server_side = ServerSide(
            loop,
            build_scope(environ, self._lifespan_state),
            environ,
            length,
            self._disconnect_timeout,
        )
        app_side = server_side.app_side
        with self._lock:
            # Under the lock, so that close() either sees this request in
            # _active and waits for it, or has already refused it here.
            if self._closed:
                raise RuntimeError(self._closed_message())
            self._active.add(app_side)
            loop.call_soon_threadsafe(self._spawn, app_side)
        return server_side.respond(start_response)

    # --- requests, on the loop ---------------------------------------------

    def _spawn(self, app_side: AppSide) -> None:
        if self._stopping:
            self._active.discard(app_side)
            app_side.finish(RuntimeError(self._closed_message()))
            return
        app_side.task = app_side.loop.create_task(self._run(app_side))

    async def _run(self, app_side: AppSide) -> None:
        error: BaseException | None = None
        try:
            await self._application(app_side.scope, app_side.receive, app_side.send)
        except BaseException as raised:  # handed to the WSGI thread, which raises it
            error = raised
            if self._stopping and isinstance(raised, asyncio.CancelledError):
                error = RuntimeError(self._closed_message())
                error.__cause__ = raised
        self._active.discard(app_side)
        if self._closed and not self._active:
            self._idle.set()
        app_side.finish(error)

    # --- startup -----------------------------------------------------------

    def _wait_until_ready(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(self._closed_message())
            if self._thread is None:
                self._start()
        timeout = self._startup_deadline - time.monotonic()
        if not self._startup_settled.wait(
            None if timeout == float("inf") else max(timeout, 0)
        ):
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
            self._settle_startup_locked(None, None)

    def _begin_lifespan(self, loop: asyncio.AbstractEventLoop) -> None:
        lifespan = Lifespan(self._application, loop, self._settle_startup)
        self._lifespan = lifespan
        loop.create_task(lifespan.run())

    def _settle_startup(
        self, problem: str | None, lifespan_state: dict[str, Any] | None
    ) -> None:
        with self._lock:
            self._settle_startup_locked(problem, lifespan_state)

    def _settle_startup_locked(
        self, problem: str | None, lifespan_state: dict[str, Any] | None
    ) -> None:
        if self._startup_settled.is_set():
            # close() got there first and has already woken the requests.
            return
        if problem is not None and not self._closed:
            problem = (
                f"{self!r} cannot serve requests: {problem}; fix the error in "
                "its startup"
            )
        self._startup_problem = problem
        self._lifespan_state = lifespan_state
        self._ready = problem is None and not self._closed
        self._startup_settled.set()

    # --- the loop thread -----------------------------------------------------

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
        for app_side in list(self._active):
            app_side.finish(RuntimeError(self._closed_message()))
        self._active.clear()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())

    # --- closing -----------------------------------------------------------

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
            if not self._startup_settled.is_set():
                # Wakes requests still waiting for startup.
                self._startup_problem = self._closed_message()
                self._startup_settled.set()
        if loop is None or thread is None:
            return
        problem: str | None = None
        if busy:
            self._idle.wait(self._shutdown_timeout)
        lifespan = self._lifespan
        # Shutdown follows a completed startup only; one still running (its
        # requests have already timed out) is cancelled with the loop.
        if lifespan is not None and lifespan.startup_completed:
            call_soon(loop, lifespan.request_shutdown)
            if not lifespan.over.wait(self._shutdown_timeout):
                problem = (
                    "the application's lifespan shutdown did not finish within "
                    f"shutdown_timeout={self._shutdown_timeout!r}s"
                )
            else:
                problem = lifespan.problem
        call_soon(loop, loop.stop)
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
