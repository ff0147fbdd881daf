"""The harness behind ``asgi_server``, imported when the fixture first runs.

The harness runs the server's ``arun()`` in the background on the test's
serving loop and wraps three of its methods on the instance (never on the
class): ``get_or_create_application_instance``, to learn which scope id each
new instance belongs to; ``application_send``, to record what each instance
sends (the subclass's own delivery still runs, unless it is not implemented);
and, when the subclass has none of its own, ``handle``, which then just waits.
At teardown ``arun()`` is cancelled and the server must have cleaned up after
itself: no instance left in ``application_instances``, none still running.
"""

from __future__ import annotations

import asyncio
import contextvars
import traceback
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from asgiref_core.testing import Transcript
from pytest_asgiref._fixtures import loaded_app
from pytest_asgiref._loops import ServingLoop
from pytest_asgiref._markers import fail_for
from pytest_asgiref._portal import Portal

__all__ = ["BlockingServerHarness", "ServerFactory", "ServerHarness"]

_UNSET: Final[Any] = object()

# The scope id whose instance is being created; the instance's task copies the
# context at creation, so its send() calls still see it.
_SCOPE_ID: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "pytest_asgiref.asgi_server.scope_id", default=_UNSET
)


def _base_method(method: object) -> bool:
    """Whether ``method`` is StatelessServer's own, not-implemented one."""
    qualname = getattr(getattr(method, "__func__", method), "__qualname__", "")
    return isinstance(qualname, str) and qualname.startswith("StatelessServer.")


def _describe_error(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).rstrip()


@dataclass(eq=False)
class _Instances:
    """What the harness knows about one scope id."""

    scope: Any = None
    unread: deque[Any] = field(default_factory=deque)
    sent: list[Any] = field(default_factory=list)
    transcript: Transcript = field(default_factory=Transcript)
    # One task per instance started for the scope id, oldest first.
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)
    waiters: set[asyncio.Future[None]] = field(default_factory=set)

    def wake(self, *_: object) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def running(self) -> bool:
        return bool(self.futures) and not self.futures[-1].done()

    def unreported_error(self) -> BaseException | None:
        for future in self.futures:
            if future.done() and not future.cancelled():
                error = future.exception()
                if error is not None and id(error) not in self.reported:
                    return error
        return None


