"""Coroutine-function detection that also honours an explicit marker.

Python 3.12 added ``inspect.markcoroutinefunction`` so that a sync callable
returning an awaitable (a ``SyncToAsync`` instance, say) can say it behaves like
a coroutine function. On 3.11 the same marker is the ``_is_coroutine``
attribute that ``asyncio.iscoroutinefunction`` checks.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["iscoroutinefunction", "markcoroutinefunction"]

_F = TypeVar("_F", bound=Callable[..., Any])

if sys.version_info >= (3, 12):
    iscoroutinefunction = inspect.iscoroutinefunction
    markcoroutinefunction = inspect.markcoroutinefunction
else:  # pragma: no cover - exercised on 3.11 only
    import asyncio.coroutines

    _MARKER: object = getattr(asyncio.coroutines, "_is_coroutine")  # noqa: B009

    def iscoroutinefunction(func: object) -> bool:
        """Whether ``func`` is a coroutine function or is marked as one."""
        return inspect.iscoroutinefunction(func) or (
            getattr(func, "_is_coroutine", None) is _MARKER
        )

    def markcoroutinefunction(func: _F) -> _F:
        """Mark ``func`` so that :func:`iscoroutinefunction` reports True."""
        if hasattr(func, "__func__"):
            func = func.__func__
        func._is_coroutine = _MARKER  # type: ignore[attr-defined]
        return func
