"""LifespanCommunicator: complete, failed and unsupported lifespans, and state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asgiref_core.testing import (
    HttpCommunicator,
    LifespanCommunicator,
    LifespanFailedError,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]


def make_app(events: list[str]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["pool"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await receive()
        body = scope["state"]["pool"].encode()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_startup_state_shutdown() -> None:
    events: list[str] = []
    app = make_app(events)
    lifespan = LifespanCommunicator(app)
    outcome = await lifespan.startup()
    assert outcome.complete
    assert outcome
    assert lifespan.state == {"pool": "connected"}
    communicator = HttpCommunicator(app, "GET", "/", state=lifespan.state)
    response = await communicator.get_response()
    assert response.body == b"connected"
    outcome = await lifespan.shutdown()
    assert outcome.complete
    assert outcome.phase == "shutdown"
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert lifespan.future.done()


async def test_async_with_runs_both_phases() -> None:
    events: list[str] = []
    async with LifespanCommunicator(make_app(events)) as lifespan:
        assert lifespan.state["pool"] == "connected"
    assert events == ["lifespan.startup", "lifespan.shutdown"]


async def test_startup_failed_and_return_is_prompt_and_keeps_the_message() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    lifespan = LifespanCommunicator(app)
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await lifespan.startup(timeout=30)
    assert loop.time() - started < 10
    assert outcome.failed
    assert not outcome
    assert outcome.message == "no database"
    with pytest.raises(LifespanFailedError, match="no database"):
        outcome.check()
    # Nothing to shut down: the startup outcome is returned again.
    assert await lifespan.shutdown() is outcome


async def test_startup_failed_then_raise_keeps_the_error() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            raise ConnectionError("db down")
        except ConnectionError as error:
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            raise

    lifespan = LifespanCommunicator(app)
    outcome = await lifespan.startup()
    assert outcome.failed
    await asyncio.sleep(0.01)
    assert isinstance(outcome.error, ConnectionError)


async def test_async_with_raises_on_failed_startup() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "bad config"})

    async def enter() -> None:
        async with LifespanCommunicator(app):
            pass

    with pytest.raises(LifespanFailedError, match="bad config"):
        await enter()


async def test_app_that_raises_does_not_support_lifespan() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError(f"unsupported scope type {scope['type']!r}")

    lifespan = LifespanCommunicator(app)
    outcome = await lifespan.startup()
    assert not outcome.supported
    assert isinstance(outcome.error, ValueError)
    assert "raised ValueError" in outcome.describe()
    assert (await lifespan.shutdown()) is outcome


async def test_app_that_returns_does_not_support_lifespan() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    outcome = await LifespanCommunicator(app).startup()
    assert outcome.status == "unsupported"
    assert outcome.error is None
    assert "returned without answering" in outcome.describe()


async def test_startup_timeout_names_the_phase() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError, match="lifespan startup"):
        await LifespanCommunicator(app).startup(timeout=0.05)


async def test_shutdown_timeout_names_the_phase() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await asyncio.sleep(60)

    lifespan = LifespanCommunicator(app)
    assert (await lifespan.startup()).complete
    with pytest.raises(TimeoutError, match="lifespan shutdown"):
        await lifespan.shutdown(timeout=0.05)


async def test_shutdown_failed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "leak"})

    lifespan = LifespanCommunicator(app)
    await lifespan.startup()
    outcome = await lifespan.shutdown()
    assert outcome.failed
    assert outcome.message == "leak"


async def test_phase_order_errors() -> None:
    lifespan = LifespanCommunicator(make_app([]))
    with pytest.raises(RuntimeError, match="call startup"):
        await lifespan.shutdown()
    await lifespan.startup()
    with pytest.raises(RuntimeError, match="already ran"):
        await lifespan.startup()
    await lifespan.shutdown()
