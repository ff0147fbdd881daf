"""A deadline for a block of code inside an asyncio task (deprecated).

Kept for code written against asgiref's ``timeout``; new code should use
:func:`asyncio.timeout`, which the standard library has offered since
Python 3.11.
"""

from __future__ import annotations

import asyncio
import warnings
from types import TracebackType
from typing import Any

__all__ = ["timeout"]


class timeout:
    """Cancel the enclosed block if it runs longer than ``timeout`` seconds.

    Use it as ``with timeout(1.5): ...`` or ``async with timeout(1.5): ...``
    from inside a running task. When the deadline passes, the task is cancelled
    and, on leaving the block, the cancellation surfaces as :exc:`TimeoutError`.
    ``None`` disables the deadline; a value of zero or less cancels the task at
    the next turn of the event loop.

    Deprecated: constructing one emits :exc:`DeprecationWarning`; use
    :func:`asyncio.timeout` instead. Passing ``loop`` is deprecated as well;
    without it the running loop is used, so construction outside a running
    loop raises :exc:`RuntimeError`.
    """

    def __init__(
        self,
        timeout: float | None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        warnings.warn(
            "asgiref_core.timeout.timeout is deprecated; use asyncio.timeout() instead",
            DeprecationWarning,
            stacklevel=2,
        )
        if loop is None:
            loop = asyncio.get_running_loop()
        else:
            warnings.warn(
                "the 'loop' argument of asgiref_core.timeout.timeout is "
                "deprecated; leave it out to use the running event loop",
                DeprecationWarning,
                stacklevel=2,
            )
        self._timeout = timeout
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.Handle | None = None
        self._deadline: float | None = None
        self._expired = False
        # The task's cancellation count on entry: anything above it on exit
        # means someone besides this timeout cancelled the task too.
        self._cancelling = 0

    @property
    def expired(self) -> bool:
        """Whether the deadline passed and the task was cancelled for it."""
        return self._expired

    @property
    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative).

        ``None`` before the block is entered and when there is no scheduled
        deadline: with ``timeout=None``, and, as in asgiref, with a timeout of
        zero or less, whose cancellation is queued rather than timed.
        """
        if self._deadline is None:
            return None
        return max(self._deadline - self._loop.time(), 0.0)

    def __enter__(self) -> timeout:
        return self._start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._finish(exc_type, exc_val)

    async def __aenter__(self) -> timeout:
        return self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._finish(exc_type, exc_val)

    def _start(self) -> timeout:
        if self._timeout is None:
            return self
        task = asyncio.current_task(self._loop)
        if task is None:
            msg = (
                "asgiref_core.timeout.timeout must be entered from inside an "
                f"asyncio task running on {self._loop!r}; wrap the code in a "
                "coroutine and run it with asyncio.run() or create_task()"
            )
            raise RuntimeError(msg)
        self._task = task
        self._cancelling = task.cancelling()
        # Only a cancellation requested during this entry may be taken back on
        # exit, should the same object be entered again.
        self._expired = False
        if self._timeout <= 0:
            self._handle = self._loop.call_soon(self._expire)
        else:
            self._deadline = self._loop.time() + self._timeout
            self._handle = self._loop.call_at(self._deadline, self._expire)
        return self

    def _finish(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None
    ) -> None:
        # A deadline that has not fired yet must never fire outside the block.
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        task, self._task = self._task, None
        if not self._expired or task is None:
            return
        # Take back the cancellation this timeout requested, so that an
        # enclosing asyncio.timeout() or TaskGroup still counts its own
        # correctly. If the count stays above the entry level, the task was
        # also cancelled from outside and that cancellation must go on.
        if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc_val

    def _expire(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._expired = True
