"""``Local``: attribute storage that follows a logical call across threads.

Like ``threading.local`` in plain sync code, like a context variable in async
code, and carried along when ``sync_to_async`` / ``async_to_sync`` move a call
to another thread, because those bridges copy the context across and hand the
callee's changes back.

Each attribute name gets a context variable of its own, so a write is one
``ContextVar.set`` (no copy of the other attributes) and deleting a value in
one context leaves every other context as it was. Each default ``Local`` has
a private class of its own whose methods reach those variables directly:
attribute access is the hot path of code that uses ``Local`` for
request-scoped state.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, final

from asgiref_core._bridge_state import thread_bound_vars

__all__ = ["Local"]

_MISSING: Any = object()
_get_running_loop = asyncio._get_running_loop
_object_getattribute = object.__getattribute__
_object_setattr = object.__setattr__


@final
class Local:
    """A namespace whose attributes are local to the current logical call.

    In sync code, values are local to the thread, and shared with async code
    that the thread calls through ``async_to_sync`` (and, in turn, with sync
    code that calls back through ``sync_to_async``). In async code, values
    behave like context variables: visible to the coroutine, to what it
    awaits and to tasks it starts, not to unrelated tasks. Safe to use from
    many threads at once.

    With ``thread_critical=True`` nothing crosses a thread: the storage is a
    plain ``threading.local`` in sync code and, in async code, a context-local
    namespace of the event loop's thread. Use it for objects that must never
    leave their thread, such as database connections.
    """

    __slots__ = ()

    def __new__(cls, thread_critical: bool = False) -> Local:
        if cls is not _LOCAL:
            msg = (
                f"{cls.__name__} subclasses Local, which is not supported; keep "
                f"a Local instance as an attribute instead"
            )
            raise TypeError(msg)
        if thread_critical:
            return object.__new__(_ThreadCriticalLocal)
        return object.__new__(_new_context_local_class())

    def __init__(self, thread_critical: bool = False) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        # Reached only once the storage and the object itself have no `name`.
        msg = f"{self!r} has no attribute {name!r}"
        raise AttributeError(msg, name=name, obj=self)

    def __setattr__(self, name: str, value: Any) -> None:  # pragma: no cover
        raise NotImplementedError  # every instance is one of the subclasses

    def __delattr__(self, name: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        critical = isinstance(self, _ThreadCriticalLocal)
        return f"<Local thread_critical={critical} at {id(self):#x}>"


_LOCAL: type[object] = Local


def _new_context_local_class() -> type[Local]:
    """A private subclass for one default Local instance.

    Its methods close over this instance's per-name context variables (as
    their bound ``get``/``set``), so an attribute access is one Python call
    plus one C call, with no lookup of the storage through the instance.
    """
    getters: dict[str, Callable[[Any], Any]] = {}
    setters: dict[str, Callable[[Any], object]] = {}
    new_var_lock = threading.Lock()

    def new_var(name: str) -> Callable[[Any], object]:
        with new_var_lock:
            # Two threads may write a new name at once: one variable wins.
            if name not in setters:
                var: contextvars.ContextVar[Any] = contextvars.ContextVar(
                    f"asgiref_core.local.{name}"
                )
                getters[name] = var.get
                setters[name] = var.set
            return setters[name]

    class _ContextLocal(Local):  # type: ignore[misc]  # final to users only
        __slots__ = ("__weakref__",)

        def __init__(self, thread_critical: bool = False) -> None:
            pass

        def __getattribute__(self, name: str) -> Any:
            try:
                value = getters[name](_MISSING)
            except KeyError:
                return _object_getattribute(self, name)
            if value is _MISSING:
                return _object_getattribute(self, name)
            return value

        def __setattr__(self, name: str, value: Any) -> None:
            try:
                setters[name](value)
            except KeyError:
                new_var(name)(value)

        def __delattr__(self, name: str) -> None:
            getter = getters.get(name)
            if getter is None or getter(_MISSING) is _MISSING:
                msg = f"{self!r} has no attribute {name!r}"
                raise AttributeError(msg, name=name, obj=self)
            setters[name](_MISSING)

    return _ContextLocal


class _ThreadCriticalLocal(Local):  # type: ignore[misc]
    __slots__ = ("__weakref__", "_async", "_sync")

    def __init__(self, thread_critical: bool = True) -> None:
        # Sync code stores attributes on a threading.local directly; async
        # code keeps, per thread, a name -> context variable map.
        _object_setattr(self, "_sync", threading.local())
        _object_setattr(self, "_async", threading.local())

    def __getattribute__(self, name: str) -> Any:
        if name[:2] == "__":
            # __class__, __reduce_ex__ and the like describe this object,
            # never the thread's storage.
            return _object_getattribute(self, name)
        if _get_running_loop() is None:
            try:
                return getattr(_sync_of(self), name)
            except AttributeError:
                return _object_getattribute(self, name)
        var = _async_vars_of(self).get(name)
        value = _MISSING if var is None else var.get(_MISSING)
        if value is _MISSING:
            return _object_getattribute(self, name)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if _get_running_loop() is None:
            setattr(_sync_of(self), name, value)
            return
        async_vars = _async_vars_of(self)
        var = async_vars.get(name)
        if var is None:
            var = async_vars[name] = contextvars.ContextVar(
                f"asgiref_core.local.{name}"
            )
            thread_bound_vars.add(var)
        var.set(value)

    def __delattr__(self, name: str) -> None:
        if _get_running_loop() is None:
            try:
                delattr(_sync_of(self), name)
            except AttributeError:
                msg = f"{self!r} has no attribute {name!r}"
                raise AttributeError(msg, name=name, obj=self) from None
            return
        var = _async_vars_of(self).get(name)
        if var is None or var.get(_MISSING) is _MISSING:
            msg = f"{self!r} has no attribute {name!r}"
            raise AttributeError(msg, name=name, obj=self)
        var.set(_MISSING)


_sync_of = _ThreadCriticalLocal._sync.__get__  # type: ignore[attr-defined]
_async_of = _ThreadCriticalLocal._async.__get__  # type: ignore[attr-defined]


def _async_vars_of(
    local: _ThreadCriticalLocal,
) -> dict[str, contextvars.ContextVar[Any]]:
    # A plain function: attribute access on the local would recurse into
    # its own __getattribute__.
    per_thread = _async_of(local)
    try:
        return per_thread.vars  # type: ignore[no-any-return]
    except AttributeError:
        per_thread.vars = {}
        return per_thread.vars  # type: ignore[no-any-return]