class ServerHarness:
    """``asgi_server(...)`` in async tests: a running server, fed and read.

    :meth:`send` passes a message to the instance for a scope id (starting it
    when needed); :meth:`receive` returns the next message that instance
    passed to ``application_send``. ``server`` is the server itself.
    """

    def __init__(
        self, server: Any, loop: asyncio.AbstractEventLoop, item: pytest.Item
    ) -> None:
        #: The server under test.
        self.server = server
        self._loop = loop
        self._item = item
        self._name = type(server).__name__
        self._instances: dict[Hashable, _Instances] = {}
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self._arun_reported = False
        self._forward = not _base_method(server.application_send)
        self._wrap(server)

    # --- the wrapped server methods, run on the loop ---------------------------

    def _wrap(self, server: Any) -> None:
        create = server.get_or_create_application_instance
        deliver = server.application_send
        handle = server.handle

        def get_or_create_application_instance(scope_id: Any, scope: Any) -> Any:
            token = _SCOPE_ID.set(scope_id)
            try:
                queue = create(scope_id, scope)
            finally:
                _SCOPE_ID.reset(token)
            details = server.application_instances.get(scope_id)
            if isinstance(details, dict) and "future" in details:
                instances = self._instances_for(scope_id)
                future = details["future"]
                if future not in instances.futures:
                    instances.futures.append(future)
                    future.add_done_callback(instances.wake)
            return queue

        async def application_send(scope: Any, message: Any) -> None:
            self._capture(scope, message)
            if self._forward:
                try:
                    await deliver(scope, message)
                except NotImplementedError:
                    self._forward = False

        async def waiting_handle() -> None:
            if not _base_method(handle):
                try:
                    await handle()
                except NotImplementedError:
                    pass
                else:
                    return
            await asyncio.get_running_loop().create_future()

        server.get_or_create_application_instance = get_or_create_application_instance
        server.application_send = application_send
        server.handle = waiting_handle

    def _instances_for(self, scope_id: Hashable) -> _Instances:
        instances = self._instances.get(scope_id)
        if instances is None:
            instances = self._instances[scope_id] = _Instances()
        return instances

    def _capture(self, scope: Any, message: Any) -> None:
        scope_id = _SCOPE_ID.get()
        if scope_id is _UNSET:
            scope_id = next(
                (
                    key
                    for key, details in self.server.application_instances.items()
                    if details.get("scope") is scope
                ),
                None,
            )
        instances = self._instances_for(scope_id)
        instances.unread.append(message)
        instances.sent.append(message)
        instances.transcript.record("from app", message)
        instances.wake()

    # --- running -----------------------------------------------------------------

    def start(self) -> None:
        """Start ``arun()`` as a task on the serving loop (called on its thread)."""
        self._task = self._loop.create_task(self._arun())

    async def _arun(self) -> None:
        self._started = True
        try:
            await self.server.arun()
        finally:
            for instances in self._instances.values():
                instances.wake()

    @property
    def running(self) -> bool:
        """Whether the server's ``arun()`` still runs."""
        return self._task is not None and not self._task.done()

    def _check_running(self) -> None:
        task = self._task
        if task is None or not task.done():
            return
        if not task.cancelled() and task.exception() is not None:
            self._arun_reported = True
            msg = f"asgi_server: {self._name}.arun() ended with an error"
            raise RuntimeError(msg) from task.exception()
        how = "was stopped" if self._stopped else "returned (its handle() ended)"
        msg = (
            f"asgi_server: {self._name} is not running any more: its arun() "
            f"{how}; start another with asgi_server(...)"
        )
        raise RuntimeError(msg)

    # --- the test's side -------------------------------------------------------

    def _raise_unreported(self, instances: _Instances) -> None:
        error = instances.unreported_error()
        if error is not None:
            instances.reported.add(id(error))
            raise error

    async def send(
        self, scope_id: Hashable, scope: Any = None, message: Any = None
    ) -> None:
        """Put ``message`` on the input queue of the instance for ``scope_id``.

        Starts the instance with ``scope`` when none runs for ``scope_id``
        (``scope`` may be left out once given: the last one is reused).
        ``message=None`` only starts the instance. Raises the exception an
        earlier instance for ``scope_id`` failed with, if nobody saw it yet.
        """
        self._check_running()
        instances = self._instances_for(scope_id)
        self._raise_unreported(instances)
        if scope is None:
            scope = instances.scope
            if scope is None and not instances.running:
                msg = (
                    f"asgi_server: no application instance runs for scope id "
                    f"{scope_id!r}, and no scope was given to start one; pass "
                    f"the scope: send({scope_id!r}, scope, message)"
                )
                raise ValueError(msg)
        else:
            instances.scope = scope
        queue = self.server.get_or_create_application_instance(scope_id, scope)
        if message is not None:
            instances.transcript.record("to app", message)
            queue.put_nowait(message)

    async def _wait(self, instances: _Instances, timeout: float) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        instances.waiters.add(waiter)
        try:
            await asyncio.wait((waiter,), timeout=max(timeout, 0))
        finally:
            instances.waiters.discard(waiter)

    async def receive(self, scope_id: Hashable, timeout: float = 1.0) -> Any:
        """The next message the instance for ``scope_id`` sent, waiting up to
        ``timeout`` seconds.

        Raises the exception the instance failed with, and
        :class:`TimeoutError`, describing what it sent so far, if no message
        came in time.
        """
        instances = self._instances_for(scope_id)
        deadline = self._loop.time() + timeout
        while True:
            if instances.unread:
                return instances.unread.popleft()
            self._raise_unreported(instances)
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                head = f"waited {timeout}s for a message"
                break
            if not self.running and not instances.running:
                head = "asked for a message"
                break
            await self._wait(instances, remaining)
        raise TimeoutError(self._describe_wait(scope_id, instances, head))

    async def receive_nothing(self, scope_id: Hashable, timeout: float = 0.1) -> bool:
        """Whether the instance for ``scope_id`` sends nothing within ``timeout``
        seconds; a message that came stays there for :meth:`receive`."""
        instances = self._instances_for(scope_id)
        if not instances.unread:
            await self._wait(instances, timeout)
        if not instances.unread:
            self._raise_unreported(instances)
        return not instances.unread

    async def wait(self, scope_id: Hashable, timeout: float = 1.0) -> None:
        """Wait up to ``timeout`` seconds for the instance for ``scope_id`` to
        end; raise what it raised, or :class:`TimeoutError`."""
        instances = self._instances_for(scope_id)
        if not instances.futures:
            msg = (
                "asgi_server: no application instance was started for scope id "
                f"{scope_id!r}; send() it a message first"
            )
            raise RuntimeError(msg)
        future = instances.futures[-1]
        if not future.done():
            await asyncio.wait((future,), timeout=timeout)
        self._raise_unreported(instances)
        if not future.done():
            msg = (
                f"asgi_server: the application instance for scope id {scope_id!r} "
                f"of {self._name} did not end within {timeout}s"
            )
            raise TimeoutError(msg)

    def sent(self, scope_id: Hashable) -> list[Any]:
        """Every message the instances for ``scope_id`` sent so far, read or not."""
        instances = self._instances.get(scope_id)
        return [] if instances is None else list(instances.sent)

    def _describe_wait(
        self, scope_id: Hashable, instances: _Instances, head: str
    ) -> str:
        if not instances.futures:
            known = ", ".join(repr(key) for key in self._instances if key != scope_id)
            state = (
                "no instance was ever started for it (scope ids with instances: "
                f"{known or 'none'})"
            )
        elif instances.running:
            state = "its instance is still running"
        elif instances.futures[-1].cancelled():
            state = "its instance was cancelled (evicted, or the server stopped)"
        else:
            state = "its instance returned"
        if not self.running:
            state += f"; {self._name} is not running any more"
        count = len(instances.sent)
        return (
            f"asgi_server: {head} from the application "
            f"instance for scope id {scope_id!r} of {self._name}, but none came; "
            f"{state}. It had sent {count} message(s), all already received; "
            f"the conversation so far:\n{instances.transcript.format()}"
        )

    # --- stopping ----------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> list[str]:
        """Stop ``arun()`` and check the server's clean-up; the problems found."""
        if self._stopped or self._task is None:
            return []
        self._stopped = True
        task = self._task
        problems: list[str] = []
        while not self._started and not task.done():
            # A task cancelled before its first step would never run arun()'s
            # own clean-up: let it start first.
            await asyncio.sleep(0)
        if not task.done():
            task.cancel()
            await asyncio.wait((task,), timeout=timeout)
        name = self._name
        if not task.done():
            problems.append(
                f"asgi_server: {name}.arun() did not stop within {timeout}s of being "
                "cancelled; its instances must let asyncio.CancelledError propagate"
            )
        elif not task.cancelled() and task.exception() is not None:
            error = task.exception()
            if error is not None and not self._arun_reported:
                problems.append(
                    f"asgi_server: {name}.arun() raised:\n{_describe_error(error)}"
                )
        left = list(self.server.application_instances)
        running = [key for key, inst in self._instances.items() if inst.running]
        if task.done() and (left or running):
            problems.append(
                f"asgi_server: {name} did not clean up its application instances "
                f"when it stopped: scope ids still in application_instances: "
                f"{', '.join(map(repr, left)) or 'none'}; still running: "
                f"{', '.join(map(repr, running)) or 'none'}. Its arun() must cancel "
                "and await every instance and empty application_instances, as "
                "StatelessServer.arun() does"
            )
        # Nothing may stay behind on the loop, whatever the server did.
        pending = [
            future
            for inst in self._instances.values()
            for future in inst.futures
            if not future.done()
        ]
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for scope_id, instances in self._instances.items():
            error = instances.unreported_error()
            while error is not None:
                instances.reported.add(id(error))
                problems.append(
                    f"asgi_server: the application instance for scope id "
                    f"{scope_id!r} of {name} raised, and the test never received "
                    f"the error:\n{_describe_error(error)}"
                )
                error = instances.unreported_error()
        return problems

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the server now and fail the test if it did not clean up."""
        problems = await self.close(timeout)
        if problems:
            fail_for(self._item, "\n".join(problems))


class BlockingServerHarness:
    """``asgi_server(...)`` in sync tests: :class:`ServerHarness`, blocking."""

    def __init__(self, harness: ServerHarness, portal: Portal) -> None:
        #: The async harness this one drives.
        self.harness = harness
        self._call = portal.call

    @property
    def server(self) -> Any:
        return self.harness.server

    @property
    def running(self) -> bool:
        return self.harness.running

    def send(self, scope_id: Hashable, scope: Any = None, message: Any = None) -> None:
        self._call(self.harness.send(scope_id, scope, message))

    def receive(self, scope_id: Hashable, timeout: float = 1.0) -> Any:
        return self._call(self.harness.receive(scope_id, timeout))

    def receive_nothing(self, scope_id: Hashable, timeout: float = 0.1) -> bool:
        return self._call(self.harness.receive_nothing(scope_id, timeout))

    def wait(self, scope_id: Hashable, timeout: float = 1.0) -> None:
        self._call(self.harness.wait(scope_id, timeout))

    def sent(self, scope_id: Hashable) -> list[Any]:
        return self.harness.sent(scope_id)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server now and fail the test if it did not clean up."""
        problems = self._call(self.harness.close(timeout))
        if problems:
            fail_for(self.harness._item, "\n".join(problems))


