"""``--asgi-timeout``: each test phase's time limit, and the plugin that
watches every phase under one (:class:`HangWatcher`, registered only when a
run has a limit somewhere).

A phase that outlives its limit is ended where it waits by the watchdog
(:mod:`pytest_asgiref._hangs_watch`), and fails with the hang report; a
deadlock that involves the test fails it at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_asgiref._markers import fail_for
from pytest_asgiref._options import settings_of

if TYPE_CHECKING:
    from pytest_asgiref._hangs_cycles import Deadlock, Scene
    from pytest_asgiref._hangs_watch import Watch

__all__ = ["HangWatcher", "enable_watcher"]

_WATCHER_NAME: Final = "asgiref-hang-watch"


# (seconds, where the limit comes from) per test; seconds 0 means none.
_LIMIT_KEY: Final = pytest.StashKey[tuple[float, str]]()


# A bad asgi_timeout marker's failure, raised once skip markers had their say.
_BAD_MARKER_KEY: Final = pytest.StashKey[BaseException]()


_HOW_TO_RAISE: Final = (
    "If it needs longer, raise the limit with @pytest.mark.asgi_timeout(N) or "
    "--asgi-timeout N (0 turns it off)."
)


def _limit(item: pytest.Item) -> tuple[float, str]:
    """The test's time limit and where it comes from, checked once."""
    cached = item.stash.get(_LIMIT_KEY, None)
    if cached is not None:
        return cached
    # Cached before checking: a bad marker fails setup once, not each phase.
    item.stash[_LIMIT_KEY] = (0.0, "")
    closest = next(item.iter_markers_with_node("asgi_timeout"), None)
    if closest is not None:
        node, marker = closest
        seconds = _marker_seconds(item, marker)
        source = f"@pytest.mark.asgi_timeout({seconds:g}){_placed_on(item, node)}"
    else:
        seconds = settings_of(item.config).timeout
        source = settings_of(item.config).timeout_source if seconds else ""
    item.stash[_LIMIT_KEY] = (seconds, source)
    return seconds, source


def _placed_on(item: pytest.Item, node: object) -> str:
    if node is item:
        return ""
    if isinstance(node, pytest.Class):
        return f" on class {node.name}"
    if isinstance(node, pytest.Module):
        return f" on module {node.name}"
    return f" on {getattr(node, 'nodeid', '') or node!r}"


def _marker_seconds(item: pytest.Item, marker: pytest.Mark) -> float:
    where = "@pytest.mark.asgi_timeout"
    arguments = dict(marker.kwargs)
    value = arguments.pop("seconds", None)
    if arguments:
        unknown = ", ".join(sorted(arguments))
        fail_for(item, f"{where}: unknown option(s) {unknown} (valid: seconds)")
    if value is None and len(marker.args) == 1:
        value = marker.args[0]
    elif value is None or marker.args:
        fail_for(
            item,
            f"{where}: takes one number of seconds, such as "
            f"@pytest.mark.asgi_timeout(5) (got args={marker.args!r}, "
            f"kwargs={marker.kwargs!r})",
        )
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
    if not valid:
        fail_for(
            item,
            f"{where}: {value!r} is not a valid time limit; give a number of "
            "seconds such as 5 or 2.5, or 0 to turn the limit off for this test",
        )
    return float(value)


