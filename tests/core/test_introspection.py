"""The bridges report their threads and waits while they run."""

from __future__ import annotations

import asyncio
import threading

import pytest

from asgiref_core.introspection import (
    THREAD_NAME_PREFIX,
    BridgeSnapshot,
    is_library_thread,
    library_threads,
    pending_waits,
    snapshot,
    thread_purpose,
)
from asgiref_core.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

pytestmark = pytest.mark.timeout(20)


def test_library_threads_are_named_for_their_purpose() -> None:
    async def main() -> None:
        await sync_to_async(lambda: None)()
        async with ThreadSensitiveContext():
            await sync_to_async(lambda: None)()

    async_to_sync(main)()
    asyncio.run(main())
    purposes = {thread.purpose for thread in library_threads()}
    assert {"thread-sensitive", "thread-sensitive-context", "loop"} <= purposes
    for thread in library_threads():
        assert thread.name.startswith(THREAD_NAME_PREFIX)
        assert is_library_thread(thread.thread)
    assert not is_library_thread(threading.current_thread())


def test_thread_purpose_reads_the_name() -> None:
    def named(name: str) -> threading.Thread:
        return threading.Thread(name=name)

    assert thread_purpose(named("asgiref_core-loop-3")) == "loop"
    assert thread_purpose(named("asgiref_core-loop-3-default-executor_0")) == (
        "loop-default-executor"
    )
    assert thread_purpose(named("asgiref_core-thread-sensitive-1")) == (
        "thread-sensitive"
    )
    assert thread_purpose(named("asgiref_core-thread-sensitive-context-9")) == (
        "thread-sensitive-context"
    )
    assert thread_purpose(named("asgiref_core-mystery")) == "other"


def test_waits_show_who_waits_for_what_on_which_loop() -> None:
    release = threading.Event()
    entered = threading.Event()
    seen: list[BridgeSnapshot] = []

    def blocking() -> None:
        entered.set()
        release.wait(5)

    async def main() -> None:
        running = asyncio.create_task(sync_to_async(blocking)())
        queued = asyncio.create_task(sync_to_async(blocking)())
        while not entered.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        seen.append(snapshot())
        release.set()
        await running
        await queued

    async_to_sync(main)()
    report = seen[0]
    kinds = sorted(wait.kind for wait in report.waits)
    assert kinds == ["async_to_sync", "thread_sensitive", "thread_sensitive"]
    blocked = next(w for w in report.waits if w.kind == "async_to_sync")
    assert blocked.thread_name == "MainThread"
    assert "main" in blocked.target
    assert blocked.loop is not None
    states = sorted(w.state for w in report.waits if w.kind == "thread_sensitive")
    assert states == ["queued", "running"]
    assert all(
        w.thread_name == "MainThread"
        for w in report.waits
        if w.kind == "thread_sensitive"
    )
    text = report.format()
    assert "blocked in async_to_sync" in text
    assert "awaits thread-sensitive sync_to_async" in text
    assert "<locals>.blocking" in text


def test_nothing_is_left_registered_afterwards() -> None:
    async def main() -> None:
        await sync_to_async(lambda: None)()

    async_to_sync(main)()
    asyncio.run(main())
    assert pending_waits() == []


def test_a_busy_worker_reports_what_it_runs() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_query() -> None:
        started.set()
        release.wait(5)

    reports: list[str | None] = []

    async def main() -> None:
        task = asyncio.create_task(sync_to_async(slow_query)())
        while not started.is_set():
            await asyncio.sleep(0.01)
        worker = next(t for t in library_threads() if t.purpose == "thread-sensitive")
        reports.append(worker.running)
        release.set()
        await task

    asyncio.run(main())
    assert reports[0] is not None
    assert reports[0].endswith("slow_query")
