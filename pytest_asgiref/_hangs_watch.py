"""The watchdog thread behind ``--asgi-timeout``.

One daemon thread per session looks at the phase being run (setup, call or
teardown of one test) four times a second. Arming and disarming a phase is
an attribute write and a lock, so a run where nothing hangs pays next to
nothing. When a phase outlives its limit, or a deadlock involving the test
is seen twice in a row, the watchdog writes the report, then ends the wait
the test's thread is stuck in (:func:`~pytest_asgiref._hangs_frames.unblock`):
a blocking call's future is cancelled, and a task the thread waits for gets
:class:`HangTimeout` at the ``await`` it is suspended in. For a deadlock the
other threads of the cycle are freed the same way. Both are ordinary
exceptions, so pytest goes on with the test's other fixture teardowns as it
does after any failing one. The test's own hook wrapper then fails the
phase with the report; the process and the session carry on.

The hang is over once the frame it happened in has returned: the test
function, or the fixture or finalizer being set up or torn down (the
outermost frame below pytest's own). Until then the watchdog insists: half a
second after it fired it cancels the same task again (for code that
swallowed :class:`HangTimeout`), and from a second after it fired it
interrupts the thread with a signal, once a second and at most five times,
as pytest-timeout's signal method does. That needs POSIX, the main thread,
and ``SIGUSR2`` left to its default handler; the handler raises
:class:`HangInterrupt` only while that frame is still on the thread's stack,
so a signal that arrives late lands nowhere. Once the hang is over, what is
left of the phase (the other fixtures' teardowns, say) runs under a fresh
limit of the same length.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_asgiref._outcomes import HangTimeout

if TYPE_CHECKING:
    from pytest_asgiref._hangs_cycles import Deadlock, Scene
    from pytest_asgiref._hangs_frames import Unblocked

# The deadlock and report machinery is imported by the watchdog thread when a
# phase first runs long: a run where every test is quick never loads it.

__all__ = ["HangInterrupt", "Watch", "Watchdog"]

#: Seconds between two looks at the running phase.
POLL: Final = 0.25
#: A phase must have run this long before deadlocks are looked for.
DEADLOCK_AFTER: Final = 0.25
#: Seconds between two deadlock checks of one phase, at first and whenever
#: a check finds something to confirm.
CHECK_EVERY: Final = 0.25
#: Each check that finds nothing spaces the next one out by this factor, up
#: to CHECK_AT_MOST seconds: a long, healthy phase is looked at less often.
CHECK_BACKOFF: Final = 1.5
CHECK_AT_MOST: Final = 2.0
#: After firing, seconds until the same task is cancelled.
RETRY_AFTER: Final = 0.5
#: After firing, seconds until the thread is first interrupted with a signal.
SIGNAL_AFTER: Final = 1.0
_MAX_SIGNALS: Final = 5

_INTERRUPT_SIGNAL: Final[int | None] = getattr(signal, "SIGUSR2", None)

WATCHDOG_THREAD_NAME: Final = "pytest_asgiref-hang-watch"


class HangInterrupt(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """Raised in a stuck test's thread by the signal, when ending its wait
    did not end it.

    A test outcome (pytest's failure exception), like the one
    pytest-timeout raises: an application's ``except Exception`` cannot
    swallow it, and pytest still runs the test's other fixture teardowns.
    """


class Watch:
    """One phase of one test under a time limit.

    One is made for every phase of every test, so only what every phase
    needs is set here; what the watchdog fills in when a phase runs long
    starts out as a class attribute.
    """

    #: Set by the test's thread when the phase is over, before anything else.
    ended = False
    #: Set by the watchdog while it ends a hang; None while the phase runs.
    reason: str | None = None
    #: The reports, one per hang ended in this phase.
    message = ""
    fires = 0
    fired_at = 0.0
    retried = False
    signals = 0
    notes: tuple[str, ...] = ()
    #: The frame the hang happened in: the hang is over once it returns.
    hung_frame: FrameType | None = None
    #: What was done to the test's thread's wait, to insist on that one only.
    unblocked: Unblocked | None = None
    _suspect: tuple[object, ...] | None = None
    _next_check = 0.0
    _check_gap = CHECK_EVERY

    def __init__(
        self,
        item: pytest.Item,
        phase: str,
        seconds: float,
        source: str,
        thread: threading.Thread,
        started: float,
    ) -> None:
        self.item = item
        self.phase = phase
        self.seconds = seconds
        self.source = source
        self.thread = thread
        self.started = started
        self.deadline = started + seconds

    @property
    def given_up(self) -> bool:
        """Whether the watchdog ended a hang in this phase."""
        return self.fires > 0

    def error(self) -> HangTimeout:
        """A fresh exception to raise in one of the phase's hung tasks."""
        reason = self.reason or "timeout"
        return HangTimeout(
            f"{self.item.nodeid}: the test's {self.phase} was ended by "
            f"pytest-asgiref ({reason}); the test's failure has the report"
        )


if TYPE_CHECKING:
    # (watch, scene or None if looking failed, the test's deadlock or None,
    # any deadlock found in the scene or None) -> the report's text.
    Reporter = Callable[[Watch, Scene | None, Deadlock | None, Deadlock | None], str]
    # (watch, scene) -> the tasks the test itself runs (for cycles of tasks).
    TaskFinder = Callable[[Watch, Scene], list[Any]]


def _never() -> bool:
    return False


class Watchdog:
    """The session's watchdog; see the module's documentation."""

    def __init__(
        self,
        reporter: Reporter,
        test_tasks: TaskFinder,
        debugging: Callable[[], bool] = _never,
    ) -> None:
        self._reporter = reporter
        self._test_tasks = test_tasks
        self._debugging = debugging
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restore_signal: Callable[[], None] | None = None
        self.current: Watch | None = None

    # -- life cycle (main thread) ---------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._main, name=WATCHDOG_THREAD_NAME, daemon=True
        )
        self._thread.start()
        self._restore_signal = self._install_interrupt()

    def stop(self) -> None:
        # Under the lock: once it is released no signal can be on its way,
        # so putting the default handler back cannot let one kill the process.
        with self._lock:
            self.current = None
            self._stop.set()
        if self._thread is not None:
            self._thread.join(POLL * 4)
        if self._restore_signal is not None:
            self._restore_signal()
            self._restore_signal = None

    def _install_interrupt(self) -> Callable[[], None] | None:
        if (
            _INTERRUPT_SIGNAL is None
            or not hasattr(signal, "pthread_kill")
            or threading.current_thread() is not threading.main_thread()
        ):
            return None
        previous = signal.getsignal(_INTERRUPT_SIGNAL)
        if previous is not signal.SIG_DFL:
            return None  # somebody else's handler: leave the signal alone
        signal.signal(_INTERRUPT_SIGNAL, self._on_signal)
        number = _INTERRUPT_SIGNAL

        def restore() -> None:
            if signal.getsignal(number) == self._on_signal:
                signal.signal(number, previous)

        return restore

    # -- the test's side --------------------------------------------------------

    def arm(self, watch: Watch) -> None:
        self.current = watch

    def clear(self) -> None:
        """No phase is watched now (a test without a limit runs)."""
        self.current = None

    def disarm(self, watch: Watch) -> bool:
        """The phase is over: stop watching it; whether a hang was ended."""
        # First, without the lock: from here on nothing is done to the thread.
        watch.ended = True
        with self._lock:
            if self.current is watch:
                self.current = None
        return watch.given_up

    # -- the watchdog's side -----------------------------------------------------

    def _main(self) -> None:
        # Four times a second; at the end of the run, at once.
        while not self._stop.wait(POLL):
            watch = self.current
            if watch is None:
                continue
            try:
                self._tick(watch)
            except Exception as error:  # never let the watchdog die
                note = f"the watchdog failed: {type(error).__name__}: {error}"
                if note not in watch.notes:
                    watch.notes = (*watch.notes, note)

    def _tick(self, watch: Watch) -> None:
        if watch.ended:
            return
        now = time.monotonic()
        if watch.reason is not None:
            self._insist(watch, now)
            return
        due = now >= watch.deadline
        if not due and (
            now - watch.started < DEADLOCK_AFTER or now < watch._next_check
        ):
            return
        if self._debugging():
            return  # a debugger is attached: a breakpoint is no hang
        if due:
            self._fire(watch, None)
            return
        from pytest_asgiref._hangs_cycles import find_deadlock, look  # noqa: PLC0415

        scene = look()
        deadlock = find_deadlock(scene, [watch.thread], self._test_tasks(watch, scene))
        if deadlock is None:
            watch._suspect = None
            watch._check_gap = min(watch._check_gap * CHECK_BACKOFF, CHECK_AT_MOST)
            watch._next_check = now + watch._check_gap
            return
        if deadlock.key != watch._suspect:
            # Seen once: the look is not atomic, so look again soon.
            watch._suspect = deadlock.key
            watch._check_gap = CHECK_EVERY
            watch._next_check = now + CHECK_EVERY
            return
        self._fire(watch, deadlock, scene)

    def _fire(
        self, watch: Watch, deadlock: Deadlock | None, scene: Scene | None = None
    ) -> None:
        from pytest_asgiref._hangs_cycles import find_deadlock, look  # noqa: PLC0415

        # A failure to look or to report must not keep the hang from ending.
        problems: list[str] = []
        if scene is None:
            try:
                scene = look()
            except Exception as error:
                problems.append(f"looking at the threads failed: {_name(error)}")
        # On a timeout, break a deadlock found now as well: its threads would
        # stay stuck for the rest of the session.
        found = deadlock
        if found is None and scene is not None:
            try:
                found = find_deadlock(scene, [watch.thread], everywhere=True)
            except Exception as error:
                problems.append(f"looking for deadlocks failed: {_name(error)}")
        try:
            report = self._reporter(watch, scene, deadlock, found)
        except Exception as error:
            what = "timeout" if deadlock is None else "deadlock"
            report = (
                f"{watch.item.nodeid}: pytest-asgiref ended the test's "
                f"{watch.phase} ({what}); its report failed: {_name(error)}"
            )
        with self._lock:
            if self.current is not watch or watch.ended:
                return  # the phase ended meanwhile
            self._end_hang(watch, deadlock, found, report, problems)

    def _end_hang(
        self,
        watch: Watch,
        deadlock: Deadlock | None,
        found: Deadlock | None,
        report: str,
        problems: list[str],
    ) -> None:
        """Under the lock, with the phase still running."""
        from pytest_asgiref._hangs_frames import (  # noqa: PLC0415
            phase_frame,
            thread_frames,
            unblock,
        )

        watch.reason = "timeout" if deadlock is None else "deadlock"
        watch.fires += 1
        watch.fired_at = time.monotonic()
        watch.retried = False
        watch.signals = 0
        watch.hung_frame = phase_frame(thread_frames().get(watch.thread.ident or 0))
        # The test's thread first: freeing another thread of a cycle may let
        # the test's wait end by itself.
        actions: list[str] = []
        try:
            watch.unblocked = unblock(watch.thread, watch.error)
        except Exception as error:
            watch.unblocked = None
            problems.append(f"ending the test's wait failed: {_name(error)}")
        done = None if watch.unblocked is None else watch.unblocked.action
        actions.append(
            f"the test's thread {watch.thread.name!r}: "
            + (done or "waits in nothing that can be cancelled")
        )
        for thread in () if found is None else found.threads:
            if thread is watch.thread:
                continue
            try:
                other = unblock(thread, watch.error)
            except Exception as error:
                problems.append(f"ending {thread.name!r}'s wait failed: {_name(error)}")
                continue
            if other is not None:
                actions.append(f"thread {thread.name!r}: {other.action}")
        text = _compose(report, actions, problems)
        watch.message = f"{watch.message}\n\n{text}" if watch.message else text

    def _insist(self, watch: Watch, now: float) -> None:
        """A hang was ended but the phase goes on: push harder, or, once the
        hung frame has returned, watch the rest of the phase afresh."""
        from pytest_asgiref._hangs_frames import (  # noqa: PLC0415
            cancel_again,
            on_stack,
            thread_frames,
        )

        since = now - watch.fired_at
        with self._lock:
            if self.current is not watch or watch.ended:
                return
            frame = thread_frames().get(watch.thread.ident or 0)
            if not on_stack(watch.hung_frame, frame):
                self._resume(watch, now)
                return
            if not watch.retried and since >= RETRY_AFTER:
                watch.retried = True
                if watch.unblocked is not None:
                    cancel_again(watch.unblocked)
            elif since >= SIGNAL_AFTER * (watch.signals + 1) and (
                watch.signals < _MAX_SIGNALS
            ):
                watch.signals += 1
                self._interrupt(watch)

    def _resume(self, watch: Watch, now: float) -> None:
        """The hang is over: what is left of the phase gets a fresh limit."""
        watch.reason = None
        watch.hung_frame = None
        watch.unblocked = None
        watch.deadline = now + watch.seconds
        watch._suspect = None
        watch._next_check = 0.0
        watch._check_gap = CHECK_EVERY

    def _interrupt(self, watch: Watch) -> None:
        number = _INTERRUPT_SIGNAL
        if (
            number is None
            or watch.thread is not threading.main_thread()
            or signal.getsignal(number) != self._on_signal
        ):
            return
        if watch.signals == 1:
            watch.message += (
                f"\nThe test did not end when cancelled; its thread was "
                f"interrupted with signal {signal.Signals(number).name}."
            )
        with contextlib.suppress(OSError, ValueError):
            signal.pthread_kill(watch.thread.ident or 0, number)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        watch = self.current
        if (
            watch is None
            or watch.ended
            or watch.reason is None
            or watch.thread is not threading.current_thread()
        ):
            return
        # Loaded already: the watchdog fired.
        from pytest_asgiref._hangs_frames import on_stack  # noqa: PLC0415

        # Only inside the hung frame: a signal that comes after the hang or
        # the phase has ended (the thread waiting in disarm() for the lock,
        # say) is dropped.
        if on_stack(watch.hung_frame, frame):
            msg = f"{watch.item.nodeid}: interrupted by pytest-asgiref ({watch.reason})"
            raise HangInterrupt(msg)


def _name(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _compose(report: str, actions: list[str], problems: list[str]) -> str:
    lines = [report, "", "what pytest-asgiref did to end the test:"]
    lines += [f"  {action}" for action in actions]
    lines += [f"({problem})" for problem in problems]
    return "\n".join(lines)
