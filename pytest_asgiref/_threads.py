"""The thread and task leak check.

Every test is checked: the threads alive before its setup are compared with
those alive after its teardown, and the tasks pending on its event loops
likewise. What the test left behind is reported as a
:class:`PytestAsgiThreadLeakWarning` or :class:`PytestAsgiPendingTaskWarning`
(and in a summary at the end of the run), or, for a strict test
(``--asgi-strict-threads``, the ini key or the ``asgi_strict_threads``
marker), as an error at teardown.

No false alarms is the rule, so before a thread counts as leaked:

- it gets a short grace period (and one garbage collection) to end;
- asgiref_core's threads resting in their pools are no leak (see
  :mod:`pytest_asgiref._threads_classify`), nor the portal, nor the default
  executor of a loop that is still open, nor a thread started by an import
  (module state), nor a thread whose name is allowed (ini key or hook);
- what a fixture of wider scope, or a lifespan shared by a module or the
  session, started belongs to it: it is checked when that ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any, Final

import pytest
import pytest_asyncio

from asgiref_core._bridge_state import THREAD_NAME_PREFIX
from pytest_asgiref._keys import LIFESPANS, PORTAL
from pytest_asgiref._loops import LOOP_SCOPES, async_loop_scope
from pytest_asgiref._markers import fail_for, marker_names_used
from pytest_asgiref._options import settings_of
from pytest_asgiref._threads_tracking import Owner, Phase, StartTracker

if TYPE_CHECKING:
    from pytest_asgiref._threads_report import Finding, Findings

# Most tests start no thread and touch no event loop: for them the check is a
# comparison of two thread lists. What examines a suspect (the classifying,
# the grace period, the reports) is imported on first need, so merely loading
# the plugin does not load it, nor asgiref_core's bridge modules.

__all__ = ["LeakCheck"]

MARKER_HELP: Final = (
    "asgi_strict_threads(strict=True): make this test error at teardown (True) "
    "or only warn (False) when it leaves a thread running or a task pending, "
    "whatever --asgi-strict-threads says"
)

_PLUGIN_NAME: Final = "pytest_asgiref-leak-check"
# Where a pytest-xdist worker hands its summary lines to the controller.
_WORKER_OUTPUT_KEY: Final = "pytest_asgiref_leaks"

Task = asyncio.Task[Any]
Loop = asyncio.AbstractEventLoop

_STRICT_MARKER: Final = "asgi_strict_threads"
# How long a library thread a wider fixture used gets to go back to its pool.
_HOLD_SETTLE: Final = 0.05
# pytest-asyncio's fixtures that hold its event loops, by name -> loop scope.
_RUNNERS: Final = {f"_{scope}_scoped_runner": scope for scope in LOOP_SCOPES}


def _any_library_thread(threads: Iterable[threading.Thread]) -> bool:
    return any(thread.name.startswith(THREAD_NAME_PREFIX) for thread in threads)


def _library_loops() -> list[Loop]:
    """The loops of asgiref_core's loop threads; none if no bridge was used."""
    if "asgiref_core._workers" not in sys.modules:
        return []
    from pytest_asgiref._threads_classify import library_loops  # noqa: PLC0415

    return library_loops()


def _lent_library_threads() -> set[threading.Thread]:
    """asgiref_core's threads out of their pools now."""
    threads = threading.enumerate()
    if not _any_library_thread(threads):
        return set()
    from pytest_asgiref._threads_classify import (  # noqa: PLC0415
        active_library_threads,
    )

    return active_library_threads(threads)


def _newly_held(lent: set[threading.Thread]) -> set[threading.Thread]:
    """asgiref_core's threads taken out of their pools since ``lent`` was
    read, and still out, for good.

    A thread just finishing a call is back in its pool a moment later, so
    it gets that moment. The process-wide executor is never held: it is
    out only while it runs a call, and a call still running after a
    fixture's setup is that fixture's leak.
    """
    deadline = time.monotonic() + _HOLD_SETTLE
    while True:
        new = _lent_library_threads() - lent
        if new:
            from asgiref_core.introspection import thread_purpose  # noqa: PLC0415

            new = {t for t in new if thread_purpose(t) != "thread-sensitive"}
        if not new or time.monotonic() >= deadline:
            return new
        time.sleep(0.005)


def pending_tasks(loop: Loop) -> set[Task]:
    """The tasks not yet done on ``loop`` (callable from any thread)."""
    if loop.is_closed():
        return set()
    return asyncio.all_tasks(loop)


