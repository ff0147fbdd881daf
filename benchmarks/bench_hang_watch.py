"""What watching for hangs costs a test run that uses the bridges.

The target (from the issue): across 2,000 tests that each use a bridge,
``--asgi-timeout`` adds at most 2% to the run when nothing hangs.

What is measured (every figure is the time of a whole pytest run):

* **The suite**, the same kind as ``bench_diagnostics.py``'s: generated in a
  temporary directory, 20 modules of 100 tests, 2,000 tests in all, each
  making one bridge round trip, ``async_to_sync(sync_to_async(f))()``. The
  directory has its own ``pytest.ini`` and no ``conftest.py``. Nothing in it
  hangs.
* **Subjects**, each a fresh ``python -m pytest -q -p no:cacheprovider``
  subprocess run in that directory, differing only in their extra arguments:

  - ``no time limit``: no option (the plugin loaded, its watchdog not
    started);
  - ``--asgi-timeout 30``: every setup, call and teardown watched, with
    deadlock checks for any phase that runs longer than 0.25 s;
  - ``--timeout 30``: pytest-timeout, whose timer pytest-asgiref sets up so
    that a timeout carries the hang report;
  - ``--timeout 30, report off``: the same with pytest-asgiref's hang module
    blocked (``-p no:pytest_asgiref._hangs``), so pytest-timeout sets its
    timer up itself.

* **Comparisons**: ``--asgi-timeout 30`` against ``no time limit`` (the
  issue's target, judged on the wall time), and the two pytest-timeout
  subjects against each other (context: what the report's set-up costs a
  pytest-timeout user).
* **One run** is timed from before the subprocess is spawned until it has
  exited and its output has been read (wall time), and its CPU time (user +
  system, from ``resource.getrusage(RUSAGE_CHILDREN)``) is recorded too: the
  wall time is judged; the CPU time gets rows of its own without a target.

Before any timing the script checks that every subject runs the suite with
exit status 0 and exactly ``2000 passed``, and, on a two-test probe whose
first test hangs, that the subjects differ as intended: the probe runs each
subject's command with its limit lowered (0.5 s, or 1 s for pytest-timeout);
the hung test must fail, the next one pass, and the hang report must be in
the output exactly when pytest-asgiref's hang module is loaded. Every timed
run is checked again (exit status 0, ``2000 passed``) outside the clock.

Method, as in the other benchmarks here: each subject is warmed up (one run,
discarded), then measured R times (``--repeat``), each repetition measuring
every subject once, back to back, the order reversing every repetition. A
measurement is N runs of one subject (2 at ``--scale 1``); its figure is the
mean time per run.

Run ``python benchmarks/bench_hang_watch.py --help`` for the options; see
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
# The suite and the probe.
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
import asyncio

import pytest


@pytest.mark.asyncio
async def test_hangs():
    await asyncio.Event().wait()


def test_next():
    pass
"""

#: Printed by pytest-asgiref when it ends a hung test itself.
WATCH_MARK = "so pytest-asgiref ended it"
#: The title of the section pytest-asgiref adds to pytest-timeout's failures.
REPORT_MARK = "asgiref hang report"


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
BLOCK_HANGS = ("-p", "no:pytest_asgiref._hangs")


@dataclass(frozen=True)
class Subject:
    """One way of running the suite, and how to probe that it does what it says.

    ``probe_args`` replace ``extra_args`` for the probe (the same options, a
    short limit); ``marks`` are the texts the probe's output must contain,
    ``absent`` those it must not.
    """

    name: str
    extra_args: tuple[str, ...]
    probe_args: tuple[str, ...] | None
    marks: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()

    def argv(self, extra: tuple[str, ...] | None = None) -> list[str]:
        return [
            sys.executable,
            *BASE_ARGS,
            *(self.extra_args if extra is None else extra),
        ]

    def command(self) -> str:
        return " ".join(["python", *BASE_ARGS, *self.extra_args])


NO_LIMIT = Subject("no time limit", (), None)
WATCHED = Subject(
    "--asgi-timeout 30",
    ("--asgi-timeout", "30"),
    ("--asgi-timeout", "0.5"),
    marks=(WATCH_MARK,),
)
PYTEST_TIMEOUT = Subject(
    "--timeout 30",
    ("--timeout", "30"),
    ("--timeout", "1"),
    marks=(REPORT_MARK,),
)
PYTEST_TIMEOUT_ALONE = Subject(
    "--timeout 30, report off",
    ("--timeout", "30", *BLOCK_HANGS),
    ("--timeout", "1", *BLOCK_HANGS),
    absent=(REPORT_MARK,),
)
SUBJECTS = (NO_LIMIT, WATCHED, PYTEST_TIMEOUT, PYTEST_TIMEOUT_ALONE)

