"""CurrentThreadExecutor: work submitted elsewhere runs on the owning thread."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from asgiref_core.current_thread_executor import CurrentThreadExecutor

pytestmark = pytest.mark.timeout(20)


def test_submitted_work_runs_on_the_owning_thread_until_the_future_is_done() -> None:
    executor = CurrentThreadExecutor()
    done: Future[None] = Future()
    results: list[Future[str]] = []

    def other_thread() -> None:
        for _ in range(3):
            results.append(executor.submit(lambda: threading.current_thread().name))
        for result in results:
            result.result(timeout=5)
        done.set_result(None)

    threading.Thread(target=other_thread).start()
    executor.run_until_future(done)
    assert [result.result() for result in results] == ["MainThread"] * 3
    assert not executor.serving


def test_exceptions_reach_the_submitter() -> None:
    executor = CurrentThreadExecutor()
    done: Future[None] = Future()
    outcome: list[BaseException] = []

    def fail() -> None:
        raise ValueError("boom")

    def other_thread() -> None:
        future = executor.submit(fail)
        outcome.append(future.exception(timeout=5))  # type: ignore[arg-type]
        done.set_result(None)

    threading.Thread(target=other_thread).start()
    executor.run_until_future(done)
    assert isinstance(outcome[0], ValueError)


def test_submitting_from_the_owning_thread_is_refused() -> None:
    executor = CurrentThreadExecutor()
    with pytest.raises(RuntimeError, match="from that same thread"):
        executor.submit(print)


def test_running_from_another_thread_is_refused() -> None:
    executor = CurrentThreadExecutor()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            executor.run_until_future(Future())
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(5)
    assert "only that thread can run it" in str(errors[0])


def test_work_after_it_stopped_goes_to_the_enclosing_executor() -> None:
    outer = CurrentThreadExecutor()
    inner = CurrentThreadExecutor(outer)
    finished: Future[None] = Future()
    inner.wake()
    inner.serve()  # returns at once: already woken
    assert not inner.serving

    ran_on: list[str] = []

    def other_thread() -> None:
        inner.submit(lambda: ran_on.append(threading.current_thread().name)).result(
            timeout=5
        )
        finished.set_result(None)

    threading.Thread(target=other_thread).start()
    outer.run_until_future(finished)
    assert ran_on == ["MainThread"]


def test_submitting_when_no_executor_serves_is_a_clear_error() -> None:
    executor = CurrentThreadExecutor()
    executor.wake()
    executor.serve()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            executor.submit(print)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(5)
    assert "have stopped serving" in str(errors[0])


def test_poll_runs_while_idle_and_can_end_the_wait() -> None:
    executor = CurrentThreadExecutor()
    polls: list[int] = []

    def poll() -> None:
        polls.append(1)
        if len(polls) == 3:
            raise TimeoutError("gave up")

    with pytest.raises(TimeoutError, match="gave up"):
        executor.serve(poll, poll_interval=0.01)
    assert len(polls) == 3
    assert not executor.serving
