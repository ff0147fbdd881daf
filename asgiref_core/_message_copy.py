"""Copy channel-layer messages so neither side sees the other's later changes.

Messages are nearly always small trees of dicts, lists and scalars, which a
type-dispatched walk copies several times faster than ``copy.deepcopy``.
Anything else (custom objects, very deep trees, cycles) goes to
``deepcopy``, which copes with all of them.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["copy_message", "is_flat"]

# Values that cannot change, so a copy may share them.
_IMMUTABLE: frozenset[type] = frozenset(
    {str, bytes, int, float, bool, type(None), complex, frozenset, range}
)

# Past this depth the walk hands over to deepcopy, which handles cycles.
_MAX_DEPTH = 32


def is_flat(message: dict[str, Any]) -> bool:
    """Whether every value in ``message`` is immutable (``dict()`` copies it)."""
    immutable = _IMMUTABLE
    return all(type(value) in immutable for value in message.values())


def copy_message(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` that shares nothing mutable with it."""
    immutable = _IMMUTABLE
    for value in message.values():
        if type(value) not in immutable:
            break
    else:
        return dict(message)
    return {key: _copy(value, 1) for key, value in message.items()}


def _copy(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if depth > _MAX_DEPTH:
        return copy.deepcopy(value)
    if kind is dict:
        return {key: _copy(item, depth + 1) for key, item in value.items()}
    if kind is list:
        return [_copy(item, depth + 1) for item in value]
    if kind is tuple:
        return tuple([_copy(item, depth + 1) for item in value])
    return copy.deepcopy(value)
