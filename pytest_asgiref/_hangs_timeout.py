"""pytest-timeout's timer, set up so that its timeouts carry the hang report.

Loaded when pytest-timeout sets its first timer (see
:class:`pytest_asgiref._hangs.TimeoutReportsOnDemand`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Generator
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    pass

__all__ = ["HangReportSections", "TimeoutReports"]

_SECTIONS_NAME: Final = "asgiref-timeout-report-sections"


# The report made when pytest-timeout fired, for the phase's test report.
_TIMEOUT_REPORT_KEY: Final = pytest.StashKey[str]()


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
