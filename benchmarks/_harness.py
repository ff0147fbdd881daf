"""Timing and reporting machinery shared by the side-by-side benchmarks.

Every benchmark script here follows one method (see ``benchmarks/README.md``):
each subject is warmed up, then measured R times, the order of the subjects
flipping every repetition; a measurement is N operations timed with
``time.perf_counter_ns`` around a tight loop, with the cyclic garbage collector
off (as ``timeit`` does) and run between measurements. This module holds that
loop and the plain-text table and machine description the reports print.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "Comparison",
    "ComparisonResult",
    "Machine",
    "compare",
    "fmt_time",
    "gc_off",
    "machine_info",
    "machine_line",
    "measure_series",
    "table",
    "timed",
    "verdict",
]

#: A measurement: run n operations, return the elapsed nanoseconds.
Thunk = Callable[[int], int]


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
