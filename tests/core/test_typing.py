"""asgiref_core.typing mirrors asgiref.typing name for name and key for key."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, get_args, get_origin, is_typeddict

import pytest

import asgiref_core.typing as ours


def _reference() -> types.ModuleType:
    module: types.ModuleType = pytest.importorskip("asgiref.typing")
    return module


def _public_typeddicts(module: types.ModuleType) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and is_typeddict(value)
    }


def _shape(annotation: Any) -> Any:
    """A comparable, module-independent description of a type annotation.

    Classes compare by name (the two modules define distinct but same-named
    classes) and ``Union[...]`` and ``X | Y`` count as the same thing.
    """
    origin = get_origin(annotation)
    if origin is None:
        if isinstance(annotation, list):  # a Callable's parameter list
            return [_shape(item) for item in annotation]
        if isinstance(annotation, type):
            return annotation.__qualname__
        return annotation
    if origin in (typing.Union, types.UnionType):
        origin = "union"
    return (origin, tuple(_shape(arg) for arg in get_args(annotation)))


def test_all_matches_asgiref() -> None:
    reference = _reference()
    assert len(set(ours.__all__)) == len(ours.__all__), "duplicates in __all__"
    assert set(ours.__all__) == set(reference.__all__), (
        f"missing: {sorted(set(reference.__all__) - set(ours.__all__))}, "
        f"extra: {sorted(set(ours.__all__) - set(reference.__all__))}"
    )


def test_all_is_sorted() -> None:
    assert list(ours.__all__) == sorted(ours.__all__)


def test_every_listed_name_exists() -> None:
    missing = [name for name in ours.__all__ if not hasattr(ours, name)]
    assert missing == []


def test_same_typeddicts_as_asgiref_including_unlisted_ones() -> None:
    # asgiref also defines HTTPResponseDebugEvent without listing it in
    # __all__; a drop-in must have it all the same.
    reference = _public_typeddicts(_reference())
    mine = _public_typeddicts(ours)
    assert sorted(mine) == sorted(reference)
    assert "HTTPResponseDebugEvent" in mine
    assert "HTTPResponseDebugEvent" not in ours.__all__


@pytest.mark.parametrize("name", sorted(_public_typeddicts(ours)))
def test_typeddict_keys_match_asgiref(name: str) -> None:
    theirs = getattr(_reference(), name)
    mine = getattr(ours, name)
    assert mine.__required_keys__ == theirs.__required_keys__
    assert mine.__optional_keys__ == theirs.__optional_keys__
    assert mine.__total__ == theirs.__total__


@pytest.mark.parametrize("name", sorted(_public_typeddicts(ours)))
def test_typeddict_field_types_match_asgiref(name: str) -> None:
    theirs = typing.get_type_hints(getattr(_reference(), name), include_extras=True)
    mine = typing.get_type_hints(getattr(ours, name), include_extras=True)
    assert list(mine) == list(theirs), "same keys in the same order"
    for key in theirs:
        assert _shape(mine[key]) == _shape(theirs[key]), key


@pytest.mark.parametrize(
    "name",
    [
        "ASGI2Application",
        "ASGI3Application",
        "ASGIApplication",
        "ASGIReceiveCallable",
        "ASGIReceiveEvent",
        "ASGISendCallable",
        "ASGISendEvent",
        "Scope",
        "WWWScope",
    ],
)
def test_aliases_match_asgiref(name: str) -> None:
    assert _shape(getattr(ours, name)) == _shape(getattr(_reference(), name))


def test_optional_keys_survive_without_asgiref() -> None:
    # Postponed annotations would make these required on Python 3.11.
    for scope in (ours.HTTPScope, ours.WebSocketScope, ours.LifespanScope):
        assert scope.__optional_keys__ == frozenset({"state"}), scope
        assert "type" in scope.__required_keys__


def test_event_type_literals() -> None:
    hints = typing.get_type_hints(ours.HTTPResponseStartEvent)
    assert get_args(hints["type"]) == ("http.response.start",)
    versions = typing.get_type_hints(ours.ASGIVersions)["version"]
    assert {get_args(member)[0] for member in get_args(versions)} == {"2.0", "3.0"}


def test_websocket_frame_fields_named_after_builtins() -> None:
    hints = typing.get_type_hints(ours.WebSocketReceiveEvent)
    assert hints["bytes"] == bytes | None
    assert hints["text"] == str | None


def test_asgi2_protocol_shape() -> None:
    assert getattr(ours.ASGI2Protocol, "_is_protocol", False)
    assert inspect.iscoroutinefunction(ours.ASGI2Protocol.__call__)
    init = inspect.signature(ours.ASGI2Protocol.__init__)
    call = inspect.signature(ours.ASGI2Protocol.__call__)
    assert list(init.parameters) == ["self", "scope"]
    assert list(call.parameters) == ["self", "receive", "send"]


def test_asgi2_protocol_signatures_match_asgiref() -> None:
    theirs = _reference().ASGI2Protocol
    for method in ("__init__", "__call__"):
        mine_params = inspect.signature(getattr(ours.ASGI2Protocol, method)).parameters
        their_params = inspect.signature(getattr(theirs, method)).parameters
        assert list(mine_params) == list(their_params), method


def test_typeddicts_are_plain_dicts_at_run_time() -> None:
    event: ours.HTTPRequestEvent = {
        "type": "http.request",
        "body": b"",
        "more_body": False,
    }
    assert type(event) is dict
