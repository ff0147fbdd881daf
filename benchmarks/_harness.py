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
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "Machine",
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