#: The issue's target on the wall time, then context.
COMPARISONS = (
    Comparison(WATCHED.name, NO_LIMIT.name, 1.02, at_most=True),
    Comparison(PYTEST_TIMEOUT.name, PYTEST_TIMEOUT_ALONE.name),
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
    """The suite or the probe did not run as it must; the message says how."""


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


def run_pytest(
    subject: Subject,
    directory: Path,
    env: dict[str, str],
    extra: tuple[str, ...] | None = None,
) -> Run:
    """Run pytest once in ``directory``, timing it from spawn to exit."""
    argv = subject.argv(extra)
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
    *,
    warnings_too: bool = False,
) -> None:
    """Fail unless the run's summary counts are exactly ``expected``, but
    for any warnings if ``warnings_too``."""
    counts = outcomes(proc.stdout)
    if warnings_too and counts is not None:
        counts.pop("warnings", None)
    if counts != expected:
        summary = "no summary line" if counts is None else repr(counts)
        msg = (
            f"{subject.name}: {what} must end with {expected!r}, but pytest "
            f"exited {proc.returncode} with {summary}.\ncommand: "
            f"{' '.join(proc.args)}\n{_tail(proc)}\nIf pytest_asgiref is in the "
            "middle of an edit, rerun once it imports again."
        )
        raise SuiteFailed(msg)


def check_probe(subject: Subject, probe: Path, env: dict[str, str]) -> None:
    """The hung probe test fails, the next passes, the report is where it belongs."""
    if subject.probe_args is None:
        return
    proc = run_pytest(subject, probe, env, subject.probe_args).proc
    # pytest-timeout's signal interrupts the test's loop with its task still
    # pending, which the leak check warns about.
    expected = {"failed": 1, "passed": 1}
    check_outcome(subject, proc, expected, "the hang probe", warnings_too=True)
    for mark in subject.marks:
        if mark not in proc.stdout:
            msg = (
                f"{subject.name}: the hang probe's output must contain {mark!r}\n"
                f"command: {' '.join(proc.args)}\n{_tail(proc, 40)}"
            )
            raise SuiteFailed(msg)
    for mark in subject.absent:
        if mark in proc.stdout:
            msg = (
                f"{subject.name}: the hang probe's output must not contain "
                f"{mark!r} (is the hang module still loaded?)\n"
                f"command: {' '.join(proc.args)}\n{_tail(proc, 40)}"
            )
            raise SuiteFailed(msg)


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
class HangWatchReport:
    """Everything one run found; written out whole by ``--json``."""

    machine: Machine
    settings: Settings
    notes: list[str]
    suite: dict[str, int | str]
    workloads: list[WorkloadResult]


def overhead(ratio: float) -> str:
    """The ratio as the share of the run the watching adds, in percent."""
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
        "(a / b: how many times longer a takes than b; overhead = what a adds, "
        "in percent of the run of b; range = min-max of the per-repetition "
        "ratios)"
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
        "pytest-timeout": package_version("pytest-timeout"),
    }


def measure(settings: Settings) -> tuple[HangWatchReport, list[str]]:
    env = child_env()
    n = settings.n(RUNS_PER_MEASUREMENT)
    modules = QUICK_MODULES if settings.quick else MODULES
    with tempfile.TemporaryDirectory(prefix="bench_hang_watch-") as tmp:
        suite = Path(tmp, "suite")
        probe = Path(tmp, "probe")
        suite.mkdir()
        probe.mkdir()
        tests = write_suite(suite, modules)
        (probe / "pytest.ini").write_text(INI)
        (probe / "test_probe.py").write_text(PROBE)
        progress(f"wrote {tests} tests to {suite}")
        for subject in SUBJECTS:
            progress(f"checking {subject.name}: the hang probe, then the suite")
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
            "temporary directory with its own pytest.ini and no conftest.py; "
            "nothing in it hangs",
            *(f"subject '{s.name}': {s.command()}" for s in SUBJECTS),
            "every subject passes the suite, and ends a hung probe test (with a "
            "short limit) as it should, with the hang report exactly when "
            "pytest-asgiref's hang module is loaded",
            "each figure is the wall time of a whole pytest subprocess, spawn to "
            f"exit; {', '.join(_STRIPPED_ENV)} removed from its environment; "
            "the collector setting above is this process's, not pytest's",
        ]
        machine = machine_info(versions())
        print_header("bench_hang_watch", machine, settings, notes)
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
    report = HangWatchReport(machine, settings, notes, suite_info, workloads)
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
        description="Measure what --asgi-timeout (and the pytest-timeout report "
        f"set-up) costs a run of {MODULES * TESTS_PER_MODULE:,} tests that each "
        "use a bridge, when nothing hangs.",
        hang="a hung pytest run",
    )
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        try:
            report, missed = measure(settings)
        except SuiteFailed as exc:
            print(f"bench_hang_watch: aborted: {exc}", file=sys.stderr)
            return 1
    print_results(report.workloads, settings.repeat)
    save_json(report, args.json)
    return exit_status(missed, args)


if __name__ == "__main__":
    sys.exit(main())
