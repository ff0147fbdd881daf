"""Timing and reporting machinery shared by the side-by-side benchmarks.

Every benchmark script here follows one method (see ``benchmarks/README.md``):
each subject is warmed up, then measured R times, the order of the subjects
flipping every repetition; a measurement is N operations timed with
``time.perf_counter_ns`` around a tight loop, with the cyclic garbage collector
off (as ``timeit`` does) and run between measurements. This module holds that
method once, so that the scripts cannot drift apart: the command line they all
take, the timing loop, the loop hygiene checks, the ratio arithmetic, and the
report (header, tables, JSON, exit status). A script keeps only its subjects,
workloads, targets and notes.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Comparison",
    "ComparisonResult",
    "CountOption",
    "Machine",
    "Measure",
    "Report",
    "Settings",
    "Subject",
    "SubjectResult",
    "Workload",
    "WorkloadResult",
    "compare",
    "drain",
    "exit_status",
    "expect",
    "fmt_time",
    "gc_off",
    "loop_runner",
    "machine_info",
    "machine_line",
    "measure_series",
    "measure_with_cycles",
    "missed_targets",
    "module_version",
    "package_version",
    "parse_options",
    "print_header",
    "print_workloads",
    "progress",
    "run_workloads",
    "save_json",
    "settle",
    "table",
    "timed",
    "verdict",
    "watchdog",
]

#: A measurement: run n operations, return the elapsed nanoseconds.
Thunk = Callable[[int], int]

# --------------------------------------------------------------------------- #
# The command line and the settings it gives.
# --------------------------------------------------------------------------- #

DEFAULT_REPEAT = 7
DEFAULT_TIMEOUT = 900.0
#: ``--quick`` runs this many repetitions, of N divided by ``QUICK_DIVISOR``.
QUICK_REPEAT = 2
QUICK_DIVISOR = 250


@dataclass(frozen=True)
class CountOption:
    """A script's own whole-number option; it must be at least 1.

    It is listed in ``--help`` after ``--scale``, with the other options that
    size the run, and checked with ``--repeat``.
    """

    flag: str  # "--thread-calls"
    default: int
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def parse_options(
    argv: Sequence[str] | None,
    *,
    description: str,
    hang: str,
    counts: Sequence[CountOption] = (),
) -> argparse.Namespace:
    """The options every benchmark takes, plus the script's own ``counts``.

    They are the same everywhere so that CI and people can run any of the
    scripts alike: ``--repeat``, ``--scale``, ``--quick``, ``--check``,
    ``--json`` and ``--timeout``. ``hang`` names what the timeout guards
    against in the script ("a deadlocked adapter"), for ``--help``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"repetitions per workload (default {DEFAULT_REPEAT})",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every workload's N by this (default 1)",
    )
    for option in counts:
        parser.add_argument(
            option.flag, type=int, default=option.default, help=option.help
        )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: tiny N, {QUICK_REPEAT} repetitions; exits 0 unless "
        "something raises",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if any target is missed"
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results as JSON"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="dump every thread's stack and exit 1 after this many seconds "
        f"({hang} must not hang CI; default {DEFAULT_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    at_least_one = ["--repeat", *(option.flag for option in counts)]
    too_small = args.repeat < 1 or any(getattr(args, o.dest) < 1 for o in counts)
    if too_small or args.scale <= 0:
        parser.error(f"{' and '.join(at_least_one)} must be >= 1, --scale > 0")
    return args


