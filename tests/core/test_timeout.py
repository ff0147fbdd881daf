"""The deprecated ``timeout`` context manager in asgiref_core.timeout."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from asgiref_core.timeout import timeout


def make(*args: Any, **kwargs: Any) -> timeout:
    """Build a timeout, expecting (and absorbing) its deprecation warning."""
    # "deprecated" matches both warnings, the second one being about ``loop``.
    with pytest.deprecated_call(match="deprecated"):
        return timeout(*args, **kwargs)


# --- deprecation and construction ---------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_construction_warns_and_points_at_the_caller() -> None:
    with pytest.warns(DeprecationWarning, match="deprecated") as record:
        timeout(1)
    assert len(record) == 1
    assert "asyncio.timeout()" in str(record[0].message)
    assert record[0].filename == __file__


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_loop_argument_warns_a_second_time() -> None:
    loop = asyncio.get_running_loop()
    with pytest.warns(DeprecationWarning, match="deprecated") as record:
        cm = timeout(1, loop=loop)
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 2, messages
    assert "asyncio.timeout()" in messages[0]
    assert "'loop' argument" in messages[1]
    assert all(warning.filename == __file__ for warning in record)
    async with cm:
        await asyncio.sleep(0)
    assert not cm.expired


def test_loop_is_keyword_only() -> None:
    loop = asyncio.new_event_loop()
    try:
        # Rejected while binding the arguments, before any warning.
        with pytest.raises(TypeError):
            timeout(1, loop)  # type: ignore[call-arg]
    finally:
        loop.close()


def test_construction_outside_a_running_loop_fails() -> None:
    with pytest.deprecated_call(), pytest.raises(RuntimeError, match="no running"):
        timeout(1)


# --- expiry -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_async_with_times_out() -> None:
    cm = make(0.01)
    with pytest.raises(TimeoutError) as info:
        async with cm:
            await asyncio.sleep(5)
    assert cm.expired
    assert cm.remaining == 0.0
    assert isinstance(info.value.__cause__, asyncio.CancelledError)


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_plain_with_times_out() -> None:
    cm = make(0.01)
    with pytest.raises(TimeoutError), cm:
        await asyncio.sleep(5)
    assert cm.expired


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_the_error_is_also_asyncio_timeout_error() -> None:
    with pytest.raises(asyncio.TimeoutError):
        async with make(0.01):
            await asyncio.sleep(5)


@pytest.mark.asyncio
@pytest.mark.timeout(10)
@pytest.mark.parametrize("seconds", [0, -1, -0.5])
async def test_non_positive_timeout_cancels_at_the_next_await(seconds: float) -> None:
    reached: list[str] = []
    cm = make(seconds)

    async def body() -> None:
        async with cm:
            reached.append("entered")
            await asyncio.sleep(5)
            reached.append("after sleep")

    with pytest.raises(TimeoutError):
        await body()
    assert reached == ["entered"]
    assert cm.expired
    # As in asgiref, a zero deadline is queued rather than timed.
    assert cm.remaining is None


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_zero_timeout_without_await_leaves_the_task_alone() -> None:
    cm = make(0)
    with cm:
        pass
    # The queued expiry must not cancel the task after the block.
    await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert not cm.expired


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_the_task_can_still_be_used_after_a_timeout() -> None:
    with pytest.raises(TimeoutError):
        async with make(0.01):
            await asyncio.sleep(5)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0.01)


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_body_that_swallows_the_cancellation_exits_normally() -> None:
    cm = make(0.01)
    async with cm:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)
    assert cm.expired
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


# --- no expiry ------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_fast_block_completes_and_no_cancellation_follows() -> None:
    cm = make(0.05)
    before = cm.remaining
    assert before is None  # nothing scheduled before entering
    async with cm as entered:
        assert entered is cm
        remaining = cm.remaining
        assert remaining is not None
        assert 0 < remaining <= 0.05
    assert not cm.expired
    # Sleeping past the old deadline must not be interrupted.
    await asyncio.sleep(0.1)
    assert not cm.expired


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_plain_with_returns_the_manager() -> None:
    cm = make(1)
    with cm as entered:
        assert entered is cm


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_remaining_counts_down() -> None:
    cm = make(5)
    async with cm:
        first = cm.remaining
        await asyncio.sleep(0.02)
        second = cm.remaining
    assert first is not None
    assert second is not None
    assert second < first


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_none_disables_the_timeout() -> None:
    cm = make(None)
    async with cm:
        await asyncio.sleep(0.02)
    assert not cm.expired
    assert cm.remaining is None


def test_none_needs_no_task() -> None:
    loop = asyncio.new_event_loop()
    try:
        cm = make(None, loop=loop)
        with cm as entered:
            assert entered is cm
    finally:
        loop.close()


# --- errors and cancellation from elsewhere -----------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_exceptions_from_the_body_pass_through() -> None:
    cm = make(0.05)
    with pytest.raises(ValueError, match="from the body"):
        async with cm:
            raise ValueError("from the body")
    assert not cm.expired
    await asyncio.sleep(0.1)  # and the deadline was dropped


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_outside_cancellation_is_not_turned_into_timeout_error() -> None:
    cm = make(5)
    started = asyncio.Event()

    async def body() -> None:
        async with cm:
            started.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not cm.expired


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_cancellation_racing_the_deadline_still_propagates() -> None:
    cm = make(0)

    async def body() -> None:
        async with cm:
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cm.expired


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_enclosing_asyncio_timeout_still_works_after_an_inner_expiry() -> None:
    async def inner() -> None:
        async with make(0.01):
            await asyncio.sleep(5)

    async def outer() -> None:
        async with asyncio.timeout(0.5):
            with pytest.raises(TimeoutError):
                await inner()
            await asyncio.sleep(5)

    # The outer deadline must still surface as TimeoutError, not as a bare
    # cancellation of this test (the inner one took back its cancel request).
    with pytest.raises(TimeoutError):
        await outer()


# --- misuse -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_entering_outside_a_task_fails() -> None:
    loop = asyncio.get_running_loop()
    cm = make(1)
    outcome: asyncio.Future[BaseException | None] = loop.create_future()

    def from_a_plain_callback() -> None:
        try:
            cm.__enter__()
        except RuntimeError as error:
            outcome.set_result(error)
        else:
            outcome.set_result(None)

    loop.call_soon(from_a_plain_callback)
    error = await outcome
    assert isinstance(error, RuntimeError)
    assert "inside an asyncio task" in str(error)


def test_entering_with_a_loop_that_is_not_running_fails() -> None:
    loop = asyncio.new_event_loop()
    try:
        cm = make(1, loop=loop)
        with pytest.raises(RuntimeError, match="inside an asyncio task"), cm:
            pass
    finally:
        loop.close()


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_reusing_the_manager_starts_a_fresh_deadline() -> None:
    cm = make(0.01)
    with pytest.raises(TimeoutError):
        async with cm:
            await asyncio.sleep(5)
    async with cm:
        await asyncio.sleep(0)
    assert not cm.expired
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
