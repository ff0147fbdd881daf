"""``ApplicationCommunicator``: run an ASGI application under a test's control.

The test plays the server. It puts messages on the application's ``receive``
side with :meth:`~ApplicationCommunicator.send_input` and reads what the
application passed to ``send`` with :meth:`~ApplicationCommunicator.receive_output`.

The defaults match asgiref 3.13's class, which Django Channels subclasses:
the application runs as a task in an empty context, a receive timeout cancels
it and raises :class:`TimeoutError`, and an exception the application raised
comes out of the next call. On top of that:

* a wait ends as soon as the application finishes, instead of sitting out the
  timeout, and the error says what was awaited, for how long, and the last
  messages each way (a bounded :class:`~asgiref_core.testing.Transcript`);
* ``cancel_on_timeout=False`` leaves the application running after a receive
  timeout, so a test can read until nothing is left;
* ``validate=`` checks the conversation with :mod:`asgiref_core.validate`;
* :meth:`~ApplicationCommunicator.aclose` (or ``async with``) cancels and awaits
  the application, so nothing is left pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Literal, NoReturn, Protocol, TypeAlias, cast

from asgiref_core._sync_call import describe_callable
from asgiref_core._testing_errors import ClientDisconnectedError, raised_by_disconnect
from asgiref_core._transcript import FROM_APP, TO_APP, Transcript
from asgiref_core.compatibility import guarantee_single_callable
from asgiref_core.validate import (
    ASGIProtocolError,
    ASGIProtocolWarning,
    Checker,
    check_scope,
)

__all__ = ["ApplicationCommunicator", "ValidateMode"]

Message: TypeAlias = dict[str, Any]
#: ``False`` (no checks), ``True`` or ``"raise"`` (a violation fails the
#: conversation) or ``"warn"`` (a violation is reported as an
#: :class:`~asgiref_core.validate.ASGIProtocolWarning` and the conversation
#: goes on).
ValidateMode: TypeAlias = bool | Literal["raise", "warn"]

# How long an application gets to finish once it has been cancelled. One that
# swallows the cancellation would otherwise hang the test forever.
CANCEL_GRACE = 1.0


class _Queue(Protocol):
    """What the communicators use of a queue: :class:`asyncio.Queue` fits."""

    def qsize(self) -> int: ...
    def empty(self) -> bool: ...
    def put_nowait(self, item: Message, /) -> None: ...
    async def put(self, item: Message, /) -> None: ...
    def get_nowait(self) -> Message: ...
    async def get(self) -> Message: ...


class _OutputQueue(asyncio.Queue[Message]):
    """The application's ``send`` side: an asyncio queue that can wake one reader.

    The communicator waits on a plain future instead of ``queue.get()`` under
    ``asyncio.timeout``: the future is also completed when the application
    finishes, and it costs one timer instead of a timeout context per read.
    """

    waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Message) -> None:
        super().put_nowait(item)
        self.wake()

    def wake(self) -> None:
        _wake_reader(self)


def _wake_reader(queue: _OutputQueue | _MessageQueue) -> None:
    waiter = queue.waiter
    if waiter is not None:
        queue.waiter = None
        if not waiter.done():
            waiter.set_result(None)


class _MessageQueue:
    """A lean unbounded queue with the everyday part of :class:`asyncio.Queue`'s API.

    The protocol communicators use it for both directions: it is several
    times cheaper to create and to use than :class:`asyncio.Queue`, whose
    bookkeeping for ``join()`` and bounded sizes they do not need. It offers
    ``put``, ``put_nowait``, ``get``, ``get_nowait``, ``empty``, ``full`` and
    ``qsize``, and wakes the communicator's reader like :class:`_OutputQueue`.
    """

    __slots__ = ("_getters", "_items", "waiter")

    maxsize = 0

    def __init__(self) -> None:
        self._items: deque[Message] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Message) -> None:
        self._items.append(item)
        if self._getters:
            self._wake_getter()
        self.wake()

    async def put(self, item: Message) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Message:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> Message:
        while not self._items:
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                # Woken but cancelled before taking the item: pass the wake on.
                if self._items and self._getters:
                    self._wake_getter()
                raise
        return self._items.popleft()

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def wake(self) -> None:
        """Wake the communicator's reader, if one waits (see :class:`_OutputQueue`)."""
        _wake_reader(self)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Conversation:
    """The application's side of a communicator: what its receive and send touch.

    Kept apart from the communicator on purpose: the application task holds
    this object, not the communicator, so a communicator the test dropped is
    still garbage-collected (and cancels its application), as asgiref's is.
    """

    __slots__ = (
        "checker",
        "closed",
        "input_queue",
        "output_queue",
        "returned_checked",
        "transcript",
        "violation",
        "warn",
    )

    def __init__(self, transcript_size: int, *, lean: bool) -> None:
        self.input_queue: _Queue
        self.output_queue: _OutputQueue | _MessageQueue
        if lean:
            self.input_queue, self.output_queue = _MessageQueue(), _MessageQueue()
        else:
            # asgiref's communicator exposes asyncio queues; keep them.
            self.input_queue, self.output_queue = asyncio.Queue(), _OutputQueue()
        self.transcript = Transcript(transcript_size)
        self.checker: Checker | None = None
        self.warn = False
        self.violation: ASGIProtocolError | None = None
        # Set once the client is gone: send() then raises, as ASGI 2.4 allows.
        self.closed: str | None = None
        self.returned_checked = False

    async def receive(self) -> Message:
        message = await self.input_queue.get()
        self.transcript.record(TO_APP, message)
        if self.checker is not None:
            self.run_check(self.checker.received, message)
        return message

    async def send(self, message: Message) -> None:
        self.transcript.record(FROM_APP, message)
        if self.checker is not None:
            self.run_check(self.checker.sent, message)
        if self.closed is not None:
            kind = message.get("type")
            msg = f"{self.closed}; the application sent {kind!r} afterwards"
            raise ClientDisconnectedError(msg)
        self.output_queue.put_nowait(message)

    def run_check(
        self, check: Callable[..., Any], *arguments: Any, **keywords: Any
    ) -> Any:
        try:
            return check(*arguments, **keywords)
        except ASGIProtocolError as error:
            if self.warn:
                warnings.warn(ASGIProtocolWarning(str(error)), stacklevel=3)
                return None
            if self.violation is None:
                self.violation = error
                error.add_note(transcript_note(self.transcript))
            # The reader may be waiting for output that will now never come.
            self.output_queue.wake()
            raise

    def finished(self, task: asyncio.Task[None]) -> None:
        """The application task ended: check how (once), and wake the reader.

        Runs as the task's done callback, and earlier from a reader that finds
        the task done before the callback had its turn.
        """
        if self.returned_checked:
            return
        self.returned_checked = True
        checker = self.checker
        # A client that left may legitimately leave a conversation unfinished.
        if (
            checker is not None
            and self.closed is None
            and not task.cancelled()
            and task.exception() is None
        ):
            # Recorded by run_check; the next read raises it.
            with contextlib.suppress(ASGIProtocolError):
                self.run_check(checker.returned)
        self.output_queue.wake()


