"""The portal refuses work it could never finish, instead of waiting forever."""

from __future__ import annotations

import pytest

from pytest_asgiref._portal import Portal

pytestmark = pytest.mark.timeout(20)


async def answer() -> int:
    return 42


def test_a_call_runs_on_the_portal_loop() -> None:
    portal = Portal()
    try:
        assert portal.call(answer()) == 42
    finally:
        portal.close()


def test_a_call_after_the_loop_stopped_raises_at_once() -> None:
    portal = Portal()
    portal.loop.call_soon_threadsafe(portal.loop.stop)
    portal.thread.join(5)
    coroutine = answer()
    with pytest.raises(RuntimeError, match="portal's event loop is no longer running"):
        portal.call(coroutine)
    # The refused coroutine was closed, so no "never awaited" warning follows.
    assert coroutine.cr_frame is None
    portal.close()
    assert portal.loop.is_closed()


def test_a_call_from_the_portal_thread_itself_is_refused() -> None:
    portal = Portal()
    try:

        async def reenter() -> str:
            try:
                portal.call(answer())
            except RuntimeError as error:
                return str(error)
            return "no error"

        message = portal.call(reenter())
        assert "would deadlock" in message
    finally:
        portal.close()
