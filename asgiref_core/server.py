"""A base class for servers of stateless protocols.

Some protocols have no connections of their own: messages arrive from a queue,
a chat network or a broker, each tagged with who or what it belongs to.
:class:`StatelessServer` keeps one running application instance per tag (a
"scope id"), starts new ones on demand, retires the least recently used when
there are too many, and reports the ones that crash. A subclass supplies the
protocol: :meth:`~StatelessServer.handle` reads incoming work and
:meth:`~StatelessServer.application_send` delivers what the application sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, cast

from asgiref_core.compatibility import guarantee_single_callable
from asgiref_core.typing import ASGIApplication

__all__ = ["StatelessServer"]

_logger = logging.getLogger(__name__)


class StatelessServer:
    """Run one application instance per scope id for a connectionless protocol.

    Subclass it and override two coroutine methods: :meth:`handle`, which
    reads incoming work for as long as the server should run, and
    :meth:`application_send`, which delivers a message an application sent.
    For each incoming message, ``handle()`` calls
    :meth:`get_or_create_application_instance` with an id for the scope the
    message belongs to and the scope itself, and puts the message on the queue
    it gets back::

        queue = self.get_or_create_application_instance(
            "user-123456", {"type": "chat", "user_id": "123456"}
        )
        queue.put_nowait({"type": "chat.message", "text": "hello"})

    A scope id seen before gets the queue of its running instance; a new one
    starts ``application`` (ASGI 3, or ASGI 2 adapted with
    :func:`~asgiref_core.compatibility.guarantee_single_callable`) with that
    scope, the queue's ``get`` as ``receive`` and a ``send`` that calls
    ``application_send(scope, message)``.

    At most ``max_applications`` instances are kept: starting one more first
    cancels the least recently used (by ``last_used``, then by the order of
    the last creation or reuse). asgiref 3.13 makes room only once the count
    is already above the limit, so it keeps up to ``max_applications + 1``;
    that contradicts its own documentation, and here the limit holds.
    ``max_applications`` must be an int of at least 1: anything else raises
    :exc:`TypeError` or :exc:`ValueError`.

    Every :attr:`application_checker_interval` seconds,
    :meth:`application_checker` removes finished instances and passes each
    exception one raised to :meth:`application_exception`, which logs it.
    An instance that ended because it was cancelled is removed without a
    report.

    :meth:`run` and :meth:`arun` shut down cleanly: when ``handle()`` returns
    or raises, or ``arun()`` is cancelled, every remaining instance and the
    checker are cancelled and awaited (an instance that handles its
    cancellation may finish its clean-up first), exceptions not yet reported
    are passed to ``application_exception()``, and ``application_instances``
    is left empty. Instances removed by :meth:`delete_application_instance`
    are awaited the same way, by the checker or at shutdown, so no task is
    left pending.
    """

    #: Seconds :meth:`application_checker` sleeps between its rounds.
    application_checker_interval: float = 0.1

    def __init__(
        self,
        application: ASGIApplication | Callable[..., Any],
        max_applications: int = 1000,
    ) -> None:
        if isinstance(max_applications, bool) or not isinstance(max_applications, int):
            msg = (
                f"{type(self).__name__}(max_applications={max_applications!r}): "
                f"max_applications must be an int, the most application "
                f"instances kept at once; pass a whole number such as 1000"
            )
            raise TypeError(msg)
        if max_applications < 1:
            msg = (
                f"{type(self).__name__}(max_applications={max_applications!r}): "
                f"max_applications must be at least 1, or no application "
                f"instance could ever run; pass 1 or more (the default is 1000)"
            )
            raise ValueError(msg)
        self.application = application
        self.max_applications = max_applications
        #: Running instances by scope id. Each value holds ``"input_queue"``,
        #: ``"future"`` (the task running the application), ``"scope"`` and
        #: ``"last_used"`` (a :func:`time.time` timestamp).
        self.application_instances: dict[Any, dict[str, Any]] = {}
        # Instances taken out of ``application_instances`` whose task may
        # still end with an exception to report, with their details.
        self._retired: dict[asyncio.Future[Any], dict[str, Any]] = {}

    # --- running ---------------------------------------------------------------

    def run(self) -> None:
        """Run :meth:`arun` in a new event loop until it returns.

        Ctrl-C (:exc:`KeyboardInterrupt`) shuts the server down cleanly and is
        logged at INFO level instead of propagating.
        """
        try:
            asyncio.run(self.arun())
        except KeyboardInterrupt:
            _logger.info("Exiting due to Ctrl-C/interrupt")

    async def arun(self) -> None:
        """Run :meth:`handle` and :meth:`application_checker` until ``handle()`` ends.

        Returns when ``handle()`` returns and raises what it raises. If the
        checker fails, ``handle()`` is cancelled and the checker's exception
        is raised. Either way, and when ``arun()`` itself is cancelled (the
        :exc:`asyncio.CancelledError` still reaches the caller), the server
        shuts down first: see the class documentation.
        """
        handler = asyncio.ensure_future(self.handle())
        checker = asyncio.ensure_future(self.application_checker())
        propagating: BaseException | None = None
        try:
            while not handler.done():
                watched = {handler} if checker.done() else {handler, checker}
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if checker.done() and not checker.cancelled():
                    # Raises if the checker failed; a checker that merely
                    # returned leaves handle() to run on.
                    checker.result()
            handler.result()
        except BaseException as exc:
            propagating = exc
            raise
        finally:
            await self._shut_down(handler, checker, propagating)

    async def handle(self) -> None:
        """Read incoming work and route it to application instances.

        Override it: the server runs for as long as this coroutine does.
        """
        msg = (
            f"{type(self).__name__}.handle() is not implemented; subclasses of "
            f"StatelessServer must override the coroutine method handle() to "
            f"read incoming work and pass it on with "
            f"get_or_create_application_instance()"
        )
        raise NotImplementedError(msg)

    async def application_send(self, scope: Any, message: Any) -> None:
        """Deliver ``message``, sent by the application instance for ``scope``.

        Override it to carry the message to wherever the protocol sends it.
        """
        msg = (
            f"{type(self).__name__}.application_send() is not implemented; "
            f"subclasses of StatelessServer must override the coroutine method "
            f"application_send(scope, message) to deliver what applications "
            f"send (got a {_message_type(message)} message for scope {scope!r})"
        )
        raise NotImplementedError(msg)

    # --- application instances -----------------------------------------------

    def get_or_create_application_instance(
        self, scope_id: Hashable, scope: Any
    ) -> asyncio.Queue[Any]:
        """Return the input queue of the instance for ``scope_id``, starting it if new.

        Reusing an instance updates its ``last_used``; ``scope`` is then
        ignored. Starting one when ``max_applications`` instances exist first
        removes the least recently used with
        :meth:`delete_oldest_application_instance`. Must be called with an
        event loop running.
        """
        details = self.application_instances.get(scope_id)
        if details is not None:
            details["last_used"] = time.time()
            # Move it to the end, so that when timestamps tie the order of use
            # still decides which instance is the least recently used.
            del self.application_instances[scope_id]
            self.application_instances[scope_id] = details
            return cast("asyncio.Queue[Any]", details["input_queue"])
        # The new instance is not in the mapping yet, so it cannot be evicted.
        while (
            self.application_instances
            and len(self.application_instances) >= self.max_applications
        ):
            before = len(self.application_instances)
            self.delete_oldest_application_instance()
            if len(self.application_instances) >= before:
                msg = (
                    f"{type(self).__name__}.delete_oldest_application_instance() "
                    f"removed no instance while {before} were running and "
                    f"max_applications is {self.max_applications!r}; an override "
                    f"must remove one, for example with "
                    f"delete_application_instance(scope_id)"
                )
                raise RuntimeError(msg)
        input_queue: asyncio.Queue[Any] = asyncio.Queue()
        application = cast(
            "Callable[..., Awaitable[Any]]",
            guarantee_single_callable(self.application),
        )

        async def send(message: Any) -> None:
            await self.application_send(scope, message)

        # Keyword arguments, as asgiref passes them.
        future = asyncio.ensure_future(
            application(scope=scope, receive=input_queue.get, send=send)
        )
        if isinstance(future, asyncio.Task):
            future.set_name(f"{type(self).__name__} application {scope_id!r}")
        self.application_instances[scope_id] = {
            "input_queue": input_queue,
            "future": future,
            "scope": scope,
            "last_used": time.time(),
        }
        return input_queue

    def delete_oldest_application_instance(self) -> None:
        """Remove the least recently used application instance.

        That is the one with the smallest ``last_used``; of several, the one
        created or reused longest ago. Does nothing when there are none.
        """
        if not self.application_instances:
            return
        oldest = min(
            self.application_instances,
            key=lambda scope_id: self.application_instances[scope_id]["last_used"],
        )
        self.delete_application_instance(oldest)

    def delete_application_instance(self, scope_id: Hashable) -> None:
        """Remove the instance for ``scope_id`` and cancel its task if it is running.

        Returns at once; the task is awaited later by :meth:`application_checker`
        or at shutdown, and an exception it ends with, other than its
        cancellation, goes to :meth:`application_exception`. Raises
        :exc:`KeyError` for an unknown ``scope_id``.
        """
        try:
            details = self.application_instances.pop(scope_id)
        except KeyError:
            msg = (
                f"no application instance with scope_id {scope_id!r} to delete; "
                f"it was never created or was already removed (finished "
                f"instances are removed by application_checker()); check "
                f"'scope_id in server.application_instances' first"
            )
            raise KeyError(msg) from None
        future: asyncio.Future[Any] = details["future"]
        if future.done():
            if _failure(future) is not None:
                self._retired[future] = details
            return
        future.cancel()
        self._retired[future] = details
        future.add_done_callback(self._forget_if_quiet)

    async def application_checker(self) -> None:
        """Remove finished instances and report their exceptions, forever.

        Every :attr:`application_checker_interval` seconds, each finished
        instance leaves ``application_instances`` and, if it raised, its
        exception and details go to :meth:`application_exception`. Instances
        already deleted are collected the same way once their task ends.
        """
        while True:
            await asyncio.sleep(self.application_checker_interval)
            for scope_id, details in list(self.application_instances.items()):
                future: asyncio.Future[Any] = details["future"]
                if not future.done():
                    continue
                exception = _failure(future)
                if exception is not None:
                    await self.application_exception(exception, details)
                # application_exception() may have removed or replaced it.
                if self.application_instances.get(scope_id) is details:
                    del self.application_instances[scope_id]
            for future, details in list(self._retired.items()):
                if future.done() and self._retired.pop(future, None) is not None:
                    exception = _failure(future)
                    if exception is not None:
                        await self.application_exception(exception, details)

    async def application_exception(
        self, exception: BaseException, application_details: dict[str, Any]
    ) -> None:
        """Handle an exception an application instance ended with.

        Logs it at ERROR level with its traceback, on the
        ``asgiref_core.server`` logger. ``application_details`` is
        the instance's entry from ``application_instances``. Override it to do
        more.
        """
        _logger.error("Exception inside application: %s", exception, exc_info=exception)

    # --- machinery ---------------------------------------------------------------

    def _forget_if_quiet(self, future: asyncio.Future[Any]) -> None:
        # A deleted instance that ended by its cancellation, or returned, has
        # nothing to report: drop it now, so that a server whose checker is
        # overridden does not collect them.
        if _failure(future) is None:
            self._retired.pop(future, None)

    async def _shut_down(
        self,
        handler: asyncio.Future[Any],
        checker: asyncio.Future[Any],
        propagating: BaseException | None,
    ) -> None:
        """Cancel and await everything still running, then report what failed."""
        interrupted = False
        # Repeat until nothing runs: an instance's clean-up may start another.
        while pending := [
            future
            for future in (
                handler,
                checker,
                *(details["future"] for details in self.application_instances.values()),
                *self._retired,
            )
            if not future.done()
        ]:
            for future in pending:
                future.cancel()
            interrupted = await _await_all(pending) or interrupted
        for future, role in ((handler, "handle()"), (checker, "application_checker()")):
            exception = _failure(future)
            # KeyboardInterrupt and SystemExit left the event loop as they were
            # raised; only ordinary errors would otherwise go unseen.
            if isinstance(exception, Exception) and exception is not propagating:
                _logger.error(
                    "%s.%s raised while the server was shutting down",
                    type(self).__name__,
                    role,
                    exc_info=exception,
                )
        # Take every outcome first, so that each exception counts as retrieved
        # even if reporting is interrupted.
        finished = [*self.application_instances.values(), *self._retired.values()]
        self.application_instances.clear()
        self._retired.clear()
        failures = [
            (exception, details)
            for details in finished
            if (exception := _failure(details["future"])) is not None
        ]
        for exception, details in failures:
            try:
                await self.application_exception(exception, details)
            except asyncio.CancelledError:
                interrupted = True
            except Exception:
                _logger.exception(
                    "%s.application_exception() failed while the server was "
                    "shutting down",
                    type(self).__name__,
                )
        if interrupted:
            raise asyncio.CancelledError


def _failure(future: asyncio.Future[Any]) -> BaseException | None:
    """What a finished future raised; ``None`` if it returned or was cancelled."""
    if not future.done() or future.cancelled():
        return None
    return future.exception()


async def _await_all(futures: Iterable[asyncio.Future[Any]]) -> bool:
    """Wait until every future is done; whether this task was cancelled meanwhile.

    A cancellation of the waiting task does not stop the wait: it cancels the
    futures again (one that handled the first cancellation may be slow to
    finish) and is reported through the return value.
    """
    interrupted = False
    pending = {future for future in futures if not future.done()}
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            interrupted = True
            for future in pending:
                future.cancel()
    return interrupted


def _message_type(message: Any) -> str:
    """The message's ``"type"`` for error messages, or a description of it."""
    if isinstance(message, dict) and "type" in message:
        return repr(message["type"])
    return type(message).__name__