def transcript_note(transcript: Transcript) -> str:
    return f"Last {len(transcript)} message(s), oldest first:\n{transcript.format()}"


class ApplicationCommunicator:
    """Run ``application`` on ``scope`` and exchange messages with it.

    :param application: an ASGI 3 application, or an ASGI 2 (double-callable) one.
    :param scope: the connection scope the application is called with.
    :param cancel_on_timeout: when a :meth:`receive_output` wait times out,
        cancel the application (the default, as asgiref does) or leave it
        running so that the test can carry on.
    :param validate: check the scope and every message against the ASGI
        specification (see :data:`ValidateMode`); off by default here, on by
        default in the protocol communicators.
    :param transcript_size: how many recent messages to keep for error messages.

    The application starts the first time the communicator needs it (the
    :attr:`future` attribute), so a communicator can be built outside a
    running event loop.
    """

    # The protocol communicators set this: they need no asyncio.Queue.
    _lean_queues: ClassVar[bool] = False

    def __init__(
        self,
        application: object,
        scope: Any,
        *,
        cancel_on_timeout: bool = True,
        validate: ValidateMode = False,
        transcript_size: int = 20,
    ) -> None:
        self.application = guarantee_single_callable(cast(Any, application))
        self.scope = scope
        self.cancel_on_timeout = cancel_on_timeout
        self._future: asyncio.Task[None] | None = None
        self._noted_error: BaseException | None = None
        # The last failure raised to the caller, so that aclose() at teardown
        # can leave out what the test has already seen.
        self._raised: BaseException | None = None
        conversation = self._conversation = _Conversation(
            transcript_size, lean=self._lean_queues
        )
        #: Messages for the application's ``receive()``: an
        #: :class:`asyncio.Queue` here, as in asgiref; a leaner queue with the
        #: same everyday methods in the protocol communicators.
        self.input_queue: _Queue = conversation.input_queue
        #: Messages the application passed to ``send()``, not yet read.
        self.output_queue: _Queue = conversation.output_queue
        #: The latest messages in both directions, for error messages and
        #: hang reports.
        self.transcript = conversation.transcript
        self._start_validation(validate, trusted=False)

    def _start_validation(self, validate: ValidateMode, *, trusted: bool) -> None:
        """Set up checking; ``trusted``: the scope came whole from a builder."""
        if not validate:
            return
        if validate not in (True, "raise", "warn"):
            msg = f"validate must be False, True, 'raise' or 'warn' (got {validate!r})"
            raise ValueError(msg)
        conversation = self._conversation
        conversation.warn = validate == "warn"
        checker = conversation.run_check(check_scope, self.scope, trusted=trusted)
        if checker is None:
            # Warn mode reported the scope's problems; still check the messages.
            checker = check_scope(self.scope, trusted=True)
        conversation.checker = checker

    # -- the application task --------------------------------------------------

    @property
    def future(self) -> asyncio.Task[None]:
        """The task running the application, started on first use."""
        future = self._future
        if future is None:
            # An empty context: the application must not see context variables
            # the test happened to set, as it would not under a real server.
            conversation = self._conversation
            receive: Any = conversation.receive
            send: Any = conversation.send
            coroutine = cast(
                "Coroutine[Any, Any, None]", self.application(self.scope, receive, send)
            )
            future = self._future = asyncio.get_running_loop().create_task(
                coroutine,
                name=self._task_name(),
                context=contextvars.Context(),
            )
            future.add_done_callback(conversation.finished)
        return future

    def _task_name(self) -> str:
        scope = self.scope
        kind = scope.get("type", "?") if isinstance(scope, dict) else "?"
        return f"ASGI {kind} application {describe_callable(self.application)}"

    @property
    def _violation(self) -> ASGIProtocolError | None:
        return self._conversation.violation

    @property
    def _checker(self) -> Checker | None:
        return self._conversation.checker

    def _output(self) -> _OutputQueue | _MessageQueue:
        return self._conversation.output_queue

    # -- asgiref's API ---------------------------------------------------------

    async def send_input(self, message: Message) -> None:
        """Give ``message`` to the application's ``receive``."""
        if self.future.done() or self._violation is not None:
            self._raise_if_failed()
        await self.input_queue.put(message)

    async def receive_output(self, timeout: float = 1) -> Message:
        """The next message the application sends, waiting up to ``timeout`` seconds.

        Raises what the application raised if it failed, and
        :class:`TimeoutError` if no message came in time (cancelling the
        application unless ``cancel_on_timeout`` is false) or the application
        returned without sending one.
        """
        if self.future.done():
            # asgiref's order: a failed application's error comes before any
            # message still queued (the error notes how many there are).
            self._raise_if_failed()
        return await self._expect_output("a message", timeout)

    async def receive_nothing(
        self, timeout: float = 0.1, interval: float = 0.01
    ) -> bool:
        """Whether the application sends nothing within ``timeout`` seconds.

        Returns ``False`` as soon as a message is waiting (it stays queued for
        :meth:`receive_output`). ``interval`` is accepted for compatibility:
        the wait ends on the message itself rather than by polling.
        """
        del interval
        future = self.future
        queue = self._output()
        if future.done():
            self._raise_if_failed()
        elif queue.empty():
            await self._wait_for_output(timeout)
            if queue.empty():
                self._raise_if_failed()
        return queue.empty()

    async def wait(self, timeout: float = 1) -> None:
        """Wait up to ``timeout`` seconds for the application to return.

        Raises what the application raised. On timeout the application is
        cancelled and :class:`TimeoutError` is raised.
        """
        future = self.future
        if not future.done():
            await self._wait_for_task(future, timeout)
            if not future.done():
                await self._cancel_app()
                raise TimeoutError(self._describe_no_return(timeout, ""))
        self._raise_if_failed(cancelled_ok=True)

    def stop(self, exceptions: bool = True) -> None:
        """Cancel the application if it is running; else raise its error if
        ``exceptions`` is true. Does not wait: prefer :meth:`aclose` in async code.
        """
        future = self._future
        if future is None:
            return
        if not future.done():
            future.cancel()
        elif exceptions:
            self._raise_if_failed(cancelled_ok=True)

    def __del__(self) -> None:
        if getattr(self, "_future", None) is None:
            return  # never started, or __init__ failed part-way
        # RuntimeError: the loop is already closed, and the task went with it.
        with contextlib.suppress(RuntimeError):
            self.stop(exceptions=False)

    # -- beyond asgiref --------------------------------------------------------

    async def aclose(self, *, repeat_seen: bool = True) -> None:
        """Cancel the application if it is still running and wait for it to end.

        Afterwards nothing of this communicator is left pending on the loop.
        Raises the protocol violation or application error the conversation
        ended with; with ``repeat_seen=False`` only if no earlier call raised
        it already (a test fixture's teardown uses that, so that a failure
        the test saw, or expected with ``pytest.raises``, is not reported
        twice).
        """
        if self._future is None:
            return
        seen = self._raised
        try:
            if not self._future.done():
                # An application may end with the error it raised before
                # when cancelled: that counts as seen too.
                await self._cancel_app()
            self._raise_if_failed(cancelled_ok=True)
        except BaseException as error:
            if repeat_seen or error is not seen:
                raise

    async def __aenter__(self) -> ApplicationCommunicator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
            return
        # The block already failed: clean up, but do not hide its exception.
        try:
            await self.aclose()
        except Exception as error:
            exc.add_note(f"The application also failed: {error!r}")

    @property
    def violation(self) -> ASGIProtocolError | None:
        """The first protocol violation seen (``validate="raise"`` only)."""
        return self._violation

    # -- machinery -------------------------------------------------------------

    def _raise_if_failed(self, *, cancelled_ok: bool = False) -> None:
        """Raise the recorded violation, or the application's error, if any.

        A cancelled application is an error too when the caller wanted to talk
        to it, but not when it only waits for it to end.
        """
        future = self._future
        if future is not None and future.done():
            self._conversation.finished(future)
        if self._violation is not None:
            self._raised = self._violation
            raise self._violation
        if future is None or not future.done():
            return
        if future.cancelled():
            if cancelled_ok:
                return
            msg = (
                f"the application {describe_callable(self.application)} was "
                "cancelled (by an earlier timeout, stop() or aclose()) and can "
                "take no more messages; start a new communicator"
            )
            raise RuntimeError(msg)
        error = future.exception()
        if error is not None and raised_by_disconnect(error):
            # ASGI 2.4: an application may let the OSError its send() raised
            # after the client left propagate (or wrap it); that is a normal end.
            return
        if error is not None:
            unread = self.output_queue.qsize()
            if unread and error is not self._noted_error:
                self._noted_error = error
                error.add_note(
                    f"The application had sent {unread} message(s) the test "
                    "never read; they are still in output_queue."
                )
            self._raised = error
            raise error

    async def _next_output(self, timeout: float) -> Message | None:
        """The next queued message, waiting up to ``timeout`` seconds; ``None``
        if none came because of a timeout, a violation or the application ending.

        Messages already sent always come first, even from an application
        that has failed since: nothing it said is lost.
        """
        queue = self._output()
        if queue.empty() and self._violation is None and not self.future.done():
            # Most applications answer within one pass of the loop: let it run
            # once before paying for a waiter and a timer.
            await asyncio.sleep(0)
            deadline = None
            # Woken, the queue can still be empty: another reader of this
            # communicator took the message. Wait again, for what is left.
            while queue.empty() and self._violation is None and not self.future.done():
                now = asyncio.get_running_loop().time()
                if deadline is None:
                    deadline = now + timeout
                elif now >= deadline:
                    break
                await self._wait_for_output(deadline - now)
        if queue.empty():
            return None
        return queue.get_nowait()

    async def _expect_output(self, what: str, timeout: float) -> Message:
        """The next message, or the reason there is none raised (``what`` names
        the message awaited, for the error)."""
        message = await self._next_output(timeout)
        if message is None:
            await self._no_output(what, timeout)
        return message

    async def _no_output(self, what: str, timeout: float) -> NoReturn:
        """Raise the reason :meth:`_next_output` came back empty-handed."""
        self._raise_if_failed()
        if self.future.done():
            msg = self._describe_wait(what, timeout, returned=True)
            raise TimeoutError(msg)
        cancelled = ""
        if self.cancel_on_timeout:
            await self._cancel_app()
            cancelled = " The application was cancelled (cancel_on_timeout=True)."
        msg = self._describe_wait(what, timeout) + cancelled
        raise TimeoutError(msg)

    async def _wait_for_output(self, timeout: float) -> None:
        """Sleep until output arrives, the application ends, or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        queue = self._output()
        # Readers waiting at once share one waiter, so that each is woken.
        waiter = queue.waiter
        if waiter is None or waiter.done():
            waiter = queue.waiter = loop.create_future()
        handle = loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            # A waiter still pending may be another reader's too: leave it.
            if queue.waiter is waiter and waiter.done():
                queue.waiter = None

    @staticmethod
    async def _wait_for_task(task: asyncio.Task[None], timeout: float) -> None:
        if not task.done():
            await asyncio.wait((task,), timeout=timeout)

    async def _cancel_app(self) -> None:
        future = self._future
        if future is None or future.done():
            return
        future.cancel()
        await self._wait_for_task(future, CANCEL_GRACE)
        if not future.done():
            msg = (
                f"the application {describe_callable(self.application)} was "
                f"cancelled but did not stop within {CANCEL_GRACE}s; it must let "
                "asyncio.CancelledError propagate (or return soon after catching it)"
            )
            raise RuntimeError(msg)
        if not future.cancelled() and future.exception() is not None:
            # It failed while being cancelled: that error is the news.
            self._raise_if_failed()

    def _describe_wait(
        self, what: str, timeout: float, *, returned: bool = False
    ) -> str:
        app = describe_callable(self.application)
        if returned:
            return self._describe(
                f"waited for {what} from the application {app}{self._scope_hint()}, "
                "but it returned without sending one."
            )
        return self._describe(
            f"waited {timeout}s for {what} from the application "
            f"{app}{self._scope_hint()}, but none came."
        )

    def _describe_no_return(self, timeout: float, when: str) -> str:
        app = describe_callable(self.application)
        return self._describe(
            f"the application {app}{self._scope_hint()} did not return within "
            f"{timeout}s{when}; it was cancelled."
        )

    def _describe(self, head: str) -> str:
        """``head``, then what the application has not read yet, and the transcript."""
        unread = self.input_queue.qsize()
        pending = (
            f"\n{unread} message(s) sent to the application were never read by it."
            if unread
            else ""
        )
        return f"{head}{pending}\n{self._transcript_note()}"

    def _scope_hint(self) -> str:
        scope = self.scope
        if not isinstance(scope, dict):
            return ""
        hint = f" (scope type {scope.get('type')!r}"
        if "path" in scope:
            hint += f", path {scope['path']!r}"
        return hint + ")"

    def _close(self, reason: str) -> None:
        """The client is gone (``reason`` says how): the application's later
        ``send()`` calls raise :class:`ClientDisconnectedError`."""
        if self._conversation.closed is None:
            self._conversation.closed = reason

    def _ensure_started(self) -> None:
        """Start the application task if it has not started yet."""
        if self._future is None:
            self.future  # noqa: B018 - the property starts it

    def _transcript_note(self) -> str:
        return transcript_note(self.transcript)

    def __repr__(self) -> str:
        state = "not started"
        if self._future is not None:
            state = "finished" if self._future.done() else "running"
        return (
            f"<{type(self).__name__} {describe_callable(self.application)} "
            f"{state}, {len(self.transcript)} message(s) in transcript>"
        )
