"""Run an application's lifespan around the tests that drive it.

Startup happens before the test, on the loop the test's communicators use,
and shutdown after it; with a wider ``lifespan_scope`` once per class,
module, package or session, kept in a cache keyed by the scope's node, the
application and the loop. A failed startup fails every test that needed it
with the application's message, without running startup again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_asgiref._keys import LIFESPANS
from pytest_asgiref._loops import LOOP_SCOPES, ServingLoop
from pytest_asgiref._markers import LoadedApp, fail_for

if TYPE_CHECKING:
    from asgiref_core.testing import LifespanCommunicator, LifespanOutcome

__all__ = ["RunningLifespan", "lifespan_state"]


@dataclass(slots=True)
class RunningLifespan:
    """One started lifespan; ``state`` is ``None`` if the app has none."""

    communicator: LifespanCommunicator
    outcome: LifespanOutcome
    app: object

    @property
    def state(self) -> dict[str, Any] | None:
        return self.communicator.state if self.outcome.complete else None


def _scope_node(
    request: pytest.FixtureRequest, scope: str
) -> pytest.Item | pytest.Collector:
    item: pytest.Item = request.node
    wanted: dict[str, type[pytest.Collector]] = {
        "class": pytest.Class,
        "module": pytest.Module,
        "package": pytest.Package,
    }
    if scope in wanted:
        node = item.getparent(wanted[scope])
        if node is not None:
            return node
        if scope == "class":
            # As for pytest's class-scoped fixtures (and pytest-asyncio's
            # class-scoped loops): a test outside a class is its own class.
            return item
    return request.session


def _check_loop_lives_long_enough(
    request: pytest.FixtureRequest, scope: str, serving: ServingLoop, where: str
) -> None:
    if LOOP_SCOPES.index(serving.scope) >= LOOP_SCOPES.index(scope):
        return
    fail_for(
        request.node,
        f"{where}: lifespan_scope={scope!r} needs this async test's event loop "
        f"to live as long, but pytest-asyncio runs it in a {serving.scope!r}-"
        f"scoped loop. Mark the tests with "
        f"@pytest.mark.asyncio(loop_scope={scope!r}) (or set "
        f"asyncio_default_test_loop_scope), or use lifespan_scope="
        f"{serving.scope!r}",
    )


async def _start(app: LoadedApp, validate: Any) -> RunningLifespan:
    # Imported here: loading the plugin must not load the communicators.
    from asgiref_core.testing import LifespanCommunicator  # noqa: PLC0415

    communicator = LifespanCommunicator(app.asgi, validate=validate)
    try:
        outcome = await communicator.startup()
    except BaseException:
        # A startup that broke the protocol or timed out: leave no task behind,
        # and report what startup raised rather than what closing adds.
        with contextlib.suppress(Exception):
            await communicator.aclose()
        raise
    if not outcome.complete:
        # A failed or unsupported lifespan has nothing to shut down; make
        # sure its task is gone from the loop. What the application raised
        # is part of the outcome (its ``error``), not a failure of its own:
        # raising on the lifespan scope is how an app says "unsupported".
        with contextlib.suppress(Exception):
            await communicator.aclose()
    return RunningLifespan(communicator=communicator, outcome=outcome, app=app.asgi)


async def _stop(running: RunningLifespan) -> LifespanOutcome | None:
    if not running.outcome.complete:
        return None
    return await running.communicator.shutdown()


def _report_shutdown(where: str, outcome: LifespanOutcome | None) -> None:
    if outcome is None or outcome.complete:
        return
    if outcome.failed:
        msg = f"{where}: the application's lifespan shutdown failed: {outcome.message}"
        pytest.fail(msg, pytrace=False)
    if outcome.error is not None:
        # It completed startup, so it does support lifespan: raising on
        # lifespan.shutdown is a crash, not a polite "unsupported".
        error = outcome.error
        msg = (
            f"{where}: the application raised during lifespan shutdown: "
            f"{type(error).__name__}: {error}"
        )
        pytest.fail(msg, pytrace=False)


def lifespan_state(
    request: pytest.FixtureRequest,
    app: LoadedApp,
    serving: ServingLoop,
    validate: Any,
) -> dict[str, Any] | None:
    """Start (or reuse) the lifespan this test needs; its ``state``, if any."""
    choice = app.choice
    if choice.lifespan == "off":
        return None
    where = f"{choice.source} (lifespan={choice.lifespan!r})"
    if app.kind == "wsgi":
        if choice.lifespan == "on":
            fail_for(
                request.node,
                f"{where}: a WSGI application has no lifespan; use lifespan='auto' "
                "or 'off'",
            )
        return None
    scope = choice.lifespan_scope
    if scope == "function":
        running = serving.run(_start(app, validate))
        shutdown_where = f"{request.node.nodeid}: {where}"
        request.addfinalizer(
            lambda: _report_shutdown(shutdown_where, serving.run(_stop(running)))
        )
    else:
        if not serving.blocking:
            _check_loop_lives_long_enough(request, scope, serving, where)
        node = _scope_node(request, scope)
        cache = request.config.stash.setdefault(LIFESPANS, {})
        key = (node.nodeid, id(app.original), id(serving.loop))
        cached = cache.get(key)
        if cached is None:
            running = cache[key] = serving.run(_start(app, validate))
            shutdown_where = f"{node.nodeid or 'session'}: {where}"

            def stop(running: RunningLifespan = running) -> None:
                del cache[key]
                _report_shutdown(shutdown_where, serving.run(_stop(running)))

            node.addfinalizer(stop)
        else:
            running = cached
    outcome = running.outcome
    if outcome.failed:
        fail_for(
            request.node,
            f"{where}: the application's lifespan startup failed: {outcome.message}",
        )
    if not outcome.supported and choice.lifespan == "on":
        fail_for(
            request.node,
            f"{where}: the application does not support the lifespan protocol "
            f"({outcome.describe()}); use lifespan='auto' to run without it",
        )
    return running.state
