"""Machinery for the benchmarks that time whole pytest runs.

``bench_plugin_load.py``, ``bench_diagnostics.py`` and ``bench_hang_watch.py``
each time one way of running a generated suite (a *subject*: the pytest
command with its own arguments) against another. What they do alike lives
here, on top of ``_harness.py``, so that they cannot drift apart; a script
keeps its suite, its subjects, its own checks, its targets and its notes.

* **The subprocess.** ``python -m pytest -q -p no:cacheprovider`` and the
  subject's arguments, run in the suite's directory under a time limit, with
  ``PYTEST_ADDOPTS``, ``PYTEST_PLUGINS`` and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``
  removed from its environment and colour off (:class:`PytestRunner`).
* **One run** is timed with ``time.perf_counter_ns`` from before the
  subprocess is spawned until it has exited and its output has been read
  (the wall time, which targets are judged on); its user + system CPU time,
  from ``resource.getrusage(RUSAGE_CHILDREN)`` where the platform has it, is
  kept beside it.
* **Reading and checking the output**: the counts of pytest's summary line,
  the header's ``rootdir:``, ``configfile:`` and ``plugins:`` lines. A check
  that fails raises :class:`SuiteFailed`, whose message says what went wrong
  and shows the end of pytest's output; the script then stops with exit
  status 1.
* **Timing the subjects** (:func:`time_subjects`): ``_harness.measure_series``
  (a warm-up, then repetitions in alternating order), a measurement being N
  checked runs of one subject and its figure the mean time per run.
* **The report**: the result classes ``--json`` writes out, a wall-time
  workload and a CPU-time one (the same ratios, without targets), the
  subjects table, the ratios table with its overhead column, and
  :func:`run_benchmark`, the ``main()`` of every such script.

The bridge suite that ``bench_diagnostics.py`` and ``bench_hang_watch.py``
both run is in ``_bridge_suite.py``.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from _harness import (
    Comparison,
    ComparisonResult,
    Machine,
    Settings,
    compare,
    exit_status,
    fmt_time,
    measure_series,
    module_version,
    package_version,
    parse_options,
    progress,
    save_json,
    table,
    verdict,
    watchdog,
)

try:
    import pytest_asgiref
except ImportError as exc:  # fail loudly: these benchmarks are pointless without it
    _msg = (
        f"cannot import pytest_asgiref: {exc}. The benchmark needs the plugin "
        "installed; from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc


def versions(*others: str) -> dict[str, str]:
    """The header's versions: pytest_asgiref's, pytest's, then ``others``'."""
    found = {
        "pytest_asgiref": module_version(pytest_asgiref),
        "pytest": package_version("pytest"),
    }
    return found | {name: package_version(name) for name in others}


# --------------------------------------------------------------------------- #
# The subprocess.
# --------------------------------------------------------------------------- #

BASE_ARGS = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
#: Removed from the subprocesses' environment: each would change their plugins.
STRIPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")

#: The note every such report prints about what a figure is.
WALL_TIME_NOTE = (
    "each figure is the wall time of a whole pytest subprocess, spawn to "
    f"exit; {', '.join(STRIPPED_ENV)} removed from its environment; "
    "the collector setting above is this process's, not pytest's"
)


def child_env() -> dict[str, str]:
    """This process's environment, without what would change pytest's plugins."""
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
    env.pop("FORCE_COLOR", None)
    env["PY_COLORS"] = "0"  # plain output, for the checks that read it
    return env


class SuiteFailed(Exception):
    """The suite or a probe did not run as it must; the message says how."""


@dataclass(frozen=True)
class PytestSubject:
    """One way of running a suite: the pytest command and its own arguments."""

    name: str
    extra_args: tuple[str, ...]

    def argv(
        self, extra: tuple[str, ...] | None = None, *, quiet: bool = True
    ) -> list[str]:
        """The command; ``extra`` replaces the subject's own arguments.

        ``quiet=False`` drops ``-q``, so that pytest prints its header.
        """
        base = BASE_ARGS if quiet else tuple(a for a in BASE_ARGS if a != "-q")
        own = self.extra_args if extra is None else extra
        return [sys.executable, *base, *own]

    def command(self) -> str:
        """The command line as the report prints it."""
        return " ".join(["python", *BASE_ARGS, *self.extra_args])


def children_cpu_ns() -> int | None:
    """CPU time (user + system) of this process's finished children, if known."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * 1e9)