class PerTestState:
    """What one test had before its setup, and what its teardown found."""

    __slots__ = (
        "active_before",
        "closing",
        "item",
        "loops",
        "misused",
        "strict",
        "tasks_before",
        "threads_before",
    )

    def __init__(self, item: pytest.Item, strict: bool, misused: str | None) -> None:
        self.item = item
        self.strict = strict
        # What is wrong with the test's marker, reported after its setup.
        self.misused = misused
        self.threads_before: set[threading.Thread] = set()
        self.active_before: set[threading.Thread] = set()
        self.tasks_before: dict[Loop, set[Task]] = {}
        self.loops: dict[Loop, str] = {}
        # Tasks found pending when one of the test's loops closed at teardown.
        self.closing: list[Finding] = []


class LeakCheck:
    """The check itself: a plugin object, one per run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.strict_default = settings_of(config).strict_threads
        self.tracker = StartTracker()
        self.owners: list[Owner] = []
        self.runner_loops: dict[str, Loop] = {}  # pytest-asyncio loop scope -> loop
        self.reports: list[Findings] = []
        # Summary lines that pytest-xdist workers sent back.
        self.from_workers: list[str] = []
        # Whether any collected test (or a node above one) has the marker;
        # until collection says otherwise, assume some might.
        self.marker_used = True
        self._allowed: tuple[str, ...] | None = None
        self._state: PerTestState | None = None
        # What was reported already: a thread or task is reported once, by
        # the test that left it, however many later checks still see it.
        self.reported_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
        self.reported_tasks: weakref.WeakSet[Task] = weakref.WeakSet()
        # Warnings issued, waiting for pytest to record them (a filter may
        # drop them): id -> (the warning, what it reports).
        self._unrecorded: dict[int, tuple[Warning, Findings]] = {}
        self._lifespan_keys: set[object] = set()

    # -- what is watched ------------------------------------------------------

    def allowed(self) -> tuple[str, ...]:
        if self._allowed is None:
            patterns = list(settings_of(self.config).allowed_threads)
            for found in self.config.hook.pytest_asgiref_allowed_threads(
                config=self.config
            ):
                if isinstance(found, str) or not all(
                    isinstance(pattern, str) for pattern in found or ()
                ):
                    pytest.fail(
                        f"the pytest_asgiref_allowed_threads hook returned "
                        f"{found!r}; return a list of fnmatch patterns of "
                        "thread names, such as ['metrics-*'], or None",
                        pytrace=False,
                    )
                patterns += found or ()
            self._allowed = tuple(patterns)
        return self._allowed

    def _portal_loop(self) -> Loop | None:
        portal = self.config.stash.get(PORTAL, None)
        if portal is None or portal.loop.is_closed():
            return None
        return portal.loop

    def _loops_for(self, item: pytest.Item) -> dict[Loop, str]:
        """The open loops whose tasks this test could leave: loop -> description."""
        loops: dict[Loop, str] = {}
        if self.runner_loops and pytest_asyncio.is_async_test(item):
            scope = async_loop_scope(item)
            loop = self.runner_loops.get(scope)
            if loop is not None and not loop.is_closed():
                loops[loop] = f"the test's event loop ({scope} loop scope)"
        portal = self._portal_loop()
        if portal is not None:
            loops[portal] = "the portal's event loop (sync tests and their app)"
        for loop in _library_loops():
            loops[loop] = "an event loop of asgiref_core's async_to_sync threads"
        return loops

    def _strict(self, item: pytest.Item) -> tuple[bool, str | None]:
        """Whether the test is strict, and what is wrong with its marker."""
        default = self.strict_default
        if not self.marker_used:
            return default, None
        marker = item.get_closest_marker(_STRICT_MARKER)
        if marker is None:
            return default, None
        arguments = [*marker.args, *marker.kwargs.values()]
        unknown = set(marker.kwargs) - {"strict"}
        if (
            len(arguments) > 1
            or unknown
            or not isinstance(arguments[0] if arguments else True, bool)
        ):
            problem = (
                f"@pytest.mark.asgi_strict_threads takes one optional True or "
                f"False (got args={marker.args!r}, kwargs={marker.kwargs!r}); "
                "write @pytest.mark.asgi_strict_threads(False) to only warn"
            )
            return default, problem
        return (bool(arguments[0]) if arguments else True), None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.marker_used = bool(marker_names_used(items, {_STRICT_MARKER}))

    # -- the test's phases ----------------------------------------------------

    # Plain hook implementations rather than wrappers, first and last in each
    # phase: they run for every test of the run, and cost less this way. (The
    # second of a pair needs a name of its own; pytest reads only attributes
    # named pytest_*, so specname= points it at the hook.)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self._unrecorded:  # issued by an earlier test, and never recorded
            self._unrecorded.clear()
        strict, misused = self._strict(item)
        state = PerTestState(item, strict, misused)
        threads = threading.enumerate()
        state.threads_before = set(threads)
        if _any_library_thread(threads):
            from pytest_asgiref._threads_classify import (  # noqa: PLC0415
                active_library_threads,
            )

            state.active_before = active_library_threads(threads)
        state.loops = self._loops_for(item)
        if state.loops:
            state.tasks_before = {loop: pending_tasks(loop) for loop in state.loops}
        self._state = state
        self.tracker.phases[:] = [Phase(f"the setup of {item.nodeid}")]

    @pytest.hookimpl(trylast=True, specname="pytest_runtest_setup")
    def pytest_runtest_setup_last(self, item: pytest.Item) -> None:
        # Until teardown, what starts belongs to the test body.
        self.tracker.phases[:] = [Phase(f"the test body of {item.nodeid}")]
        state = self._state
        if state is not None and state.misused is not None:
            # Reported once the setup is complete, so that its teardown (and
            # every other plugin's) finds what it set up.
            fail_for(item, state.misused)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> None:
        self.tracker.phases[:] = [Phase(f"the teardown of {item.nodeid}")]

    @pytest.hookimpl(trylast=True, specname="pytest_runtest_teardown")
    def pytest_runtest_teardown_last(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> None:
        self.tracker.phases.clear()
        self._report(item, self._check(item), raising=True)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self._state is None:
            return
        # The teardown failed before the check ran: report what was left
        # as warnings, never instead of that failure.
        self.tracker.phases.clear()
        item = self._state.item
        self._report(item, self._check(item), raising=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        scope = fixturedef.scope
        name = f"fixture {fixturedef.argname!r}"
        owner = None
        before: set[Task] = set()
        lent: set[threading.Thread] = set()
        if scope != "function":
            name += f" ({scope} scope)"
            owner = Owner(name, finished=lambda: False)
            before = self._pending_everywhere()
            lent = _lent_library_threads()
        cache = self.config.stash.get(LIFESPANS, None)
        lifespans = 0 if cache is None else len(cache)
        phase = Phase(f"the setup of {name}", owner)
        self.tracker.phases.append(phase)
        try:
            result = yield
        finally:
            with contextlib.suppress(ValueError):  # the test's phase moved on
                self.tracker.phases.remove(phase)
            if owner is not None:
                # Also when the setup failed: pytest keeps the error as the
                # cached result, and what the setup started is checked when
                # that is dropped.
                token = fixturedef.cached_result
                owner.finished = lambda: fixturedef.cached_result is not token
                owner.tasks.update(self._pending_everywhere() - before)
                owner.threads.update(_newly_held(lent))
                self.owners.append(owner)
        if isinstance(result, asyncio.Runner) and fixturedef.argname in _RUNNERS:
            self._watch_runner(fixturedef, result)
        cache = self.config.stash.get(LIFESPANS, None)
        if cache is not None and len(cache) > lifespans:
            self._adopt_lifespans(phase, cache)
        return result

    def _pending_everywhere(self) -> set[Task]:
        loops = [*self.runner_loops.values(), *_library_loops()]
        portal = self._portal_loop()
        if portal is not None:
            loops.append(portal)
        return {task for loop in loops for task in pending_tasks(loop)}

    def _adopt_lifespans(self, phase: Phase, cache: dict[Any, Any]) -> None:
        """A lifespan wider than the test started: what came with it is its own."""
        new = [key for key in cache if key not in self._lifespan_keys]
        self._lifespan_keys = set(cache)
        if not new:
            return
        scopes = ", ".join(repr(key[0]) if key[0] else "the session" for key in new)
        owner = Owner(
            f"the application's lifespan shared by {scopes}",
            finished=lambda: not any(key in cache for key in new),
        )
        known = set().union(*(o.tasks for o in self.owners))
        state = self._state
        before = set().union(*state.tasks_before.values()) if state else set()
        owner.tasks.update(self._pending_everywhere() - before - known)
        phase.owner = owner
        self.owners.append(owner)

    def _watch_runner(
        self, fixturedef: pytest.FixtureDef[Any], runner: asyncio.Runner
    ) -> None:
        """Note a pytest-asyncio loop; check its tasks just before it closes."""
        loop = runner.get_loop()
        scope = _RUNNERS[fixturedef.argname]
        self.runner_loops[scope] = loop
        description = f"the test's event loop ({scope} loop scope)"

        def before_close() -> None:
            state = self._state
            if state is None or loop.is_closed():
                return
            suspects = pending_tasks(loop) - state.tasks_before.get(loop, set())
            suspects -= self.accounted_tasks()
            if not suspects:
                return
            from pytest_asgiref._threads_findings import (  # noqa: PLC0415
                settle_tasks,
                task_finding,
            )

            left = settle_tasks(loop, suspects)
            self.reported_tasks.update(left)
            state.closing += [task_finding(task, loop, description) for task in left]

        # Added after the runner's own teardown, so it runs just before it.
        fixturedef.addfinalizer(before_close)

    def accounted_tasks(self) -> set[Task]:
        """Tasks no test is to be blamed for now: those something wider that
        has not ended owns, and those reported already."""
        owned = {
            t for owner in self.owners if not owner.finished() for t in owner.tasks
        }
        return owned | set(self.reported_tasks)

    # -- the verdict ----------------------------------------------------------

    def _check(self, item: pytest.Item) -> Findings | None:
        """What the test left behind; ``None`` when plainly nothing."""
        state = self._state
        self._state = None
        if state is None:
            return None
        ended = [owner for owner in self.owners if owner.finished()]
        if ended:
            self.owners = [owner for owner in self.owners if owner not in ended]
            ended = [owner for owner in ended if self._left_anything(owner)]
        after = threading.enumerate()
        loops = {**state.loops, **self._loops_for(item)}
        before = state.threads_before
        if (
            not ended
            and not loops
            and not state.closing
            and all(thread in before for thread in after)
            and not _any_library_thread(after)
        ):
            return None
        from pytest_asgiref._threads_verdict import examine  # noqa: PLC0415

        return examine(self, item, state, after, ended, loops)

    def _left_anything(self, owner: Owner) -> bool:
        """Whether an owner that ended left a task or a thread it started."""
        if any(not task.done() for task in owner.tasks):
            return True
        if any(thread.is_alive() for thread in owner.threads):
            return True
        return any(
            record.phase is not None
            and record.phase.owner is owner
            and thread.is_alive()
            for thread, record in self.tracker.snapshot()
        )

    def _report(
        self, item: pytest.Item, findings: Findings | None, *, raising: bool
    ) -> None:
        if not findings:
            return
        if not raising:
            # Only warnings now: the summary shows the details.
            findings.strict = False
        if findings.strict:
            self.reports.append(findings)
            pytest.fail(findings.failure_message(), pytrace=False)
        for warning in findings.warnings():
            # Summarised once pytest records it: a filter may ignore it.
            self._unrecorded[id(warning)] = (warning, findings)
            try:
                item.warn(warning)
            except Warning as error:
                # A warning filter made it an error.
                del self._unrecorded[id(warning)]
                self._summarise(findings)
                if not raising:
                    continue  # the test failed already
                # Show it as an error, with the details, and say so in the
                # summary.
                findings.strict = True
                kind = type(error)
                headline = f"{kind.__module__}.{kind.__qualname__}: {error}"
                msg = "\n".join([headline, *findings.detail_lines()])
                pytest.fail(msg, pytrace=False)

    def _summarise(self, findings: Findings) -> None:
        if not any(found is findings for found in self.reports):
            self.reports.append(findings)

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage) -> None:
        entry = self._unrecorded.pop(id(warning_message.message), None)
        if entry is not None and entry[0] is warning_message.message:
            self._summarise(entry[1])

    # -- the end of the run ---------------------------------------------------

    def _summary_lines(self) -> list[str]:
        lines = [line for found in self.reports for line in found.summary_lines()]
        return self.from_workers + lines

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(self.config, "workeroutput", None)
        if isinstance(output, dict) and self.reports:
            output[_WORKER_OUTPUT_KEY] = self._summary_lines()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.from_workers += [str(line) for line in output.get(_WORKER_OUTPUT_KEY, ())]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self._summary_lines()
        if not lines:
            return
        from pytest_asgiref._threads_report import SUMMARY_TITLE  # noqa: PLC0415

        terminalreporter.write_sep("=", SUMMARY_TITLE)
        for line in lines:
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    check = LeakCheck(config)
    check.tracker.install()
    config.add_cleanup(check.tracker.uninstall)
    config.pluginmanager.register(check, _PLUGIN_NAME)
