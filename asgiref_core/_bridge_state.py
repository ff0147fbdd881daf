"""Bookkeeping shared by the bridges: thread names, per-thread state, live waits.

Everything here is written on the bridges' hot paths, so it is kept to plain
attribute and dict writes; the expensive part (describing threads, walking
stacks) happens only in :mod:`asgiref_core.introspection`, when somebody asks.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asgiref_core._sync_call import SyncCall
    from asgiref_core.current_thread_executor import CurrentThreadExecutor

__all__ = ["THREAD_NAME_PREFIX"]

#: Every thread the library starts has a name beginning with this.
THREAD_NAME_PREFIX = "asgiref_core-"

_thread_numbers = itertools.count(1)


def thread_name(purpose: str) -> str:
    """A unique, self-explaining name for a thread started for ``purpose``."""
    return f"{THREAD_NAME_PREFIX}{purpose}-{next(_thread_numbers)}"


class _ThreadState(threading.local):
    # The sync_to_async call this thread is running right now (the innermost
    # one), or None. Set for exactly the duration of the call, so a thread can
    # never see an event loop from a call that has already finished.
    call: SyncCall | None = None


thread_state = _ThreadState()

#: The executor of the innermost ``async_to_sync`` call whose thread is still
#: waiting up this logical call chain. Thread-sensitive work found here runs on
#: that waiting thread.
current_executor: contextvars.ContextVar[CurrentThreadExecutor | None] = (
    contextvars.ContextVar("asgiref_core.current_executor", default=None)
)

#: The thread-sensitive call whose worker this logical chain occupies. Set in
#: the private context copy a call runs in, so that descendants can tell when
#: they would queue behind their own ancestor.
occupying: contextvars.ContextVar[SyncCall | None] = contextvars.ContextVar(
    "asgiref_core.occupying", default=None
)

#: Context variables that belong to one thread (the async storage of
#: ``Local(thread_critical=True)``): bridges never hand them to another
#: context, since a loop thread lent to one call is lent to the next.
thread_bound_vars: set[contextvars.ContextVar[Any]] = set()

#: Thread ident -> the executor of the ``async_to_sync`` call that thread is
#: blocked in. Read by introspection and by deadlock detection.
blocked_in_async_to_sync: dict[int, CurrentThreadExecutor] = {}

#: id(call) -> thread-sensitive calls dispatched and not yet delivered.
pending_thread_sensitive: dict[int, SyncCall] = {}

# Callbacks that reset module state in a forked child, where none of the
# threads the parent started exist.
_fork_resets: list[Any] = []


def on_fork_reset(callback: Any) -> None:
    """Run ``callback()`` in a child process right after a fork."""
    _fork_resets.append(callback)


def _after_fork_in_child() -> None:
    thread_state.call = None
    blocked_in_async_to_sync.clear()
    pending_thread_sensitive.clear()
    for callback in _fork_resets:
        callback()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
