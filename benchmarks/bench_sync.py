"""Side-by-side benchmark: asgiref_core vs the real asgiref 3.13.0.

What is measured (every figure is wall-clock time per call):

* ``sync_to_async`` round trip inside one running event loop, thread-sensitive
  (the default) and ``thread_sensitive=False``;
* ``async_to_sync`` from a plain thread that has no event loop (the main
  thread, between runs of the loop);
* ``async_to_sync`` inside ``sync_to_async``: one outer hop whose body makes N
  inner ``async_to_sync`` calls back into the loop, reported per inner call;
* ``Local`` attribute read and write from plain sync code, default and
  ``thread_critical=True``;
* reference floors measured in the same run, for context only: a bare thread
  hand-off (``queue.SimpleQueue`` to one long-lived worker thread, answered by
  ``loop.call_soon_threadsafe``), a bare ``asyncio.run`` of a no-op coroutine,
  and a ``threading.local`` attribute read;
* threads: how many threads each implementation starts during a batch of mixed
  bridge calls after warm-up, and whether ``threading.active_count()`` returns
  to its value before the batch.

Method. Everything runs in one process. Each implementation gets its own
long-lived event loop (an ``asyncio.Runner``), so loop-owned resources such as
the default executor are warmed once and never shared. Wrappers are built per
call, as callers usually write them (``await sync_to_async(f)()``). For each
workload, both implementations are first warmed up, then the workload is
repeated R times (``--repeat``); each repetition measures every implementation
once, one after the other, alternating which goes first. A measurement is N
operations timed with ``time.perf_counter_ns`` around a tight loop; the loop
overhead is included, nothing is subtracted. The cyclic garbage collector is
disabled while timing (as ``timeit`` does) and run between measurements.

Reported: the median time per call of each implementation, the ratio of the
medians (asgiref / asgiref_core, "x times faster"), the range of the
per-repetition ratios (each pairs two back-to-back measurements, so it shows
how much the figure moves between repetitions), and PASS/MISS against the
target where the workload has one.

Run ``python benchmarks/bench_sync.py --help`` for the options; see
``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import queue
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import asgiref.local
import asgiref.sync
from _harness import (
    Comparison,
    CountOption,
    Machine,
    Settings,
    compare,
    exit_status,
    fmt_time,
    loop_runner,
    machine_info,
    measure_series,
    module_version,
    parse_options,
    print_header,
    progress,
    save_json,
    table,
    verdict,
    watchdog,
)

try:
    import asgiref_core.local
    import asgiref_core.sync
except ImportError as exc:  # fail loudly: this benchmark is pointless without it
    _msg = (
        f"cannot import asgiref_core.sync / asgiref_core.local: {exc}. The "
        "benchmark needs both; from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc

# --------------------------------------------------------------------------- #
# The implementations under test. Adding a peer is one more row in IMPLS.
# --------------------------------------------------------------------------- #

SyncToAsync = Callable[..., Callable[..., Awaitable[Any]]]
AsyncToSync = Callable[..., Callable[..., Any]]


@dataclass(frozen=True)
class Impl:
    """One implementation of asgiref's ``sync`` and ``local`` API."""

    name: str
    sync_to_async: SyncToAsync
    async_to_sync: AsyncToSync
    Local: type[Any]


IMPLS: tuple[Impl, ...] = (
    Impl(
        "asgiref",
        asgiref.sync.sync_to_async,
        asgiref.sync.async_to_sync,
        asgiref.local.Local,
    ),
    Impl(
        "asgiref_core",
        asgiref_core.sync.sync_to_async,
        asgiref_core.sync.async_to_sync,
        asgiref_core.local.Local,
    ),
)

#: The implementation every ratio is taken against: ratio = peer / BASE, so a
#: ratio of 3 reads "BASE is 3 times faster than that peer".
BASE = "asgiref_core"
#: The peer whose ratio the targets apply to.
TARGET_PEER = "asgiref"
PEERS: tuple[str, ...] = tuple(impl.name for impl in IMPLS if impl.name != BASE)

# --------------------------------------------------------------------------- #
# Workload bodies. Each measure function runs n operations and returns the
# elapsed nanoseconds; the per-call figure is elapsed / n.
# --------------------------------------------------------------------------- #


