"""ASGI 2 / ASGI 3 detection and adaptation in asgiref_core.compatibility."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest

from asgiref_core._coroutines import markcoroutinefunction
from asgiref_core.compatibility import (
    double_to_single_callable,
    guarantee_single_callable,
    is_double_callable,
)

SCOPE: dict[str, Any] = {"type": "http", "path": "/"}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _collector() -> tuple[list[dict[str, Any]], Any]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return sent, send


# --- sample applications --------------------------------------------------------


async def single_function(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "single", "path": scope["path"]})


def double_function(scope: Any) -> Any:
    async def instance(receive: Any, send: Any) -> None:
        await send({"type": "double", "path": scope["path"]})

    return instance


class DoubleClass:
    """An ASGI 2 application class."""

    built: list[DoubleClass] = []  # noqa: RUF012 - shared on purpose, reset per test

    def __init__(self, scope: Any) -> None:
        self.scope = scope
        DoubleClass.built.append(self)

    async def __call__(self, receive: Any, send: Any) -> str:
        message = await receive()
        await send({"type": "class", "got": message["type"]})
        return "instance result"


class SingleInstanceApp:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "instance"})


class SyncCallInstance:
    def __call__(self, scope: Any) -> Any:
        return double_function(scope)


def sync_returning_coroutine(scope: Any, receive: Any, send: Any) -> Any:
    return single_function(scope, receive, send)


def _hinted(func: Any, **hints: Any) -> Any:
    for name, value in hints.items():
        setattr(func, name, value)
    return func


def _samples() -> list[tuple[str, Any, bool]]:
    """(id, application, expected is_double_callable) triples."""

    async def hinted_double(scope: Any) -> None: ...

    def hinted_single(scope: Any, receive: Any, send: Any) -> None: ...

    def both_hints(scope: Any) -> None: ...

    async def falsy_hint(scope: Any, receive: Any, send: Any) -> None: ...

    class HintedSingleClass:
        _asgi_single_callable = True

    def marked(scope: Any, receive: Any, send: Any) -> Any: ...

    return [
        ("async function", single_function, False),
        ("sync function", double_function, True),
        ("class", DoubleClass, True),
        ("instance with async __call__", SingleInstanceApp(), False),
        ("instance with sync __call__", SyncCallInstance(), True),
        ("lambda", lambda scope: None, True),
        ("partial of async function", functools.partial(single_function), False),
        ("sync function returning a coroutine", sync_returning_coroutine, True),
        ("marked coroutine function", markcoroutinefunction(marked), False),
        ("bound async method", SingleInstanceApp().__call__, False),
        (
            "double hint on async function",
            _hinted(hinted_double, _asgi_double_callable=True),
            True,
        ),
        (
            "single hint on sync function",
            _hinted(hinted_single, _asgi_single_callable=True),
            False,
        ),
        (
            "both hints: single wins",
            _hinted(both_hints, _asgi_single_callable=True, _asgi_double_callable=True),
            False,
        ),
        (
            "falsy hints are ignored",
            _hinted(falsy_hint, _asgi_double_callable=0, _asgi_single_callable=""),
            False,
        ),
        ("single hint on a class", HintedSingleClass, False),
        ("not callable at all", 42, True),
    ]


SAMPLES = _samples()


@pytest.fixture(autouse=True)
def _reset_built() -> None:
    DoubleClass.built.clear()


# --- is_double_callable -----------------------------------------------------------


@pytest.mark.parametrize(
    ("application", "expected"),
    [pytest.param(app, expected, id=name) for name, app, expected in SAMPLES],
)
def test_is_double_callable(application: Any, expected: bool) -> None:
    assert is_double_callable(application) is expected


@pytest.mark.parametrize(
    "application", [pytest.param(app, id=name) for name, app, _ in SAMPLES]
)
def test_is_double_callable_agrees_with_asgiref(application: Any) -> None:
    reference = pytest.importorskip("asgiref.compatibility")
    assert is_double_callable(application) is reference.is_double_callable(application)


# --- guarantee_single_callable ------------------------------------------------------


@pytest.mark.parametrize(
    "application",
    [single_function, SingleInstanceApp(), functools.partial(single_function)],
    ids=["function", "instance", "partial"],
)
def test_single_callables_come_back_unchanged(application: Any) -> None:
    assert guarantee_single_callable(application) is application


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_guarantee_adapts_double_function() -> None:
    app = guarantee_single_callable(double_function)
    assert not is_double_callable(app)
    assert inspect.iscoroutinefunction(app)
    sent, send = _collector()
    await app(SCOPE, _receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "double", "path": "/"}]


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_guarantee_adapts_class_and_builds_one_instance_per_call() -> None:
    app = guarantee_single_callable(DoubleClass)
    sent, send = _collector()
    await app(SCOPE, _receive, send)  # type: ignore[arg-type]
    await app({"type": "http", "path": "/two"}, _receive, send)  # type: ignore[arg-type]
    assert sent == [{"type": "class", "got": "http.request"}] * 2
    assert [instance.scope["path"] for instance in DoubleClass.built] == ["/", "/two"]


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_guarantee_calls_the_factory_once_per_connection() -> None:
    calls: list[Any] = []

    def factory(scope: Any) -> Any:
        calls.append(scope)
        return double_function(scope)

    adapted = guarantee_single_callable(factory)
    sent, send = _collector()
    await adapted(SCOPE, _receive, send)  # type: ignore[arg-type]
    assert calls == [SCOPE]
    assert sent == [{"type": "double", "path": "/"}]


def test_guarantee_returns_adapter_of_the_right_shape() -> None:
    adapted = guarantee_single_callable(DoubleClass)
    assert list(inspect.signature(adapted).parameters) == ["scope", "receive", "send"]
    # Adapting again must be a no-op, not a second wrapping.
    assert guarantee_single_callable(adapted) is adapted


# --- double_to_single_callable ------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_adapter_returns_what_the_instance_returns() -> None:
    adapted = double_to_single_callable(DoubleClass)
    _, send = _collector()
    result = await adapted(SCOPE, _receive, send)  # type: ignore[arg-type,func-returns-value]
    assert result == "instance result"


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_adapter_propagates_errors_from_construction_and_call() -> None:
    class FailsToBuild:
        def __init__(self, scope: Any) -> None:
            raise ValueError(f"bad scope {scope['path']}")

    class FailsToRun:
        def __init__(self, scope: Any) -> None:
            pass

        async def __call__(self, receive: Any, send: Any) -> None:
            raise KeyError("boom")

    _, send = _collector()
    with pytest.raises(ValueError, match="bad scope /"):
        await double_to_single_callable(FailsToBuild)(SCOPE, _receive, send)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="boom"):
        await double_to_single_callable(FailsToRun)(SCOPE, _receive, send)  # type: ignore[arg-type]


def test_adapter_construction_is_lazy() -> None:
    # Nothing is called until the adapter is awaited with a scope.
    double_to_single_callable(DoubleClass)
    assert DoubleClass.built == []


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_adapting_a_non_callable_fails_only_when_called() -> None:
    adapted = guarantee_single_callable(42)  # type: ignore[arg-type]
    _, send = _collector()
    with pytest.raises(TypeError, match="not callable"):
        await adapted(SCOPE, _receive, send)  # type: ignore[arg-type]


def test_adapter_carries_the_application_metadata() -> None:
    adapted = double_to_single_callable(DoubleClass)
    assert adapted.__name__ == "DoubleClass"
    assert adapted.__qualname__ == "DoubleClass"
    assert adapted.__module__ == __name__
    assert adapted.__doc__ == "An ASGI 2 application class."
    assert not hasattr(adapted, "__wrapped__")


def test_adapter_does_not_inherit_the_double_hint() -> None:
    class Hinted:
        _asgi_double_callable = True

        def __init__(self, scope: Any) -> None:
            pass

        async def __call__(self, receive: Any, send: Any) -> None:
            pass

    adapted = double_to_single_callable(Hinted)
    assert not is_double_callable(adapted)


def test_adapter_of_an_instance_keeps_its_own_name() -> None:
    instance = SyncCallInstance()
    adapted = double_to_single_callable(instance)
    # The instance has no __name__ of its own, so the adapter keeps one.
    assert isinstance(adapted.__name__, str)
    assert adapted.__module__ == __name__


def test_adapter_tolerates_unassignable_metadata() -> None:
    class OddName:
        __name__ = 123  # not a str, which function objects refuse

        def __call__(self, scope: Any) -> Any:
            return double_function(scope)

    adapted = double_to_single_callable(OddName())
    assert isinstance(adapted.__name__, str)