def cpu_time_known() -> bool:
    """Whether this platform reports the CPU time of a finished child."""
    return children_cpu_ns() is not None


@dataclass(frozen=True)
class Run:
    """One finished pytest run."""

    proc: subprocess.CompletedProcess[str]
    wall_ns: int
    cpu_ns: int | None  # the subprocess's user + system CPU time


@dataclass(frozen=True)
class PytestRunner:
    """Runs pytest in subprocesses, each timed from spawn to exit."""

    timeout: float  # seconds; a run that takes this long has hung
    env: dict[str, str] = field(default_factory=child_env)

    def run(
        self,
        subject: PytestSubject,
        directory: Path,
        extra: tuple[str, ...] | None = None,
        *,
        quiet: bool = True,
    ) -> Run:
        """Run pytest once in ``directory``; see :meth:`PytestSubject.argv`."""
        argv = subject.argv(extra, quiet=quiet)
        cpu_before = children_cpu_ns()
        start = time.perf_counter_ns()
        proc = self._spawn(subject, argv, directory)
        wall = time.perf_counter_ns() - start
        cpu_after = children_cpu_ns()
        cpu = (
            None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        )
        return Run(proc, wall, cpu)

    def run_passing(self, subject: PytestSubject, suite: Path, tests: int) -> Run:
        """Run the suite; fail unless it ends with exactly ``tests`` passed."""
        run = self.run(subject, suite)
        check_outcome(subject, run.proc, {"passed": tests}, "the suite")
        return run

    def _spawn(
        self, subject: PytestSubject, argv: list[str], directory: Path
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv,
                cwd=directory,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            msg = (
                f"{subject.name}: pytest did not finish within {self.timeout:g} s "
                f"(command: {' '.join(argv)}; directory: {directory})"
            )
            raise SuiteFailed(msg) from exc


# --------------------------------------------------------------------------- #
# Reading and checking pytest's output.
# --------------------------------------------------------------------------- #

_SUMMARY = re.compile(r"^=*\s*(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s\b")
_PLURAL = {"warning": "warnings", "error": "errors"}

#: Ends the message of a failed run: a plugin module caught mid-edit fails it.
RERUN_HINT = (
    "If pytest_asgiref is in the middle of an edit, rerun once it imports again."
)


def outcomes(stdout: str) -> dict[str, int] | None:
    """The counts of pytest's final summary line, or None if there is none."""
    for line in reversed(stdout.splitlines()):
        match = _SUMMARY.match(line.strip())
        if match:
            counts = {}
            for part in match.group(1).split(", "):
                count, word = part.split(" ")
                counts[_PLURAL.get(word, word)] = int(count)
            return counts
    return None


def tail(proc: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    """The end of a run's stdout and stderr, for a failure message."""
    out = "\n".join(proc.stdout.splitlines()[-lines:]) or "(nothing)"
    err = "\n".join(proc.stderr.splitlines()[-lines:]) or "(nothing)"
    return f"--- end of stdout ---\n{out}\n--- end of stderr ---\n{err}"


def header_value(stdout: str, key: str) -> str | None:
    """The value of the header line ``key: value``, or None if there is none."""
    for line in stdout.splitlines():
        if line.startswith(f"{key}: "):
            return line.removeprefix(f"{key}: ").strip()
    return None


def header_plugins(stdout: str) -> list[str]:
    """The header's ``plugins:`` entries, as ``name-version``."""
    listed = header_value(stdout, "plugins")
    return listed.split(", ") if listed else []


def check_outcome(
    subject: PytestSubject,
    proc: subprocess.CompletedProcess[str],
    expected: dict[str, int],
    what: str,
    *,
    ignore_warnings: bool = False,
) -> None:
    """Fail unless the run's summary counts are exactly ``expected``.

    With ``ignore_warnings``, any count of warnings is allowed besides them.
    """
    counts = outcomes(proc.stdout)
    if ignore_warnings and counts is not None:
        counts.pop("warnings", None)
    if counts != expected:
        summary = "no summary line" if counts is None else repr(counts)
        msg = (
            f"{subject.name}: {what} must end with {expected!r}, but pytest "
            f"exited {proc.returncode} with {summary}.\ncommand: "
            f"{' '.join(proc.args)}\n{tail(proc)}\n{RERUN_HINT}"
        )
        raise SuiteFailed(msg)


def check_rootdir(
    subject: PytestSubject, suite: Path, proc: subprocess.CompletedProcess[str]
) -> None:
    """Fail unless the header shows the suite's own directory and ``pytest.ini``.

    Otherwise pytest would have picked up some other configuration, such as
    the project's ``pyproject.toml``. Needs a run with ``quiet=False``.
    """
    rootdir = header_value(proc.stdout, "rootdir")
    configfile = header_value(proc.stdout, "configfile")
    if rootdir is None or Path(rootdir) != suite or configfile != "pytest.ini":
        msg = (
            f"{subject.name}: pytest must use the suite's own directory and ini "
            f"file ({suite}, pytest.ini), but it reported rootdir {rootdir!r}, "
            f"configfile {configfile!r}\n{tail(proc)}"
        )
        raise SuiteFailed(msg)


# --------------------------------------------------------------------------- #
# Timing the subjects.
# --------------------------------------------------------------------------- #

S = TypeVar("S", bound=PytestSubject)


@dataclass(frozen=True)
class Timings:
    """Mean time per run, one figure per measurement, for each subject's name."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]] | None  # None if the platform cannot tell


def time_subjects(
    subjects: Sequence[S], run_once: Callable[[S], Run], n: int, repeat: int
) -> Timings:
    """Warm every subject up, then measure each ``repeat`` times, alternating.

    A measurement is ``n`` calls of ``run_once``, which runs the subject once
    and checks the run (outside the clock: only the subprocess is timed).
    """
    progress(f"measuring: {repeat} x {n} runs of each subject")
    cpu: dict[str, list[float]] = {s.name: [] for s in subjects}

    def measurement(subject: S) -> tuple[str, Callable[[int], int]]:
        def runs(k: int) -> int:
            wall = cpu_total = 0
            for _ in range(k):
                run = run_once(subject)
                wall += run.wall_ns
                cpu_total += run.cpu_ns or 0
            cpu[subject.name].append(cpu_total / k)
            return wall

        return subject.name, runs

    wall = measure_series([measurement(s) for s in subjects], n, repeat)
    if not cpu_time_known():
        return Timings(wall, None)
    # measure_series discards its warm-up measurement; the CPU times must too.
    return Timings(wall, {name: values[1:] for name, values in cpu.items()})


# --------------------------------------------------------------------------- #
# Results.
# --------------------------------------------------------------------------- #


@dataclass
class SubjectResult:
    name: str
    command: str
    n: int  # runs per measurement
    samples_ns: list[float]  # mean time per run, one per measurement
    median_ns: float

    @classmethod
    def of(
        cls, subject: PytestSubject, n: int, samples: list[float], **own: Any
    ) -> Self:
        """The result of ``subject``; ``own`` fills a subclass's fields."""
        median = statistics.median(samples)
        return cls(subject.name, subject.command(), n, samples, median, **own)


@dataclass
class WorkloadResult:
    name: str
    subjects: list[SubjectResult]
    comparisons: list[ComparisonResult]


@dataclass
class PytestRunReport:
    """Everything one run found; written out whole by ``--json``."""

    machine: Machine
    settings: Settings
    notes: list[str]
    suite: dict[str, int | str]
    workloads: list[WorkloadResult]


def workload_results(
    label: str,
    subjects: Sequence[S],
    n: int,
    timings: Timings,
    comparisons: Sequence[Comparison],
    result: Callable[[S, int, list[float]], SubjectResult] = SubjectResult.of,
) -> list[WorkloadResult]:
    """The wall-time workload, then the CPU-time one where the platform has it.

    Targets are judged on the wall time only; the CPU time, which other load
    on the machine stretches less, gets the same ratios as context.
    """

    def workload(
        kind: str, samples: dict[str, list[float]], ratios: Sequence[Comparison]
    ) -> WorkloadResult:
        results = [result(s, n, samples[s.name]) for s in subjects]
        compared = [compare(c, samples) for c in ratios]
        return WorkloadResult(f"{label}, {kind}", results, compared)

    workloads = [workload("wall time", timings.wall, comparisons)]
    if timings.cpu is not None:
        untargeted = [Comparison(c.numerator, c.denominator) for c in comparisons]
        workloads.append(workload("CPU time", timings.cpu, untargeted))
    return workloads


def _missed_targets(workloads: Sequence[WorkloadResult]) -> list[str]:
    """``"workload: a / b"`` for every comparison that missed its target.

    ``_harness.missed_targets`` reads no more than this, but its signature
    asks for subjects with ``cycles_per_op``, which these runs do not count.
    """
    return [
        f"{w.name}: {c.label}"
        for w in workloads
        for c in w.comparisons
        if c.passed is False
    ]


# --------------------------------------------------------------------------- #
# The report.
# --------------------------------------------------------------------------- #


def overhead(ratio: float) -> str:
    """The ratio as the share of the run that ``a`` adds to ``b``, in percent."""
    return f"{(ratio - 1) * 100:+.2f}%"


def print_subjects(workloads: Sequence[WorkloadResult], repeat: int) -> None:
    """Each subject's median, fastest and slowest time per run."""
    rows = [
        [
            w.name if i == 0 else "",
            s.name,
            str(s.n),
            fmt_time(s.median_ns),
            fmt_time(min(s.samples_ns)),
            fmt_time(max(s.samples_ns)),
        ]
        for w in workloads
        for i, s in enumerate(w.subjects)
    ]
    print(f"Time per pytest run, median of {repeat} repetitions")
    print(
        "(N = runs per measurement; fastest/slowest = the extreme measurements; "
        "CPU = user + system time of the subprocess)"
    )
    headers = ["workload", "subject", "N", "median", "fastest", "slowest"]
    print(table(headers, rows, left=2))


def print_ratios(workloads: Sequence[WorkloadResult], overhead_means: str) -> None:
    """The ratios with their overhead and verdict; ``overhead_means`` explains it."""
    rows = []
    for w in workloads:
        for i, c in enumerate(w.comparisons):
            low, high = c.ratio_range
            rows.append(
                [
                    w.name if i == 0 else "",
                    c.label,
                    f"{c.ratio:.3f}x",
                    overhead(c.ratio),
                    f"{low:.3f}-{high:.3f}",
                    c.target_text,
                    verdict(c.passed),
                ]
            )
    print("Ratios of the medians")
    print(
        f"(a / b: how many times longer a takes than b; overhead = {overhead_means}; "
        "range = min-max of the per-repetition ratios)"
    )
    headers = ["workload", "ratio", "value", "overhead", "range", "target", "result"]
    print(table(headers, rows, left=2))


def run_benchmark(
    argv: Sequence[str] | None,
    *,
    script: str,
    description: str,
    measure: Callable[[Settings], PytestRunReport],
    overhead_means: str,
) -> int:
    """A script's ``main()``: options, the run under the watchdog, the report.

    ``overhead_means`` says what the overhead column is, in the ratios table
    ("what the diagnostic adds, in percent of the run without it").
    """
    args = parse_options(argv, description=description, hang="a hung pytest run")
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        try:
            report = measure(settings)
        except SuiteFailed as exc:
            print(f"{script}: aborted: {exc}", file=sys.stderr)
            return 1
    print_subjects(report.workloads, settings.repeat)
    print()
    print_ratios(report.workloads, overhead_means)
    save_json(report, args.json)
    return exit_status(_missed_targets(report.workloads), args)