async def _start(harness: ServerHarness) -> None:
    harness.start()


class ServerFactory:
    """The ``asgi_server`` fixture: call it with a server class to run one."""

    def __init__(self, request: pytest.FixtureRequest, loop: ServingLoop) -> None:
        self._request = request
        self._loop = loop
        self.harnesses: list[ServerHarness] = []

    def __call__(
        self,
        server_class: Any,
        application: Any = None,
        max_applications: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Build ``server_class(application, max_applications, **kwargs)`` and run it.

        ``application`` defaults to the test's application (the ``asgi_app``
        marker, ``--asgi-app`` or the hook); ``max_applications`` to the
        class's own default. A server built already may be passed instead of
        a class, alone. Returns a :class:`ServerHarness` in async tests and a
        :class:`BlockingServerHarness` in sync ones.
        """
        item = self._request.node
        if isinstance(server_class, type):
            if application is None:
                application = loaded_app(self._request).asgi
            if max_applications is not None:
                kwargs["max_applications"] = max_applications
            server = server_class(application, **kwargs)
        elif callable(getattr(server_class, "arun", None)):
            if application is not None or max_applications is not None or kwargs:
                fail_for(
                    item,
                    f"asgi_server({server_class!r}, ...): a server built already "
                    "takes no other arguments; pass its class to have it built",
                )
            server = server_class
        else:
            msg = (
                f"asgi_server({server_class!r}): expected a StatelessServer "
                "subclass (or one built already), such as asgi_server(MyServer)"
            )
            fail_for(item, msg)
            raise TypeError(msg)  # unreachable: pytest.fail raises
        harness = ServerHarness(server, self._loop.loop, item)
        self.harnesses.append(harness)
        portal = self._loop.portal
        if portal is None:
            harness.start()
            return harness
        portal.call(_start(harness))
        return BlockingServerHarness(harness, portal)

    async def close_all(self) -> list[str]:
        problems: list[str] = []
        for harness in self.harnesses:
            problems.extend(await harness.close())
        return problems
