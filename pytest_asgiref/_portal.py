"""The portal: an event loop in a helper thread that sync tests drive.

A sync test cannot await, so its fixtures hand out blocking objects whose
methods send a coroutine here and wait for the result: one thread hand-off
each way. The loop lives for the whole session, so an application, its
lifespan and every communicator of a sync test share it, and a module- or
session-wide lifespan stays on the loop that started it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["PORTAL_THREAD_NAME", "Portal"]

T = TypeVar("T")

PORTAL_THREAD_NAME: Final = "pytest_asgiref-portal"

# How long closing the portal waits for leftover tasks to end once cancelled.
_CLOSE_GRACE: Final = 2.0


class Portal:
    """An event loop running in a daemon thread, started on creation."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=PORTAL_THREAD_NAME, daemon=True
        )
        self._thread.start()
        ready.wait()

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                self._cancel_leftovers()
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()

    def _cancel_leftovers(self) -> None:
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            # An application that swallows its cancellation must not hang the
            # end of the session: teardown has reported it already.
            self.loop.run_until_complete(asyncio.wait(tasks, timeout=_CLOSE_GRACE))

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the portal's loop and wait for its result.

        If the wait is interrupted (pytest-timeout, Ctrl-C), the coroutine
        is cancelled rather than left running behind the test's back.
        """
        if threading.get_ident() == self._thread.ident:
            coroutine.close()
            msg = (
                "a blocking pytest-asgiref object was used on the portal's own "
                "event loop, where waiting for it would deadlock; inside the "
                "application or an async function, await the async API instead"
            )
            raise RuntimeError(msg)
        if not self._thread.is_alive() or not self.loop.is_running():
            # run_coroutine_threadsafe raises only for a closed loop; a
            # stopped one would leave this call waiting forever.
            coroutine.close()
            msg = (
                "the pytest-asgiref portal's event loop is no longer running "
                "(the session is ending, or the loop's thread died); nothing "
                "can be sent to it"
            )
            raise RuntimeError(msg)
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Cancel what still runs, stop the loop and join its thread.

        A thread that does not end in time (an application blocking the loop
        for good) is left behind: it is a daemon thread, and the session
        ends without it.
        """
        if self.loop.is_closed() or not self._thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_CLOSE_GRACE * 2)
