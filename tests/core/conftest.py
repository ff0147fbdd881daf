"""Fixtures shared by the core tests (plain pytest; never the plugin)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest_asyncio

from asgiref_core import _workers

# How long teardown gives a worker to finish a call that should be over.
_PATIENCE = 5.0


def _foreign_threads() -> set[threading.Thread]:
    # The library's pooled worker threads are long-lived by design.
    return {
        thread
        for thread in threading.enumerate()
        if not thread.name.startswith("asgiref_core-")
    }


def _busy_workers() -> set[str]:
    return {w.thread.name for w in _workers.live_workers() if not w.idle()}


@pytest_asyncio.fixture
async def no_wsgi_leaks() -> AsyncIterator[None]:
    """The test leaves no task pending, no thread of its own, no worker busy.

    A worker thread still running a WSGI call after the test is a leaked
    call: an application blocked for good.
    """
    threads_before = _foreign_threads()
    busy_before = _busy_workers()
    yield
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert _foreign_threads() <= threads_before
    deadline = time.monotonic() + _PATIENCE
    while not _busy_workers() <= busy_before and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    leaked = _busy_workers() - busy_before
    assert not leaked, f"worker threads still running a call: {sorted(leaked)}"