@dataclass(frozen=True)
class Settings:
    """How big a run is; reported in the header and the JSON."""

    repeat: int
    scale: float
    quick: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace, **own: Any) -> Self:
        """The settings ``args`` ask for; ``own`` fills a subclass's fields.

        ``--quick`` overrides ``--repeat``: a smoke run has to be short
        whatever else the command line says.
        """
        repeat = QUICK_REPEAT if args.quick else args.repeat
        return cls(repeat=repeat, scale=args.scale, quick=args.quick, **own)

    def n(self, base: int, factor: float = 1.0) -> int:
        """Operations per measurement for a workload of ``base`` at ``--scale 1``.

        ``factor`` shrinks it for a subject much slower than the others, so
        that every subject's measurement takes a comparable time.
        """
        if self.quick:
            return max(1, round(base * factor) // QUICK_DIVISOR)
        return max(1, round(base * factor * self.scale))


# --------------------------------------------------------------------------- #
# Running.
# --------------------------------------------------------------------------- #


def loop_runner(stack: ExitStack) -> asyncio.Runner:
    """A long-lived event loop of its own, closed when ``stack`` exits.

    One per subject, so that loop-owned resources (the default executor, say)
    are warmed once and never shared. Given a ``loop_factory``, the runner
    does not make its loop the main thread's current loop, so code run from
    the main thread between runs really comes from a thread with no event
    loop.
    """
    return stack.enter_context(asyncio.Runner(loop_factory=asyncio.new_event_loop))


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Dump every thread's stack and exit 1 if the block outlasts ``seconds``.

    The subjects hand work between threads and loops; a deadlock among them
    must fail the run (in CI above all) rather than hang it.
    """
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def progress(what: str) -> None:
    """Say what is being measured, on stderr, so that stdout is the report."""
    print(f"  {what} ...", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# Measuring.
# --------------------------------------------------------------------------- #


@contextmanager
def gc_off() -> Iterator[None]:
    """Disable the cyclic garbage collector for the block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def timed(thunk: Thunk, n: int) -> float:
    """Run ``thunk(n)`` with the collector off; return nanoseconds per call."""
    gc.collect()
    with gc_off():
        elapsed = thunk(n)
    return elapsed / n


def measure_series(
    subjects: Sequence[tuple[str, Thunk]],
    n: int | Mapping[str, int],
    repeat: int,
) -> dict[str, list[float]]:
    """Warm every subject up, then measure each ``repeat`` times, alternating order.

    ``n`` is the operations per measurement: one figure for every subject, or
    one per subject name (for a subject much slower than the others). The
    warm-up measurement runs a fifth of it and is discarded.
    """

    def n_of(name: str) -> int:
        return n if isinstance(n, int) else n[name]

    for name, thunk in subjects:
        timed(thunk, max(1, n_of(name) // 5))
    samples: dict[str, list[float]] = {name: [] for name, _ in subjects}
    for rep in range(repeat):
        order = subjects if rep % 2 == 0 else list(reversed(subjects))
        for name, thunk in order:
            samples[name].append(timed(thunk, n_of(name)))
    return samples


def measure_with_cycles(
    subjects: Sequence[tuple[str, Thunk]],
    n: int | Mapping[str, int],
    repeat: int,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """:func:`measure_series`, and the reference cycles each subject leaves.

    With the collector off while timing, the cycles a subject makes would be
    freed between measurements, unpaid and unseen. So after each measurement
    (after the clock has stopped, the collector still off) the collector runs
    and the objects it frees are counted per operation. Returns the samples,
    and per subject the median of those counts, the warm-up's left out.
    """
    freed: dict[str, list[float]] = {name: [] for name, _ in subjects}

    def counting(name: str, thunk: Thunk) -> Thunk:
        def measure(k: int) -> int:
            elapsed = thunk(k)
            freed[name].append(gc.collect() / k)
            return elapsed

        return measure

    counted = [(name, counting(name, thunk)) for name, thunk in subjects]
    samples = measure_series(counted, n, repeat)
    cycles = {name: statistics.median(values[1:]) for name, values in freed.items()}
    return samples, cycles


# --------------------------------------------------------------------------- #
# Loop hygiene: what every asyncio measurement checks.
# --------------------------------------------------------------------------- #


def _others(keep: Collection[asyncio.Task[Any]] = ()) -> list[asyncio.Task[Any]]:
    """Pending tasks other than the current one and ``keep``."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and t not in keep]


async def drain(keep: Collection[asyncio.Task[Any]] = (), ticks: int = 2) -> None:
    """Run the loop until nothing but the caller and ``keep`` is left pending.

    Called inside the clock, at the end of a measurement: work a subject
    defers to the loop is part of its cost. Loop callbacks are not visible,
    so the loop always runs ``ticks`` times first.
    """
    for _ in range(ticks):
        await asyncio.sleep(0)
    for _ in range(1_000):
        if not _others(keep):
            return
        await asyncio.sleep(0)


async def settle(subject: str, ticks: int = 2) -> None:
    """After the tear-down: fail if a task other than the caller's is left.

    A task left pending would run, and be paid for, in a later measurement;
    the loop runs ``ticks`` times first, so that what the tear-down set going
    can finish.
    """
    for _ in range(ticks):
        await asyncio.sleep(0)
    left = _others()
    if left:
        msg = (
            f"{subject}: {len(left)} task(s) still pending after a measurement: "
            f"{left!r}; the benchmark must leave nothing behind"
        )
        raise RuntimeError(msg)


def expect(subject: str, got: object, wanted: object) -> None:
    """Fail unless ``got == wanted``: a fast wrong answer must not count."""
    if got != wanted:
        msg = f"{subject}: expected {wanted!r}, got {got!r}"
        raise RuntimeError(msg)


# --------------------------------------------------------------------------- #
# Comparisons.
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Comparison:
    """``median(numerator) / median(denominator)``, with an optional target.

    The target is a floor (``ratio >= target``) unless ``at_most`` makes it a
    ceiling.
    """

    numerator: str
    denominator: str
    target: float | None = None
    at_most: bool = False

    @property
    def label(self) -> str:
        return f"{self.numerator} / {self.denominator}"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'<=' if self.at_most else '>='} {self.target:g}x"

    def met(self, ratio: float) -> bool | None:
        if self.target is None:
            return None
        return ratio <= self.target if self.at_most else ratio >= self.target


@dataclass
class ComparisonResult:
    """A :class:`Comparison` worked out on one run's samples."""

    label: str
    numerator: str
    denominator: str
    ratio: float  # median(numerator) / median(denominator)
    ratio_range: tuple[float, float]  # min, max paired ratio
    target: float | None
    at_most: bool  # the target is a ceiling
    target_text: str
    passed: bool | None


def compare(
    comparison: Comparison, samples: Mapping[str, Sequence[float]]
) -> ComparisonResult:
    """The ratio of the medians, and the range of the per-repetition ratios.

    ``samples`` maps each subject to its measurements in repetition order, as
    :func:`measure_series` returns them; the measurements of one repetition
    ran back to back, so they are paired for the range.
    """
    num = samples[comparison.numerator]
    den = samples[comparison.denominator]
    ratio = statistics.median(num) / statistics.median(den)
    paired = [a / b for a, b in zip(num, den, strict=True)]
    return ComparisonResult(
        comparison.label,
        comparison.numerator,
        comparison.denominator,
        ratio,
        (min(paired), max(paired)),
        comparison.target,
        comparison.at_most,
        comparison.target_text(),
        comparison.met(ratio),
    )


# --------------------------------------------------------------------------- #
# Workloads of subjects, each on an event loop of its own.
# --------------------------------------------------------------------------- #

#: Runs n operations on the given loop; returns the elapsed nanoseconds.
Measure = Callable[[asyncio.Runner, int], int]


@dataclass(frozen=True)
class Subject:
    """One way of doing a workload's operation."""

    name: str
    measure: Measure
    n_factor: float = 1.0  # its N is the workload's N times this
    reference: bool = False  # no library under test: for context only


@dataclass(frozen=True)
class Workload:
    """Subjects measured against each other, and the ratios reported."""

    name: str
    n: int  # operations per measurement at --scale 1
    subjects: tuple[Subject, ...]
    comparisons: tuple[Comparison, ...]


@dataclass
class SubjectResult:
    """One subject's figures in one workload, as the JSON report has them."""

    name: str
    n: int
    reference: bool
    samples_ns: list[float]
    median_ns: float
    cycles_per_op: float  # median over the measurements


@dataclass
class WorkloadResult:
    """One workload's subjects and comparisons, as the JSON report has them."""

    name: str
    subjects: list[SubjectResult]
    comparisons: list[ComparisonResult]


def _measure_workload(
    workload: Workload,
    runners: Mapping[tuple[str, str], asyncio.Runner],
    settings: Settings,
) -> WorkloadResult:
    n = {s.name: settings.n(workload.n, s.n_factor) for s in workload.subjects}

    def bind(subject: Subject) -> Thunk:
        runner = runners[workload.name, subject.name]
        return lambda k: subject.measure(runner, k)

    samples, cycles = measure_with_cycles(
        [(s.name, bind(s)) for s in workload.subjects], n, settings.repeat
    )
    subjects = [
        SubjectResult(
            s.name,
            n[s.name],
            s.reference,
            samples[s.name],
            statistics.median(samples[s.name]),
            cycles[s.name],
        )
        for s in workload.subjects
    ]
    comparisons = [compare(c, samples) for c in workload.comparisons]
    return WorkloadResult(workload.name, subjects, comparisons)


def run_workloads(
    workloads: Sequence[Workload], settings: Settings
) -> list[WorkloadResult]:
    """Measure every workload, each subject on a loop of its own.

    Every loop (see :func:`loop_runner`) is made before the first measurement
    and closed after the last, so that no subject pays for building or
    closing one.
    """
    with ExitStack() as stack:
        runners = {
            (w.name, s.name): loop_runner(stack) for w in workloads for s in w.subjects
        }
        results = []
        for workload in workloads:
            progress(f"measuring {workload.name}")
            results.append(_measure_workload(workload, runners, settings))
    return results


# --------------------------------------------------------------------------- #
# The report.
# --------------------------------------------------------------------------- #


class SubjectFigures(Protocol):
    """What the subjects table prints of a subject's result."""

    @property
    def name(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def median_ns(self) -> float: ...
    @property
    def cycles_per_op(self) -> float: ...


class WorkloadFigures(Protocol):
    """What the two tables print of a workload's result.

    :class:`WorkloadResult` is one; a script whose JSON needs other fields
    keeps its own result classes, and they print the same.
    """

    @property
    def name(self) -> str: ...
    @property
    def subjects(self) -> Sequence[SubjectFigures]: ...
    @property
    def comparisons(self) -> Sequence[ComparisonResult]: ...


W = TypeVar("W", bound=WorkloadFigures)


@dataclass
class Report(Generic[W]):
    """Everything one run found; written out whole by :func:`save_json`."""

    machine: Machine
    settings: Settings
    notes: list[str]
    workloads: list[W] = field(default_factory=list)


def fmt_time(ns: float) -> str:
    """A duration in ns, µs or ms, whichever reads best."""
    if ns < 1_000:
        return f"{ns:.1f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000_000:.2f} ms"


def verdict(passed: bool | None) -> str:
    """``PASS``, ``MISS``, or ``-`` where there is no target."""
    return "-" if passed is None else ("PASS" if passed else "MISS")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Align columns: the first ``left`` columns left, the rest right."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def print_header(
    script: str,
    machine: Machine,
    settings: Settings,
    notes: Sequence[str] = (),
    aside: str = "",
) -> None:
    """What was compared, on what, and how: the lines above every report.

    A figure means little without the versions, the machine and the settings
    it came from, and a ``--quick`` run's figures mean nothing at all, so the
    header says so. ``aside`` follows the versions on the first line.
    """
    listed = ", ".join(f"{name} {v}" for name, v in machine.versions.items())
    print(f"{script}: {listed}{f' {aside}' if aside else ''}")
    print(machine_line(machine))
    mode = "  [--quick: tiny N, figures not meaningful]" if settings.quick else ""
    print(
        f"repetitions {settings.repeat}, scale {settings.scale:g}, "
        f"order alternating, gc off while timing{mode}"
    )
    for note in notes:
        print(f"note: {note}")
    print()


def print_workloads(
    workloads: Sequence[WorkloadFigures],
    repeat: int,
    unit: str = "operation",
    reading: str = "",
) -> None:
    """The subjects table, then the ratios table, one block per workload.

    ``unit`` is what one operation is ("request"); ``reading`` is added to
    the ratios' explanation, to say which way is better where that is the
    same for every row.
    """
    rows = [
        [
            w.name if i == 0 else "",
            s.name,
            str(s.n),
            fmt_time(s.median_ns),
            f"{s.cycles_per_op:.2f}",
        ]
        for w in workloads
        for i, s in enumerate(w.subjects)
    ]
    print(f"Time per {unit}, median of {repeat} repetitions")
    print(
        "(cycles/op = objects the cyclic garbage collector freed after a "
        f"measurement, per {unit})"
    )
    print(table(["workload", "subject", "N", "median", "cycles/op"], rows, left=2))
    print()

    rows = []
    for w in workloads:
        for i, c in enumerate(w.comparisons):
            low, high = c.ratio_range
            rows.append(
                [
                    w.name if i == 0 else "",
                    c.label,
                    f"{c.ratio:.2f}x",
                    f"{low:.2f}-{high:.2f}",
                    c.target_text,
                    verdict(c.passed),
                ]
            )
    print("Ratios of the medians")
    print(
        f"(a / b: how many times longer a takes than b{reading}; range = min-max "
        "of the per-repetition ratios)"
    )
    print(table(["workload", "ratio", "value", "range", "target", "result"], rows, 2))


def missed_targets(workloads: Sequence[WorkloadFigures]) -> list[str]:
    """``"workload: a / b"`` for every comparison that missed its target."""
    return [
        f"{w.name}: {c.label}"
        for w in workloads
        for c in w.comparisons
        if c.passed is False
    ]


def save_json(report: DataclassInstance, path: Path | None) -> None:
    """Write ``report`` as JSON to ``path``, if given, and say where.

    Every sample goes in, not just the medians, so that a run can be looked
    at again later or compared with another.
    """
    if path is None:
        return
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"\nresults written to {path}")


def exit_status(missed: Sequence[str], args: argparse.Namespace) -> int:
    """Name the missed targets; 1 if ``--check`` asked to fail on them, else 0.

    A ``--quick`` run's figures mean nothing, so it never fails on them: it
    only shows that the script still runs.
    """
    if missed:
        note = " (not enforced with --quick)" if args.quick else ""
        print(f"\nmissed{note}: {', '.join(missed)}")
    if args.quick:
        return 0
    return 1 if args.check and missed else 0


# --------------------------------------------------------------------------- #
# The machine and the versions.
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Machine:
    """Where and when a run happened."""

    python: str
    implementation: str
    platform: str
    cpu_count: int | None
    cpu_affinity: int | None  # CPUs this process may run on, where known
    date: str
    versions: dict[str, str]  # subject or package name -> its version


def machine_info(versions: dict[str, str]) -> Machine:
    """Describe this machine, with the given package versions."""
    affinity = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    return Machine(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        cpu_affinity=affinity,
        date=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions=versions,
    )


def machine_line(machine: Machine) -> str:
    """The one-line machine description the report headers print."""
    return (
        f"python {machine.python} ({machine.implementation}) on {machine.platform}; "
        f"cpu_count {machine.cpu_count}, usable {machine.cpu_affinity}"
    )


def package_version(distribution: str) -> str:
    """An installed distribution's version, or ``unknown`` rather than failing.

    The version only labels the report; a missing one must not stop a run.
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def module_version(module: types.ModuleType) -> str:
    """A module's ``__version__``, or ``unknown``.

    For the package under test, read from the code being measured rather
    than from installed metadata.
    """
    return str(getattr(module, "__version__", "unknown"))