def noop() -> None:
    """The sync callable every bridge call runs."""


async def async_noop() -> None:
    """The coroutine function every bridge call runs."""


def _s2a_round_trip(
    impl: Impl, runner: asyncio.Runner, n: int, *, thread_sensitive: bool
) -> int:
    s2a = impl.sync_to_async

    async def run() -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await s2a(noop, thread_sensitive=thread_sensitive)()
        return time.perf_counter_ns() - start

    return runner.run(run())


def s2a_thread_sensitive(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _s2a_round_trip(impl, runner, n, thread_sensitive=True)


def s2a_not_thread_sensitive(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _s2a_round_trip(impl, runner, n, thread_sensitive=False)


def a2s_plain_thread(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    # Called from the main thread while no loop runs in it: the runner's loop
    # is idle between runs and is never set as the thread's current loop.
    a2s = impl.async_to_sync
    start = time.perf_counter_ns()
    for _ in range(n):
        a2s(async_noop)()
    return time.perf_counter_ns() - start


def a2s_in_s2a(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    a2s = impl.async_to_sync

    def body() -> None:
        for _ in range(n):
            a2s(async_noop)()

    async def run() -> int:
        start = time.perf_counter_ns()
        await impl.sync_to_async(body)()
        return time.perf_counter_ns() - start

    return runner.run(run())


def _in_context(measure: Callable[[], int], preset_vars: int = 0) -> int:
    """Run ``measure`` in a new context holding ``preset_vars`` unrelated vars.

    ``ContextVar.set`` gets slower as more variables are set in the current
    context. Each measurement makes a new Local, so without a fresh context
    the main thread's context would keep growing over the run and every later
    measurement (of either implementation) would pay for the earlier ones.
    """
    context = contextvars.Context()
    for var in _PRESET_VARS[:preset_vars]:
        context.run(var.set, 0)
    return context.run(measure)


# Unrelated variables a real application's context carries (framework,
# logging, tracing); the populated variant sets ten of them.
_PRESET_VARS = [contextvars.ContextVar(f"bench.preset.{i}") for i in range(10)]


def _local_read(impl: Impl, n: int, *, thread_critical: bool) -> int:
    loc = impl.Local(thread_critical=thread_critical)
    loc.x = 0
    start = time.perf_counter_ns()
    for _ in range(n):
        loc.x  # noqa: B018 - the attribute read is the workload
    return time.perf_counter_ns() - start


def _local_write(impl: Impl, n: int, *, thread_critical: bool) -> int:
    loc = impl.Local(thread_critical=thread_critical)
    start = time.perf_counter_ns()
    for i in range(n):
        loc.x = i
    return time.perf_counter_ns() - start


def local_read(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _in_context(lambda: _local_read(impl, n, thread_critical=False))


def local_write(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _in_context(lambda: _local_write(impl, n, thread_critical=False))


def local_write_populated(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _in_context(
        lambda: _local_write(impl, n, thread_critical=False), preset_vars=10
    )


def local_read_critical(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _in_context(lambda: _local_read(impl, n, thread_critical=True))


def local_write_critical(impl: Impl, runner: asyncio.Runner, n: int) -> int:
    return _in_context(lambda: _local_write(impl, n, thread_critical=True))


# --------------------------------------------------------------------------- #
# Reference floors: what the same work costs with no bridge library at all.
# --------------------------------------------------------------------------- #


_Job = tuple[Callable[[], object], asyncio.AbstractEventLoop, asyncio.Future[object]]


class HandOff:
    """One long-lived worker thread fed by a ``SimpleQueue``.

    A coroutine puts ``(func, loop, future)`` on the queue; the worker calls
    ``func`` and sets the asyncio future from the loop's thread through
    ``loop.call_soon_threadsafe``. This is about the least a thread-sensitive
    ``sync_to_async`` has to do.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, name="bench-hand-off", daemon=True
        )
        self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            func, loop, future = job
            loop.call_soon_threadsafe(_resolve, future, func())

    async def call(self, func: Callable[[], object]) -> object:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._jobs.put((func, loop, future))
        return await future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()


def _resolve(future: asyncio.Future[object], result: object) -> None:
    if not future.done():
        future.set_result(result)


@dataclass(frozen=True)
class FloorEnv:
    """What the floors run on: their own loop and hand-off thread."""

    runner: asyncio.Runner
    hand_off: HandOff


def floor_hand_off(env: FloorEnv, n: int) -> int:
    call = env.hand_off.call

    async def run() -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await call(noop)
        return time.perf_counter_ns() - start

    return env.runner.run(run())


def floor_asyncio_run(env: FloorEnv, n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        asyncio.run(async_noop())
    return time.perf_counter_ns() - start


def floor_threading_local_read(env: FloorEnv, n: int) -> int:
    loc = threading.local()
    loc.x = 0
    start = time.perf_counter_ns()
    for _ in range(n):
        loc.x  # noqa: B018 - the attribute read is the workload
    return time.perf_counter_ns() - start


# --------------------------------------------------------------------------- #
# Workload table.
# --------------------------------------------------------------------------- #

Measure = Callable[[Impl, asyncio.Runner, int], int]


@dataclass(frozen=True)
class Workload:
    """A workload run against every implementation."""

    name: str
    measure: Measure
    n: int  # operations per measurement at --scale 1
    target: float | None = None  # minimum TARGET_PEER / BASE ratio, if any


WORKLOADS: tuple[Workload, ...] = (
    Workload("sync_to_async round trip", s2a_thread_sensitive, 10_000, 1.3),
    Workload("sync_to_async thread_sensitive=False", s2a_not_thread_sensitive, 6_000),
    Workload("async_to_sync from a plain thread", a2s_plain_thread, 2_500, 3.0),
    Workload("async_to_sync inside sync_to_async", a2s_in_s2a, 10_000),
    Workload("Local read", local_read, 500_000, 8.0),
    Workload("Local write", local_write, 500_000, 5.0),
    Workload("Local write (10 other context vars)", local_write_populated, 500_000),
    Workload("Local read (thread_critical)", local_read_critical, 500_000),
    Workload("Local write (thread_critical)", local_write_critical, 500_000),
)


@dataclass(frozen=True)
class Floor:
    """A no-library reference, measured like a workload, printed for context."""

    name: str
    measure: Callable[[FloorEnv, int], int]
    n: int
    compare_to: str  # the workload it is a floor of


FLOORS: tuple[Floor, ...] = (
    Floor(
        "thread hand-off (SimpleQueue + call_soon_threadsafe)",
        floor_hand_off,
        10_000,
        "sync_to_async round trip",
    ),
    Floor(
        "asyncio.run(async_noop())",
        floor_asyncio_run,
        2_500,
        "async_to_sync from a plain thread",
    ),
    Floor("threading.local read", floor_threading_local_read, 500_000, "Local read"),
)

# --------------------------------------------------------------------------- #
# Measurement machinery.
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SyncSettings(Settings):
    thread_calls: int


@dataclass
class WorkloadResult:
    name: str
    n: int
    samples_ns: dict[str, list[float]]
    median_ns: dict[str, float]
    ratio: dict[str, float]  # per peer: median(peer) / median(BASE)
    ratio_range: dict[str, tuple[float, float]]  # per peer: min, max paired ratio
    target: float | None
    passed: bool | None


@dataclass
class FloorResult:
    name: str
    n: int
    compare_to: str
    samples_ns: list[float]
    median_ns: float


@dataclass
class ThreadResult:
    impl: str
    calls: int
    threads_started: int
    baseline_threads: int
    threads_after: int
    settle_s: float
    back_to_baseline: bool
    elapsed_s: float
    expected: bool  # whether BASE's expectation (0 started, back to baseline) applies
    passed: bool | None


@dataclass
class Report:
    machine: Machine
    settings: SyncSettings
    workloads: list[WorkloadResult] = field(default_factory=list)
    floors: list[FloorResult] = field(default_factory=list)
    threads: list[ThreadResult] = field(default_factory=list)


def run_workload(
    workload: Workload, runners: dict[str, asyncio.Runner], settings: SyncSettings
) -> WorkloadResult:
    n = settings.n(workload.n)

    def bind(impl: Impl) -> Callable[[int], int]:
        runner = runners[impl.name]
        return lambda k: workload.measure(impl, runner, k)

    samples = measure_series(
        [(impl.name, bind(impl)) for impl in IMPLS], n, settings.repeat
    )
    median = {name: statistics.median(values) for name, values in samples.items()}
    compared = {
        peer: compare(
            Comparison(peer, BASE, workload.target if peer == TARGET_PEER else None),
            samples,
        )
        for peer in PEERS
    }
    return WorkloadResult(
        workload.name,
        n,
        samples,
        median,
        {peer: c.ratio for peer, c in compared.items()},
        {peer: c.ratio_range for peer, c in compared.items()},
        workload.target,
        compared[TARGET_PEER].passed,
    )


def run_floors(runner: asyncio.Runner, settings: SyncSettings) -> list[FloorResult]:
    env = FloorEnv(runner, HandOff())
    try:
        results = []
        for floor in FLOORS:
            n = settings.n(floor.n)

            def thunk(k: int, floor: Floor = floor) -> int:
                return floor.measure(env, k)

            series = measure_series([(floor.name, thunk)], n, settings.repeat)
            samples = series[floor.name]
            median = statistics.median(samples)
            results.append(
                FloorResult(floor.name, n, floor.compare_to, samples, median)
            )
        return results
    finally:
        env.hand_off.close()


# --------------------------------------------------------------------------- #
# Threads started by a batch of mixed bridge calls.
# --------------------------------------------------------------------------- #


@contextmanager
def count_thread_starts() -> Iterator[Callable[[], int]]:
    """Count calls to ``threading.Thread.start`` until the block exits."""
    original = threading.Thread.start
    lock = threading.Lock()
    count = 0

    def counting_start(self: threading.Thread) -> None:
        nonlocal count
        with lock:
            count += 1
        original(self)

    threading.Thread.start = counting_start  # type: ignore[method-assign]
    try:
        yield lambda: count
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]


def mixed_calls(impl: Impl, runner: asyncio.Runner, calls: int) -> None:
    """Make ``calls`` bridge calls, a quarter of each kind, in blocks of 100.

    In the loop: thread-sensitive and ``thread_sensitive=False``
    ``sync_to_async`` calls, and ``async_to_sync`` inside ``sync_to_async``
    (one inner call per outer call, counted as one call). From the main thread
    with no running loop: ``async_to_sync``.
    """
    s2a, a2s = impl.sync_to_async, impl.async_to_sync

    def nested() -> None:
        a2s(async_noop)()

    async def in_loop(k: int) -> None:
        for i in range(k):
            kind = i % 3
            if kind == 0:
                await s2a(noop)()
            elif kind == 1:
                await s2a(noop, thread_sensitive=False)()
            else:
                await s2a(nested)()

    done = 0
    while done < calls:
        block = min(100, calls - done)
        plain = block // 4
        runner.run(in_loop(block - plain))
        for _ in range(plain):
            a2s(async_noop)()
        done += block


def _wait_stable(limit_s: float = 2.0, quiet_s: float = 0.1) -> None:
    """Wait until ``active_count()`` has not changed for ``quiet_s`` seconds."""
    deadline = time.monotonic() + limit_s
    last, since = threading.active_count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now = threading.active_count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def _settle(baseline: int, limit_s: float = 2.0) -> tuple[int, float]:
    """Poll ``active_count()`` until it is back to ``baseline`` or time is up."""
    start = time.monotonic()
    while True:
        now = threading.active_count()
        waited = time.monotonic() - start
        if now <= baseline or waited >= limit_s:
            return now, waited
        time.sleep(0.01)


def run_thread_check(
    impl: Impl, runner: asyncio.Runner, settings: SyncSettings
) -> ThreadResult:
    mixed_calls(impl, runner, max(100, settings.thread_calls // 20))  # warm-up
    gc.collect()
    _wait_stable()  # let threads the warm-up retired finish exiting
    baseline = threading.active_count()
    with count_thread_starts() as started:
        start = time.perf_counter()
        mixed_calls(impl, runner, settings.thread_calls)
        elapsed = time.perf_counter() - start
        threads_started = started()
    gc.collect()
    after, waited = _settle(baseline)
    back = after <= baseline
    expected = impl.name == BASE
    return ThreadResult(
        impl.name,
        settings.thread_calls,
        threads_started,
        baseline,
        after,
        round(waited, 3),
        back,
        round(elapsed, 3),
        expected,
        (threads_started == 0 and back) if expected else None,
    )


# --------------------------------------------------------------------------- #
# Output.
# --------------------------------------------------------------------------- #


def impl_version(impl: Impl) -> str:
    return module_version(sys.modules[impl.sync_to_async.__module__.partition(".")[0]])


def print_report(report: Report) -> None:
    names = [impl.name for impl in IMPLS]
    headers = ["workload", "N", *names]
    for peer in PEERS:
        suffix = "" if len(PEERS) == 1 else f" {peer}"
        headers += [f"ratio{suffix}", f"range{suffix}"]
    headers += ["target", "result"]
    rows = []
    for w in report.workloads:
        row = [w.name, str(w.n), *(fmt_time(w.median_ns[name]) for name in names)]
        for peer in PEERS:
            low, high = w.ratio_range[peer]
            row += [f"{w.ratio[peer]:.2f}x", f"{low:.2f}-{high:.2f}"]
        row += ["-" if w.target is None else f">= {w.target:g}x", verdict(w.passed)]
        rows.append(row)
    print(f"Time per call, median of {report.settings.repeat} repetitions")
    print(
        f"(ratio = peer / {BASE}, higher means {BASE} is faster; "
        "range = min-max of the per-repetition ratios)"
    )
    print(table(headers, rows, left=1))
    print()

    by_name = {w.name: w for w in report.workloads}
    floor_rows = []
    for f in report.floors:
        ref = by_name.get(f.compare_to)
        floor_rows.append(
            [
                f.name,
                str(f.n),
                fmt_time(f.median_ns),
                f.compare_to,
                "-" if ref is None else fmt_time(ref.median_ns[BASE]),
            ]
        )
    print("Reference floors (no bridge library), same run")
    print(table(["floor", "N", "median", "floor of", BASE], floor_rows, left=1))
    print()

    thread_rows = [
        [
            t.impl,
            str(t.calls),
            str(t.threads_started),
            f"{t.threads_started / t.calls:.3f}",
            f"{t.baseline_threads} -> {t.threads_after}",
            "yes" if t.back_to_baseline else f"no (after {t.settle_s:g} s)",
            f"{t.elapsed_s:.2f} s",
            "0 started, back" if t.expected else "-",
            verdict(t.passed),
        ]
        for t in report.threads
    ]
    print("Threads started during mixed bridge calls, after warm-up")
    print(
        table(
            [
                "impl",
                "calls",
                "started",
                "per call",
                "active",
                "back to baseline",
                "elapsed",
                "expected",
                "result",
            ],
            thread_rows,
            left=1,
        )
    )


# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(
        argv,
        description=f"Benchmark {BASE} against {', '.join(PEERS)}: "
        "sync/async bridges and Local.",
        hang="a bridge deadlock",
        counts=[
            CountOption(
                "--thread-calls",
                10_000,
                "mixed bridge calls in the thread check (default 10000)",
            )
        ],
    )
    settings = SyncSettings.from_args(
        args, thread_calls=200 if args.quick else args.thread_calls
    )
    with watchdog(args.timeout):
        machine = machine_info({impl.name: impl_version(impl) for impl in IMPLS})
        print_header("bench_sync", machine, settings, aside=f"(ratios against {BASE})")
        report = Report(machine, settings)

        with ExitStack() as stack:
            # One loop per implementation (and one for the floors). None is
            # the main thread's current loop, so async_to_sync from the main
            # thread really runs from a thread with no event loop.
            runners = {
                name: loop_runner(stack)
                for name in [*(impl.name for impl in IMPLS), "floors"]
            }
            for workload in WORKLOADS:
                progress(f"measuring {workload.name}")
                report.workloads.append(run_workload(workload, runners, settings))
            progress("measuring reference floors")
            report.floors = run_floors(runners["floors"], settings)
            for impl in IMPLS:
                progress(f"thread check: {impl.name}")
                report.threads.append(
                    run_thread_check(impl, runners[impl.name], settings)
                )

    print_report(report)
    save_json(report, args.json)
    missed = [w.name for w in report.workloads if w.passed is False]
    missed += [f"threads: {t.impl}" for t in report.threads if t.passed is False]
    return exit_status(missed, args)


if __name__ == "__main__":
    sys.exit(main())