class HangWatcher:
    """The ``--asgi-timeout`` plugin object, registered only when needed."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_asgiref._hangs_watch import Watch, Watchdog  # noqa: PLC0415

        self.config = config
        self.dog = Watchdog(self._report, self._test_tasks, _debugger_check())
        self._watch = Watch
        self._limited: pytest.Item | None = None
        self._limit: tuple[float, str] = (0.0, "")

    def _report(
        self,
        watch: Watch,
        scene: Scene | None,
        deadlock: Deadlock | None,
        found: Deadlock | None,
    ) -> str:
        """The report on ``watch``'s hang; ``deadlock`` is the test's own,
        ``found`` any deadlock the watchdog found in ``scene``."""
        headline = _headline(watch, deadlock)
        if scene is None:
            return headline  # looking failed; the watchdog says why
        try:
            from pytest_asgiref._hangs_report import hang_report  # noqa: PLC0415

            return hang_report(
                watch.item, watch.thread, headline, scene, found, search=False
            )
        except Exception as error:
            return f"{headline}\n(the report failed: {type(error).__name__}: {error})"

    def _test_tasks(self, watch: Watch, scene: Scene) -> list[Any]:
        """Pending tasks on the loop the test's own thread runs (async tests)."""
        return [
            task
            for loop, ident in scene.loop_threads.items()
            if ident == watch.thread.ident and not loop.is_closed()
            for task in asyncio.all_tasks(loop)
        ]

    def _arm(self, item: pytest.Item, phase: str) -> Watch | None:
        # The three phases of one test come in a row: keep its limit at hand.
        if self._limited is not item:
            # Reset first: a bad marker raises, and must not leave the last
            # test's limit for this one's other phases.
            self._limited, self._limit = item, (0.0, "")
            try:
                self._limit = _limit(item)
            except pytest.fail.Exception as failure:
                # Raised by pytest_runtest_setup_marker below, after the
                # skip and xfail markers: a skipped test is skipped.
                item.stash[_BAD_MARKER_KEY] = failure
        seconds, source = self._limit
        if not seconds:
            self.dog.clear()
            return None
        watch = self._watch(
            item, phase, seconds, source, threading.current_thread(), time.monotonic()
        )
        self.dog.arm(watch)
        return watch

    def pytest_enter_pdb(self) -> None:
        # A debugging session is no hang: stop watching this phase.
        watch = self.dog.current
        if watch is not None:
            self.dog.disarm(watch)

    # The three phases alike: each runs under a watch of its own.

    def _watched(self, item: pytest.Item, phase: str) -> Generator[None, Any, Any]:
        watch = self._arm(item, phase)
        if watch is None:
            return (yield)
        try:
            try:
                result = yield
            except BaseException:
                if not self.dog.disarm(watch):
                    raise
            else:
                if not self.dog.disarm(watch):
                    return result
        finally:
            watch.ended = True
        # Outside the except clause: the exception it caught is noise.
        pytest.fail(_message(watch), pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._watched(item, "setup"))

    @pytest.hookimpl(specname="pytest_runtest_setup")
    def pytest_runtest_setup_marker(self, item: pytest.Item) -> None:
        # A plain implementation: pytest's skipping plugin runs before it.
        failure = item.stash.get(_BAD_MARKER_KEY, None)
        if failure is not None:
            del item.stash[_BAD_MARKER_KEY]
            raise failure

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._watched(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        return (yield from self._watched(item, "teardown"))


def _headline(watch: Watch, deadlock: Deadlock | None) -> str:
    where = f"{watch.item.nodeid}: "
    if deadlock is not None:
        elapsed = time.monotonic() - watch.started
        return (
            f"{where}a deadlock stopped the test's {watch.phase} after "
            f"{elapsed:.1f}s, so pytest-asgiref failed it without waiting for "
            f"the {watch.seconds:g}s limit set by {watch.source}:"
        )
    if watch.fires:
        return (
            f"{where}after the hang above was ended, the rest of the test's "
            f"{watch.phase} ran longer than {watch.seconds:g}s too, so "
            "pytest-asgiref ended it. What it was waiting for:"
        )
    return (
        f"{where}the test's {watch.phase} ran longer than {watch.seconds:g}s "
        f"(the limit set by {watch.source}), so pytest-asgiref ended it. "
        f"{_HOW_TO_RAISE} What it was waiting for:"
    )


def _message(watch: Watch) -> str:
    return "\n".join([watch.message, *watch.notes])


def _debugger_check() -> Callable[[], bool]:
    """Whether a debugger is attached, as pytest-timeout tells (if installed)."""
    from pytest_asgiref._hangs import installed_pytest_timeout  # noqa: PLC0415

    module = installed_pytest_timeout()
    if module is None:
        return _no_debugger

    def attached() -> bool:
        if module.is_debugging():  # pdb entered, or the watchdog is traced
            return True
        # What a debugger (debugpy, PyCharm's) sets up for every new thread.
        trace = threading.gettrace()
        return trace is not None and bool(module.is_debugging(trace))

    return attached


def _no_debugger() -> bool:
    return False


def enable_watcher(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin(_WATCHER_NAME) is not None:
        return
    watcher = HangWatcher(config)
    config.pluginmanager.register(watcher, _WATCHER_NAME)
    watcher.dog.start()

    def stop() -> None:
        watcher.dog.stop()
        config.pluginmanager.unregister(watcher)

    config.add_cleanup(stop)
