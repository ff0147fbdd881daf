"""What the plugin's diagnostics cost a test run that uses the bridges.

The target (from the issue): across 2,000 tests that each use a bridge,
``--asgi-strict-threads`` adds at most 5% to the run.

What is measured (every figure is the time of a whole pytest run):

* **The suite.** Generated in a temporary directory: 20 modules of 100 tests,
  2,000 tests in all, each making one bridge round trip,
  ``async_to_sync(sync_to_async(f))()``: a loop thread for the
  ``async_to_sync`` call and the thread-sensitive executor for the
  ``sync_to_async`` one. The directory has its own ``pytest.ini`` and no
  ``conftest.py``.
* **Subjects**, each a fresh ``python -m pytest -q -p no:cacheprovider``
  subprocess run in that directory, differing only in their extra arguments:
  the leak check switched off by blocking its plugin module
  (``-p no:pytest_asgiref._threads``), the check on its defaults (findings
  become warnings), and ``--asgi-strict-threads``. ``PYTEST_ADDOPTS``,
  ``PYTEST_PLUGINS`` and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` are removed from
  their environment.
* **Comparisons**: each diagnostic against the run without it. Only the
  issue's row has a target. Another diagnostic is one more ``Subject`` in
  ``SUBJECTS`` (and a baseline subject that blocks its module) plus one
  ``Comparison`` in ``COMPARISONS``.
* **One run** is timed from before the subprocess is spawned until it has
  exited and its output has been read (wall time), and its CPU time (user +
  system, from ``resource.getrusage(RUSAGE_CHILDREN)``) is recorded too: the
  wall time is judged; the CPU time, which other load on the machine
  stretches less, gets rows of its own without a target.

Before any timing the script checks that every subject runs the suite with
exit status 0, exactly ``2000 passed`` and no warning (the suite uses the
bridges correctly: a finding would be a false alarm), and, on a one-test
probe that leaves a thread running, that the subjects differ as intended:
no report with the check blocked, a warning on the defaults, an error with
the flag. Every timed run is checked again (exit status 0, ``2000 passed``)
outside the clock.

Method, as in the other benchmarks here: each subject is warmed up (one run,
discarded), then measured R times (``--repeat``), each repetition measuring
every subject once, back to back, the order reversing every repetition. A
measurement is N runs of one subject (2 at ``--scale 1``); its figure is the
mean time per run.

Run ``python benchmarks/bench_diagnostics.py --help`` for the options; see
``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    Comparison,
    ComparisonResult,
    Machine,
    Settings,
    compare,
    exit_status,
    fmt_time,
    machine_info,
    measure_series,
    module_version,
    package_version,
    parse_options,
    print_header,
    progress,
    save_json,
    table,
    verdict,
    watchdog,
)

try:
    import pytest_asgiref
except ImportError as exc:  # fail loudly: this benchmark is pointless without it
    _msg = (
        f"cannot import pytest_asgiref: {exc}. The benchmark needs the plugin "
        "installed; from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc

# --------------------------------------------------------------------------- #
# The suite.
# --------------------------------------------------------------------------- #

MODULES = 20
TESTS_PER_MODULE = 100
#: ``--quick`` runs this many modules: the figures mean nothing anyway.
QUICK_MODULES = 2

INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
"""

MODULE = """\
from asgiref_core.sync import async_to_sync, sync_to_async


def answer():
    return 42
"""

TEST = """

def test_{i}():
    assert async_to_sync(sync_to_async(answer))() == 42
"""

PROBE = """\
import threading

STOP = threading.Event()


def test_leaves_a_thread():
    thread = threading.Thread(target=STOP.wait, args=(5,), name="probe-leak")
    thread.daemon = True
    thread.start()
"""


def write_suite(directory: Path, modules: int) -> int:
    """Write the ini file and the test modules; the number of tests."""
    (directory / "pytest.ini").write_text(INI)
    source = MODULE + "".join(TEST.format(i=i) for i in range(TESTS_PER_MODULE))
    for m in range(modules):
        (directory / f"test_bridge_{m:02d}.py").write_text(source)
    return modules * TESTS_PER_MODULE


# --------------------------------------------------------------------------- #
# The subjects.
# --------------------------------------------------------------------------- #

