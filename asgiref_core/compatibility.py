"""Run ASGI 2 (double-callable) applications where ASGI 3 ones are expected.

ASGI 2 applications are called twice: ``app(scope)`` builds a per-connection
instance, which is then awaited as ``instance(receive, send)``. ASGI 3 folded
that into one coroutine call, ``app(scope, receive, send)``. Servers and test
harnesses call :func:`guarantee_single_callable` once on whatever they were
given and then use the ASGI 3 form only.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any, cast

# Also re-exported: ``asgiref.compatibility.iscoroutinefunction`` exists too
# (asgiref imports it there from its sync module), and code may rely on it.
from asgiref_core._coroutines import iscoroutinefunction
from asgiref_core.typing import (
    ASGI2Application,
    ASGI3Application,
    ASGIApplication,
    ASGIReceiveCallable,
    ASGISendCallable,
    Scope,
)

__all__ = [
    "double_to_single_callable",
    "guarantee_single_callable",
    "is_double_callable",
    "iscoroutinefunction",
]

# What the single callable takes over from the application it adapts, so that
# logs, reprs and error messages still name the user's application. ``__dict__``
# is deliberately not merged (a class's dict would bring along its
# ``_asgi_double_callable`` hint and make the adapter look double-callable
# again), nor is ``__wrapped__`` set (``inspect.signature`` would then report
# the one-argument ASGI 2 signature for a three-argument callable).
_COPIED_METADATA = ("__module__", "__name__", "__qualname__", "__doc__")


def is_double_callable(application: object) -> bool:
    """Whether ``application`` uses the ASGI 2 ``app(scope)(receive, send)`` style.

    An explicit hint attribute decides first: a truthy ``_asgi_single_callable``
    means no, a truthy ``_asgi_double_callable`` means yes (the first wins when
    both are set). Without a hint, classes are double-callable, and so is any
    other object unless it is a coroutine function or its ``__call__`` is one.
    """
    if getattr(application, "_asgi_single_callable", False):
        return False
    if getattr(application, "_asgi_double_callable", False):
        return True
    if inspect.isclass(application):
        # Calling a class only constructs an instance from the scope.
        return True
    # Coroutine functions (including ones marked with
    # ``markcoroutinefunction``) are the common case, so they are tested
    # first; an instance with ``async def __call__`` is single-callable too.
    if iscoroutinefunction(application):
        return False
    return not (callable(application) and iscoroutinefunction(application.__call__))


def double_to_single_callable(
    application: ASGI2Application | Callable[[Any], Any],
) -> ASGI3Application:
    """Wrap an ASGI 2 application in an ASGI 3 coroutine function.

    Each call of the result builds a fresh instance with ``application(scope)``
    and awaits ``instance(receive, send)``, returning what that returns.
    """

    async def single_callable(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> Any:
        instance = application(scope)
        return await instance(receive, send)

    for attribute in _COPIED_METADATA:
        try:
            value = getattr(application, attribute)
        except AttributeError:
            continue
        # Instances of classes with ``__slots__`` or odd descriptors may hand
        # back something the function object refuses; keep its own value then.
        with contextlib.suppress(AttributeError, TypeError):
            setattr(single_callable, attribute, value)
    return single_callable


def guarantee_single_callable(
    application: ASGIApplication | Callable[..., Any],
) -> ASGI3Application:
    """Return ``application`` in ASGI 3 form, adapting it only if it needs it.

    Single-callable applications come back unchanged (the same object).
    """
    # The type checker cannot follow ``is_double_callable``'s verdict, hence
    # the casts to the shape each branch has established.
    if is_double_callable(application):
        return double_to_single_callable(cast("Callable[[Any], Any]", application))
    return cast("ASGI3Application", application)
