"""Hang reports and deadlock detection: ``--asgi-timeout`` and pytest-timeout.

With ``--asgi-timeout SECONDS`` (ini ``asgi_timeout``, marker
``@pytest.mark.asgi_timeout(seconds)``, which wins), each phase of a test
(setup, call, teardown) gets that long. A phase that outlives it is ended
where it waits: a sync test's portal call is cancelled, and the task an
async test, an async fixture or an ``async_to_sync`` call waits for gets an
exception at its stuck ``await``, on its own loop. The test then fails with
a report of its pending tasks, communicators and bridge waits; its other
fixtures are torn down as usual, and the session carries on. While a phase
runs, a cycle of waits that involves the test (a thread waiting for a loop
that waits for that thread) fails it without waiting for the limit, named,
once two looks a quarter of a second apart have seen it.

When pytest-timeout is installed, its timer is set up here instead
(``pytest_timeout_set_timer``, the hook it offers for that), so that the same
report comes with its failure (signal method: a report section) or its
stack dump (thread method, which then ends the process as usual).

The machinery lives in ``_hangs_watch`` (the watchdog), ``_hangs_cycles``
(deadlocks), ``_hangs_report`` (the text) and ``_hangs_frames`` (reading
threads and tasks).
"""

from __future__ import annotations

import asyncio
import importlib
import math
import signal
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_asgiref._markers import fail_for, marker_names_used
from pytest_asgiref._options import settings_of

if TYPE_CHECKING:
    from pytest_asgiref._hangs_cycles import Deadlock, Scene
    from pytest_asgiref._hangs_watch import Watch

# The machinery (_hangs_watch, _hangs_cycles, _hangs_report, _hangs_frames)
# is imported only once a run needs it: a run that never sets a time limit,
# or never times out, does not pay for loading it.

__all__ = [
    "MARKER_HELP",
    "HangWatcher",
    "HangReportSections",
    "TimeoutReports",
]

MARKER_HELP: Final = (
    "asgi_timeout(seconds): cancel the test if its setup, call or teardown "
    "runs longer, and fail it with a hang report (overrides --asgi-timeout; "
    "0 turns the limit off)"
)

_WATCHER_NAME: Final = "asgiref-hang-watch"
_TIMEOUT_REPORTS_NAME: Final = "asgiref-timeout-reports"
_SECTIONS_NAME: Final = "asgiref-timeout-report-sections"

# (seconds, where the limit comes from) per test; seconds 0 means none.
_LIMIT_KEY: Final = pytest.StashKey[tuple[float, str]]()
# The report made when pytest-timeout fired, for the phase's test report.
_TIMEOUT_REPORT_KEY: Final = pytest.StashKey[str]()
# A bad asgi_timeout marker's failure, raised once skip markers had their say.
_BAD_MARKER_KEY: Final = pytest.StashKey[BaseException]()

_HOW_TO_RAISE: Final = (
    "If it needs longer, raise the limit with @pytest.mark.asgi_timeout(N) or "
    "--asgi-timeout N (0 turns it off)."
)


# -- --asgi-timeout ----------------------------------------------------------------


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
    module = _pytest_timeout()
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