BASE_ARGS = ("-m", "pytest", "-q", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class Subject:
    """One way of running the suite; ``probe`` is what the leak probe shows."""

    name: str
    extra_args: tuple[str, ...]
    probe: str  # "silent", "warning" or "error"

    def argv(self) -> list[str]:
        return [sys.executable, *BASE_ARGS, *self.extra_args]

    def command(self) -> str:
        return " ".join(["python", *BASE_ARGS, *self.extra_args])


CHECK_OFF = Subject("leak check off", ("-p", "no:pytest_asgiref._threads"), "silent")
CHECK_DEFAULT = Subject("leak check, warnings", (), "warning")
CHECK_STRICT = Subject("--asgi-strict-threads", ("--asgi-strict-threads",), "error")
SUBJECTS = (CHECK_OFF, CHECK_DEFAULT, CHECK_STRICT)

#: The issue's target on the wall time, then context.
COMPARISONS = (
    Comparison(CHECK_STRICT.name, CHECK_OFF.name, 1.05, at_most=True),
    Comparison(CHECK_DEFAULT.name, CHECK_OFF.name),
)

#: Runs of one subject per measurement at ``--scale 1``.
RUNS_PER_MEASUREMENT = 2
#: A run of this suite takes a few seconds; one this long has hung.
RUN_TIMEOUT = 300.0

_STRIPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def child_env() -> dict[str, str]:
    """This process's environment, without what would change pytest's plugins."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env.pop("FORCE_COLOR", None)
    env["PY_COLORS"] = "0"
    return env


class SuiteFailed(Exception):
    """The suite did not run as it must; the message says how."""


def children_cpu_ns() -> int | None:
    """CPU time (user + system) of this process's finished children, if known."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * 1e9)


@dataclass(frozen=True)
class Run:
    proc: subprocess.CompletedProcess[str]
    wall_ns: int
    cpu_ns: int | None


def run_pytest(subject: Subject, directory: Path, env: dict[str, str]) -> Run:
    """Run pytest once in ``directory``, timing it from spawn to exit."""
    argv = subject.argv()
    cpu_before = children_cpu_ns()
    start = time.perf_counter_ns()
    try:
        proc = subprocess.run(
            argv,
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        msg = (
            f"{subject.name}: pytest did not finish within {RUN_TIMEOUT:g} s "
            f"(command: {' '.join(argv)}; directory: {directory})"
        )
        raise SuiteFailed(msg) from exc
    wall = time.perf_counter_ns() - start
    cpu_after = children_cpu_ns()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Run(proc, wall, cpu)


_SUMMARY = re.compile(r"^=*\s*(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s\b")
_PLURAL = {"warning": "warnings", "error": "errors"}


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


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    out = "\n".join(proc.stdout.splitlines()[-lines:]) or "(nothing)"
    err = "\n".join(proc.stderr.splitlines()[-lines:]) or "(nothing)"
    return f"--- end of stdout ---\n{out}\n--- end of stderr ---\n{err}"


def check_outcome(
    subject: Subject,
    proc: subprocess.CompletedProcess[str],
    expected: dict[str, int],
    what: str,
) -> None:
    """Fail unless the run's summary counts are exactly ``expected``."""
    counts = outcomes(proc.stdout)
    if counts != expected:
        summary = "no summary line" if counts is None else repr(counts)
        msg = (
            f"{subject.name}: {what} must end with {expected!r}, but pytest "
            f"exited {proc.returncode} with {summary}.\ncommand: "
            f"{' '.join(proc.args)}\n{_tail(proc)}\nIf pytest_asgiref is in the "
            "middle of an edit, rerun once it imports again."
        )
        raise SuiteFailed(msg)


_PROBE_OUTCOMES = {
    "silent": {"passed": 1},
    "warning": {"passed": 1, "warnings": 1},
    "error": {"passed": 1, "errors": 1},
}


def check_probe(subject: Subject, probe: Path, env: dict[str, str]) -> None:
    """A test that leaks a thread is reported as the subject says it must be."""
    proc = run_pytest(subject, probe, env).proc
    check_outcome(subject, proc, _PROBE_OUTCOMES[subject.probe], "the leak probe")


# --------------------------------------------------------------------------- #
# Results and the report.
# --------------------------------------------------------------------------- #


@dataclass
class SubjectResult:
    name: str
    command: str
    n: int  # runs per measurement
    samples_ns: list[float]  # mean time per run, one per measurement
    median_ns: float


@dataclass
class WorkloadResult:
    name: str
    subjects: list[SubjectResult]
    comparisons: list[ComparisonResult]


@dataclass
class DiagnosticsReport:
    """Everything one run found; written out whole by ``--json``."""

    machine: Machine
    settings: Settings
    notes: list[str]
    suite: dict[str, int | str]
    workloads: list[WorkloadResult]


def overhead(ratio: float) -> str:
    """The ratio as the share of the run a diagnostic adds, in percent."""
    return f"{(ratio - 1) * 100:+.2f}%"


def print_results(workloads: Sequence[WorkloadResult], repeat: int) -> None:
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
    print()
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
        "(a / b: how many times longer a takes than b; overhead = what the "
        "diagnostic adds, in percent of the run without it; range = min-max of "
        "the per-repetition ratios)"
    )
    headers = ["workload", "ratio", "value", "overhead", "range", "target", "result"]
    print(table(headers, rows, left=2))


# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #


def versions() -> dict[str, str]:
    return {
        "pytest_asgiref": module_version(pytest_asgiref),
        "pytest": package_version("pytest"),
        "pytest-asyncio": package_version("pytest-asyncio"),
    }


def measure(settings: Settings) -> tuple[DiagnosticsReport, list[str]]:
    env = child_env()
    n = settings.n(RUNS_PER_MEASUREMENT)
    modules = QUICK_MODULES if settings.quick else MODULES
    with tempfile.TemporaryDirectory(prefix="bench_diagnostics-") as tmp:
        suite = Path(tmp, "suite")
        probe = Path(tmp, "probe")
        suite.mkdir()
        probe.mkdir()
        tests = write_suite(suite, modules)
        (probe / "pytest.ini").write_text(INI)
        (probe / "test_probe.py").write_text(PROBE)
        progress(f"wrote {tests} tests to {suite}")
        for subject in SUBJECTS:
            progress(f"checking {subject.name}: the probe, then the suite")
            check_probe(subject, probe, env)
            proc = run_pytest(subject, suite, env).proc
            check_outcome(subject, proc, {"passed": tests}, "the suite")

        cpu: dict[str, list[float]] = {s.name: [] for s in SUBJECTS}

        def thunk(subject: Subject) -> tuple[str, Callable[[int], int]]:
            def runs(k: int) -> int:
                wall = cpu_total = 0
                for _ in range(k):
                    run = run_pytest(subject, suite, env)
                    check_outcome(subject, run.proc, {"passed": tests}, "the suite")
                    wall += run.wall_ns
                    cpu_total += run.cpu_ns or 0
                cpu[subject.name].append(cpu_total / k)
                return wall

            return subject.name, runs

        cpu_known = children_cpu_ns() is not None
        notes = [
            f"the suite: {modules} modules of {TESTS_PER_MODULE} tests, each "
            "`assert async_to_sync(sync_to_async(answer))() == 42`, in a "
            "temporary directory with its own pytest.ini and no conftest.py",
            *(f"subject '{s.name}': {s.command()}" for s in SUBJECTS),
            "every subject passes the suite with no warning (no false alarm) "
            "and reports a leaking probe test as it should",
            "each figure is the wall time of a whole pytest subprocess, spawn to "
            f"exit; {', '.join(_STRIPPED_ENV)} removed from its environment; "
            "the collector setting above is this process's, not pytest's",
        ]
        machine = machine_info(versions())
        print_header("bench_diagnostics", machine, settings, notes)
        progress(f"measuring: {settings.repeat} x {n} runs of each subject")
        wall = measure_series([thunk(s) for s in SUBJECTS], n, settings.repeat)
    # The first measurement of each subject was the warm-up.
    cpu_samples = {name: values[1:] for name, values in cpu.items()}

    def result(
        name: str, samples: dict[str, list[float]], judged: bool
    ) -> WorkloadResult:
        subjects = [
            SubjectResult(
                s.name,
                s.command(),
                n,
                samples[s.name],
                statistics.median(samples[s.name]),
            )
            for s in SUBJECTS
        ]
        comparisons = [
            compare(c if judged else Comparison(c.numerator, c.denominator), samples)
            for c in COMPARISONS
        ]
        return WorkloadResult(name, subjects, comparisons)

    label = f"{tests:,} bridge tests"
    workloads = [result(f"{label}, wall time", wall, judged=True)]
    if cpu_known:
        workloads.append(result(f"{label}, CPU time", cpu_samples, judged=False))
    suite_info: dict[str, int | str] = {
        "modules": modules,
        "tests_per_module": TESTS_PER_MODULE,
        "tests": tests,
        "ini": INI,
    }
    report = DiagnosticsReport(machine, settings, notes, suite_info, workloads)
    missed = [
        f"{w.name}: {c.label}"
        for w in workloads
        for c in w.comparisons
        if c.passed is False
    ]
    return report, missed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(
        argv,
        description="Measure what the plugin's thread and task leak check costs "
        f"a run of {MODULES * TESTS_PER_MODULE:,} tests that each use a bridge.",
        hang="a hung pytest run",
    )
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        try:
            report, missed = measure(settings)
        except SuiteFailed as exc:
            print(f"bench_diagnostics: aborted: {exc}", file=sys.stderr)
            return 1
    print_results(report.workloads, settings.repeat)
    save_json(report, args.json)
    return exit_status(missed, args)


if __name__ == "__main__":
    sys.exit(main())
