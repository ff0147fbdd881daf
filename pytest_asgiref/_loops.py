"""Which event loop a test's fixtures use, and how setup and teardown reach it.

An ``async def`` test run by pytest-asyncio gets its fixtures on the test's
own loop, whatever its loop scope: a family of tiny async fixtures, one per
loop scope, reports the running loop through pytest-asyncio's public
``loop_scope`` option, and setup and teardown run work on that loop while it
is idle between tests. A sync test gets the session's :class:`Portal`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import pytest
import pytest_asyncio

from pytest_asgiref._keys import PORTAL
from pytest_asgiref._markers import fail_for
from pytest_asgiref._portal import Portal

__all__ = [
    "LOOP_SCOPES",
    "ServingLoop",
    "async_loop_scope",
    "portal_of",
    "serving_loop_for",
]

T = TypeVar("T")

LOOP_SCOPES: Final = ("function", "class", "module", "package", "session")


@dataclass(frozen=True, slots=True)
class ServingLoop:
    """The loop serving one test.

    ``blocking`` is true for sync tests, whose fixtures hand out blocking
    objects that go through the portal. ``scope`` is how long the loop lives,
    in pytest's scope names.
    """

    loop: asyncio.AbstractEventLoop
    scope: str
    portal: Portal | None

    @property
    def blocking(self) -> bool:
        return self.portal is not None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop from setup or teardown code."""
        if self.portal is not None:
            return self.portal.call(coroutine)
        # pytest-asyncio's loop is idle between its tests' coroutines.
        return self.loop.run_until_complete(coroutine)


def portal_of(config: pytest.Config) -> Portal:
    """The session's portal, started on first use and closed with the session."""
    portal = config.stash.get(PORTAL, None)
    if portal is None or portal.loop.is_closed():
        portal = config.stash[PORTAL] = Portal()
        config.add_cleanup(portal.close)
    return portal


def async_loop_scope(item: pytest.Item) -> str:
    """The loop scope pytest-asyncio runs the async test ``item`` in."""
    marker = item.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        scope = item.config.getini("asyncio_default_test_loop_scope") or "function"
    return str(scope)


def serving_loop_for(request: pytest.FixtureRequest) -> ServingLoop:
    item = request.node
    if isinstance(item, pytest.Item) and pytest_asyncio.is_async_test(item):
        scope = async_loop_scope(item)
        loop = request.getfixturevalue(f"_asgi_loop_{scope}")
        return ServingLoop(loop=loop, scope=scope, portal=None)
    if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
        # Blocking objects would block its loop, and awaiting them fails
        # with a TypeError that says nothing about why.
        fail_for(
            item,
            "this async test is not run by pytest-asyncio (it is unmarked, or "
            "another plugin such as anyio's runs it), so the asgi_* fixtures "
            "cannot serve it on its event loop; mark it with "
            "@pytest.mark.asyncio or set asyncio_mode = auto",
        )
    portal = portal_of(request.config)
    return ServingLoop(loop=portal.loop, scope="session", portal=portal)


_ScopeName = Literal["function", "class", "module", "package", "session"]


def _running_loop_fixture(scope: _ScopeName) -> Any:
    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    return pytest_asyncio.fixture(
        running_loop, loop_scope=scope, name=f"_asgi_loop_{scope}"
    )


# One per loop scope; pytest finds fixtures among a plugin module's globals.
_asgi_loop_function = _running_loop_fixture("function")
_asgi_loop_class = _running_loop_fixture("class")
_asgi_loop_module = _running_loop_fixture("module")
_asgi_loop_package = _running_loop_fixture("package")
_asgi_loop_session = _running_loop_fixture("session")
