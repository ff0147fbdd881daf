"""The watchdog thread behind ``--asgi-timeout``.

One daemon thread per session looks at the phase being run (setup, call or
teardown of one test) a few times a second. Arming and disarming a phase is
an attribute write and a lock, so a run where nothing hangs pays next to
nothing. When a phase outlives its limit, or a deadlock involving the test
is seen twice in a row, the watchdog writes the report, then cancels what
the test's thread waits for (:func:`~pytest_asgiref._hangs_frames.unblock`),
and, for a deadlock, what the other threads of the cycle wait for. The
test's own hook wrapper then fails it with the report; the process and the
session carry on.

A test that ignores the cancellation, or whose thread is blocked outside
asyncio and the bridges (``time.sleep`` in a coroutine, a lock), is cancelled
again after a second; after two, its thread is interrupted with a signal as
a last resort, as pytest-timeout's signal method does. That needs POSIX, the
main thread, and ``SIGUSR2`` left to its default handler.
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

if TYPE_CHECKING:
    from pytest_asgiref._hangs_cycles import Deadlock, Scene

# The deadlock and report machinery is imported by the watchdog thread when a
# phase first runs long: a run where every test is quick never loads it.

__all__ = ["HangInterrupt", "Watch", "Watchdog"]

#: Seconds between two looks at the running phase.
POLL: Final = 0.25
#: A phase must have run this long before deadlocks are looked for.
DEADLOCK_AFTER: Final = 0.25
#: Seconds between two deadlock checks of one phase.
CHECK_EVERY: Final = 0.25
#: After firing, seconds until the wait is cancelled again.
RETRY_AFTER: Final = 0.5
#: After firing, seconds until the thread is interrupted with a signal.
SIGNAL_AFTER: Final = 1.0
_MAX_SIGNALS: Final = 5

_INTERRUPT_SIGNAL: Final[int | None] = getattr(signal, "SIGUSR2", None)

WATCHDOG_THREAD_NAME: Final = "pytest_asgiref-hang-watch"


class HangInterrupt(BaseException):
    """Raised in a stuck test's thread when cancelling it did not end it.

    A ``BaseException``, like ``KeyboardInterrupt``, so that an application's
    ``except Exception`` cannot swallow it.
    """


class Watch:
    """One phase of one test under a time limit.

    One is made for every phase of every test, so only what every phase
    needs is set here; what the watchdog fills in when a phase runs long
    starts out as a class attribute.
    """

    #: Set by the watchdog when it gives up on the phase.
    reason: str | None = None
    message = ""
    fired_at = 0.0
    retried = False
    signals = 0
    notes: tuple[str, ...] = ()
    _suspect: tuple[object, ...] | None = None
    _next_check = 0.0

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

    @property
    def deadline(self) -> float:
        return self.started + self.seconds


if TYPE_CHECKING:
    # (watch, scene, deadlock or None) -> the report's text.
    Reporter = Callable[[Watch, Scene, Deadlock | None], str]
    # (watch, scene) -> the tasks the test itself runs (for cycles of tasks).
    TaskFinder = Callable[[Watch, Scene], list[Any]]


class Watchdog:
    """The session's watchdog; see the module's documentation."""

    def __init__(self, reporter: Reporter, test_tasks: TaskFinder) -> None:
        self._reporter = reporter
        self._test_tasks = test_tasks
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

    def disarm(self, watch: Watch) -> None:
        with self._lock:
            if self.current is watch:
                self.current = None

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
        now = time.monotonic()
        if watch.reason is not None:
            self._insist(watch, now)
            return
        if now >= watch.deadline:
            self._fire(watch, None)
            return
        if now - watch.started < DEADLOCK_AFTER or now < watch._next_check:
            return
        watch._next_check = now + CHECK_EVERY
        from pytest_asgiref._hangs_cycles import find_deadlock, look  # noqa: PLC0415

        scene = look()
        deadlock = find_deadlock(scene, [watch.thread], self._test_tasks(watch, scene))
        if deadlock is None or deadlock.key != watch._suspect:
            # Seen once: the look is not atomic, so wait for a second one.
            watch._suspect = None if deadlock is None else deadlock.key
            return
        self._fire(watch, deadlock, scene)

    def _fire(
        self, watch: Watch, deadlock: Deadlock | None, scene: Scene | None = None
    ) -> None:
        from pytest_asgiref._hangs_cycles import find_deadlock, look  # noqa: PLC0415
        from pytest_asgiref._hangs_frames import unblock  # noqa: PLC0415

        scene = scene or look()
        # On a timeout, break a deadlock found now as well: its threads would
        # stay stuck for the rest of the session.
        found = find_deadlock(scene, everywhere=True) if deadlock is None else deadlock
        report = self._reporter(watch, scene, deadlock)
        with self._lock:
            if self.current is not watch:
                return  # the phase ended meanwhile
            watch.reason = "timeout" if deadlock is None else "deadlock"
            watch.fired_at = time.monotonic()
            # The test's thread first: freeing another thread of a cycle
            # may let the test's wait end by itself.
            done = unblock(watch.thread)
            actions = [
                f"the test's thread {watch.thread.name!r}: "
                + (done or "waits in nothing that can be cancelled")
            ]
            for thread in () if found is None else found.threads:
                if thread is not watch.thread:
                    done = unblock(thread)
                    if done is not None:
                        actions.append(f"thread {thread.name!r}: {done}")
            watch.message = _compose(report, actions)

    def _insist(self, watch: Watch, now: float) -> None:
        """The phase was given up on but has not ended: push harder."""
        since = now - watch.fired_at
        with self._lock:
            if self.current is not watch:
                return
            if not watch.retried and since >= RETRY_AFTER:
                from pytest_asgiref._hangs_frames import unblock  # noqa: PLC0415

                watch.retried = True
                unblock(watch.thread)
            elif since >= SIGNAL_AFTER * (watch.signals + 1) and (
                watch.signals < _MAX_SIGNALS
            ):
                watch.signals += 1
                self._interrupt(watch)

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
            watch is not None
            and watch.reason is not None
            and watch.thread is threading.current_thread()
        ):
            msg = f"{watch.item.nodeid}: interrupted by pytest-asgiref ({watch.reason})"
            raise HangInterrupt(msg)


def _compose(report: str, actions: list[str]) -> str:
    lines = [report, "", "what pytest-asgiref did to end the test:"]
    lines += [f"  {action}" for action in actions]
    return "\n".join(lines)