def _enable_watcher(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin(_WATCHER_NAME) is not None:
        return
    watcher = HangWatcher(config)
    config.pluginmanager.register(watcher, _WATCHER_NAME)
    watcher.dog.start()

    def stop() -> None:
        watcher.dog.stop()
        config.pluginmanager.unregister(watcher)

    config.add_cleanup(stop)


# -- pytest-timeout -----------------------------------------------------------------


def _pytest_timeout() -> ModuleType | None:
    """pytest-timeout's module, if it is installed with the functions used here."""
    try:
        pytest_timeout = importlib.import_module("pytest_timeout")
    except ImportError:
        return None
    needed = ("timeout_sigalrm", "timeout_timer", "is_debugging")
    return pytest_timeout if all(hasattr(pytest_timeout, n) for n in needed) else None


class TimeoutReports:
    """Sets pytest-timeout's timer up so that its timeouts carry the report.

    pytest-timeout offers ``pytest_timeout_set_timer`` for other timer set-ups
    and keeps its own behaviour in plain functions: this sets up the same
    timer (``SIGALRM``, or a timer thread), and when it fires writes the
    report first, then hands over to pytest-timeout's own function, which
    dumps the stacks and fails the test (or ends the process).
    """

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._sections_added = False

    def _add_sections(self, config: pytest.Config) -> None:
        # Registered with the first timer, not before: a run without
        # timeouts pays nothing per test for it.
        if not self._sections_added:
            config.pluginmanager.register(HangReportSections(), _SECTIONS_NAME)
            self._sections_added = True

    def _wanted(self, settings: Any) -> bool:
        if settings.disable_debugger_detection:
            return True
        return not self.module.is_debugging()

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool:
        self._add_sections(item.config)
        thread = threading.current_thread()
        signal_method = settings.method == "signal" and (
            thread is threading.main_thread()
        )
        if signal_method:
            self._set_alarm(item, settings, thread)
        else:
            # Like pytest-timeout, the thread method off the main thread.
            method = "thread method"
            if settings.method == "signal":
                method += ", since the signal method needs the main thread"
            self._set_timer(item, settings, thread, method)
        return True

    def _set_alarm(
        self, item: pytest.Item, settings: Any, thread: threading.Thread
    ) -> None:
        def on_alarm(signum: int, frame: FrameType | None) -> None:
            __tracebackhide__ = True
            if self._wanted(settings):
                item.stash[_TIMEOUT_REPORT_KEY] = _safe_report(
                    item, settings, "signal method", thread, frame
                )
            self.module.timeout_sigalrm(item, settings)

        def cancel() -> None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)

        # pytest-timeout's cancel hook calls this attribute.
        item.cancel_timeout = cancel  # type: ignore[attr-defined]
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, settings.timeout)

    def _set_timer(
        self, item: pytest.Item, settings: Any, thread: threading.Thread, method: str
    ) -> None:
        def on_timer() -> None:
            try:
                if self._wanted(settings):
                    self._write_report(item, settings, method, thread)
            finally:
                self.module.timeout_timer(item, settings)

        timer = threading.Timer(settings.timeout, on_timer)
        timer.name = f"{self.module.__name__} {item.nodeid}"

        def cancel() -> None:
            timer.cancel()
            timer.join()

        item.cancel_timeout = cancel  # type: ignore[attr-defined]
        timer.start()

    def _write_report(
        self, item: pytest.Item, settings: Any, method: str, thread: threading.Thread
    ) -> None:
        """Before the thread method's stack dump, which ends the process."""
        report = _safe_report(item, settings, method, thread, None)
        capture = item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture()
        terminal = item.config.get_terminal_writer()
        terminal.sep("+", title="asgiref hang report")
        terminal.line(report)
        terminal.flush()


class HangReportSections:
    """Puts the report a pytest-timeout alarm took into the test's report."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        text = item.stash.get(_TIMEOUT_REPORT_KEY, None)
        if text is not None:
            del item.stash[_TIMEOUT_REPORT_KEY]
            report.sections.append(("asgiref hang report", text))
        return report


def _safe_report(
    item: pytest.Item,
    settings: Any,
    method: str,
    thread: threading.Thread,
    frame: FrameType | None,
) -> str:
    """The report for pytest-timeout; a failure to make it must not keep
    pytest-timeout from doing its job."""
    headline = _timeout_headline(item, settings, method)
    try:
        from pytest_asgiref._hangs_cycles import look  # noqa: PLC0415
        from pytest_asgiref._hangs_report import hang_report  # noqa: PLC0415

        return hang_report(item, thread, headline, look(frame))
    except Exception as error:
        return f"{headline}\n(the report failed: {type(error).__name__}: {error})"


def _timeout_headline(item: pytest.Item, settings: Any, method: str) -> str:
    return (
        f"{item.nodeid}: pytest-timeout fired after {settings.timeout:g}s "
        f"({method}). What the test was waiting for:"
    )


# -- hook implementations ---------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    module = _pytest_timeout()
    if module is not None and config.pluginmanager.hasplugin("timeout"):
        config.pluginmanager.register(TimeoutReports(module), _TIMEOUT_REPORTS_NAME)
    if settings_of(config).timeout:
        _enable_watcher(config)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Without the option, only tests with the marker need the watchdog.
    if settings_of(config).timeout:
        return
    if marker_names_used(items, {"asgi_timeout"}):
        _enable_watcher(config)
