"""One ``sync_to_async`` call in flight, and the context hand-back both bridges use."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asgiref_core._bridge_state import (
    occupying,
    pending_thread_sensitive,
    thread_bound_vars,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    ExcInfo: TypeAlias = (
        tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None]
    )

__all__: list[str] = []

_MISSING = object()


def adopt_context(context: contextvars.Context) -> None:
    """Make the values in ``context`` current in the running context.

    This is how a callee's context-variable writes become visible to its caller
    once a bridge returns. Only changed variables are set, so an unchanged
    context costs one lookup per variable.
    """
    for var, value in context.items():
        # The occupancy marker describes the callee's position only, and
        # thread-bound variables must stay with their thread.
        if (
            var.get(_MISSING) is not value
            and var is not occupying
            and var not in thread_bound_vars
        ):
            var.set(value)


class SyncCall:
    """A sync function call queued for, or running on, a worker thread.

    Created on the event loop thread; ``run`` executes on the worker thread and
    hands the outcome back to the loop with ``call_soon_threadsafe``, where it
    completes ``future``. It also carries what a nested ``async_to_sync`` on
    the worker needs: the loop to run on and where to register its task so
    that cancelling the caller reaches it.
    """

    __slots__ = (
        "child",
        "children",
        "context",
        "done",
        "error",
        "exc_info",
        "func",
        "future",
        "loop",
        "owner",
        "queued_on",
        "returned",
        "skip",
        "task",
        "thread",
        "value",
    )

    def __init__(
        self,
        owner: Any,
        func: Callable[..., Any],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        context: contextvars.Context,
        child: Callable[[], Any],
        exc_info: ExcInfo,
        task: asyncio.Task[Any] | None,
    ) -> None:
        self.owner = owner
        self.func = func
        self.loop = loop
        self.future = future
        self.context = context
        self.child = child
        self.exc_info = exc_info
        self.task = task
        # Tasks that a nested async_to_sync started on ``loop`` for this call.
        self.children: list[asyncio.Task[Any]] = []
        self.thread: threading.Thread | None = None
        # Where routing sent it: a thread, or an executor given by the user.
        self.queued_on: object = None
        self.skip = False
        # Set on the worker thread once the function has returned (or raised)
        # and the outcome is on its way to the loop: the call no longer holds
        # its thread, although ``done`` waits for the loop to deliver it.
        self.returned = False
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        """Run the call on the current (worker) thread and report back."""
        if self.skip:
            # The caller was cancelled before the call started.
            self.done = True
            pending_thread_sensitive.pop(id(self), None)
            return
        self.thread = threading.current_thread()
        try:
            value = self.owner.thread_handler(
                self.loop, self.exc_info, self, self.context.run, self.child
            )
        except BaseException as exc:
            self._report(None, exc)
        else:
            self._report(value, None)

    def _report(self, value: Any, error: BaseException | None) -> None:
        self.returned = True
        try:
            self.loop.call_soon_threadsafe(self._deliver, value, error)
        except RuntimeError:
            # The loop has been closed: nobody is left to receive the outcome.
            self.done = True
            pending_thread_sensitive.pop(id(self), None)

    def _deliver(self, value: Any, error: BaseException | None) -> None:
        # Runs on the loop thread, so it cannot race the awaiting coroutine.
        self.done = True
        self.value = value
        self.error = error
        pending_thread_sensitive.pop(id(self), None)
        future = self.future
        if not future.done():
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def describe(self) -> str:
        """A short human description of the call, for error messages."""
        return describe_callable(self.func)


def describe_callable(func: object) -> str:
    """``module.qualname`` of a callable, or its repr."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if name is None:
        return repr(func)
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def submit_to_default_executor(
    loop: asyncio.AbstractEventLoop, run: Callable[[], object]
) -> None:
    """Run ``run()`` in the loop's default executor; it must report back itself.

    run_in_executor wraps the result in a second future and wakes the loop a
    second time; callers here report back by themselves, so go to the
    executor directly once the loop has created it. ``run`` must not raise.
    """
    executor: Executor | None = getattr(loop, "_default_executor", None)
    if executor is None:
        loop.run_in_executor(None, run)
    else:
        executor.submit(run)


async def after_cancel(call: SyncCall) -> Any:
    """The caller of a sync call was cancelled; decide what happens to it.

    The sync code itself cannot be interrupted. If it is inside a nested
    ``async_to_sync`` whose coroutine runs on this loop, the cancellation is
    passed into that coroutine; should the coroutine absorb it, the call is
    waited for and its result returned, as asgiref does.
    """
    if call.done and isinstance(call.error, asyncio.CancelledError):
        # The sync code itself raised it: keep its message and traceback.
        raise call.error
    if call.children:
        child = call.children[0]
        child.cancel()
        try:
            await child
        except asyncio.CancelledError:
            pass
        else:
            if not call.done:
                call.future = call.loop.create_future()
                return await call.future
            if call.error is not None:
                raise call.error
            return call.value
    # A call that has not started yet never will.
    call.skip = True
    raise asyncio.CancelledError
