"""Coroutine-function detection that also honours an explicit marker.

Python 3.12 added ``inspect.markcoroutinefunction`` so that a sync callable
returning an awaitable (a ``SyncToAsync`` instance, say) can say it behaves like
a coroutine function. On 3.11 the same marker is the ``_is_coroutine``
attribute that ``asyncio.iscoroutinefunction`` checks.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
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


def _probe() -> None:  # pragma: no cover - never called, only marked
    pass


# What marking adds to a function's __dict__, learnt once, so that wrappers
# can be marked (or have a copied mark removed) with a plain dict update.
_before = set(vars(_probe))
markcoroutinefunction(_probe)
COROUTINE_MARK: dict[str, object] = {
    key: value for key, value in vars(_probe).items() if key not in _before
}
del _before

_MISSING = object()
_PLAIN_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def is_async_callable(func: object) -> bool:
    """Whether calling ``func`` gives an awaitable, as far as can be told.

    Checks the object and, for callable instances, their ``__call__``.
    """
    if iscoroutinefunction(func):
        return True
    if isinstance(func, _PLAIN_FUNCTIONS):
        return False
    return iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004


def copy_wrapper_metadata(wrapper: Any, wrapped: object) -> None:
    """What ``functools.update_wrapper`` does, without raising internally for
    attributes the wrapped object lacks (it sits on every bridge call site
    that builds a wrapper per call)."""
    namespace = wrapper.__dict__
    for name in functools.WRAPPER_ASSIGNMENTS:
        value = getattr(wrapped, name, _MISSING)
        if value is not _MISSING:
            namespace[name] = value
    extra = getattr(wrapped, "__dict__", None)
    if extra:
        namespace.update(extra)
    namespace["__wrapped__"] = wrapped
