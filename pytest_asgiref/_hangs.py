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

This module holds only the hooks that run at load and per collection;
everything else is imported once a run needs it: ``_hangs_watcher`` (the
limits and the per-phase watch), ``_hangs_timeout`` (pytest-timeout's
timer), ``_hangs_watch`` (the watchdog thread), ``_hangs_cycles``
(deadlocks), ``_hangs_inputs`` and ``_hangs_report`` (the text) and
``_hangs_frames`` (reading threads and tasks).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Final

import pytest

from pytest_asgiref._markers import marker_names_used
from pytest_asgiref._options import settings_of

__all__ = ["MARKER_HELP", "TimeoutReportsOnDemand", "installed_pytest_timeout"]

MARKER_HELP: Final = (
    "asgi_timeout(seconds): cancel the test if its setup, call or teardown "
    "runs longer, and fail it with a hang report (overrides --asgi-timeout; "
    "0 turns the limit off)"
)

_TIMEOUT_REPORTS_NAME: Final = "asgiref-timeout-reports"


def installed_pytest_timeout() -> ModuleType | None:
    """pytest-timeout's module, if it is installed with the functions used here."""
    try:
        pytest_timeout = importlib.import_module("pytest_timeout")
    except ImportError:
        return None
    needed = ("timeout_sigalrm", "timeout_timer", "is_debugging")
    return pytest_timeout if all(hasattr(pytest_timeout, n) for n in needed) else None


class TimeoutReportsOnDemand:
    """Sets pytest-timeout's timers up with hang reports, loading the code
    that does it (:mod:`pytest_asgiref._hangs_timeout`) for the first one:
    most runs never set one."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self._reports: Any = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool:
        if self._reports is None:
            from pytest_asgiref._hangs_timeout import TimeoutReports  # noqa: PLC0415

            self._reports = TimeoutReports(self.module)
        return bool(self._reports.pytest_timeout_set_timer(item, settings))


def _enable_watcher(config: pytest.Config) -> None:
    from pytest_asgiref._hangs_watcher import enable_watcher  # noqa: PLC0415

    enable_watcher(config)


# -- hook implementations ---------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    module = installed_pytest_timeout()
    if module is not None and config.pluginmanager.hasplugin("timeout"):
        reports = TimeoutReportsOnDemand(module)
        config.pluginmanager.register(reports, _TIMEOUT_REPORTS_NAME)
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
