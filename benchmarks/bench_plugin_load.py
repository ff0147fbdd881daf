"""What merely loading the pytest plugin costs a test run.

The target (from the issue): on a suite of 2,000 trivial tests, loading the
plugin without using it costs at most 2% of the run.

What is measured (every figure is the time of one whole pytest run):

* **The suite.** Generated in a temporary directory: 20 modules, each with 95
  plain tests (``def test_n(): assert True``) and one test parametrised five
  ways, 2,000 tests in all. The directory has its own ``pytest.ini`` holding
  only a ``[pytest]`` section (nothing for any plugin) and no
  ``conftest.py``, so neither the project's ``pyproject.toml`` nor its
  ``conftest.py`` is picked up. No test uses the plugin's fixtures, markers or
  options: the suite does not know the plugin is there.
* **Two subjects**, each a fresh ``python -m pytest -q -p no:cacheprovider``
  subprocess run in that directory: the plugin loaded as installed (through
  its ``pytest11`` entry point), and the same command with ``-p no:asgiref``.
  Every other installed plugin (pytest-asyncio, pytest-timeout, anyio...)
  loads in both; only ``asgiref`` differs. ``PYTEST_ADDOPTS``,
  ``PYTEST_PLUGINS`` and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` are removed from
  the subprocesses' environment, and colour is turned off.
* **One run** is timed with ``time.perf_counter_ns`` from before the
  subprocess is spawned until it has exited and its output has been read:
  interpreter start-up, plugin loading, collection, the 2,000 tests and the
  report. Nothing is subtracted. This wall time is the figure the target is
  judged on.
* **CPU time, for context.** The user + system CPU time of each run's
  subprocess (from ``resource.getrusage(RUSAGE_CHILDREN)``, where the
  platform has it) is recorded too and gets its own row with no target: other
  load on the machine stretches wall time far more than CPU time, so this row
  helps tell the plugin's cost from the machine's noise.

Before any timing, each subject runs the suite once without ``-q``; the script
checks that it exits 0 with exactly ``2000 passed``, that the rootdir is the
temporary directory with its ``pytest.ini``, that the ``plugins:`` line of the
header lists ``asgiref`` for the first subject only, and that the other
plugins listed are the same for both. Every timed run is also checked (exit
status 0, ``2000 passed``), outside the clock. If any check fails, the script
stops with a message saying what went wrong and the tail of pytest's output.

Method, as in the other benchmarks here, with a pytest run as the operation:
each subject is warmed up (one run, discarded), then measured R times
(``--repeat``), each repetition measuring both subjects once, back to back,
the order flipping every repetition. A measurement is N runs of one subject
(3 at ``--scale 1``), back to back; its figure is the mean time per run.

Reported, for the wall time and the CPU time: the median time per run of
each subject, the ratio of the medians (plugin loaded / ``-p no:asgiref``),
the overhead that ratio means in percent of the run, the range of the
per-repetition ratios, and, for the wall time only, PASS/MISS against the
target (ratio <= 1.02).

Run ``python benchmarks/bench_plugin_load.py --help`` for the options; see
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
PLAIN_PER_MODULE = 95
PARAMS_PER_MODULE = 5  # one test parametrised this many ways, per module
TESTS = MODULES * (PLAIN_PER_MODULE + PARAMS_PER_MODULE)

INI = """\
[pytest]
# Nothing plugin-specific: every plugin runs on its defaults.
"""


def module_source() -> str:
    """One test module: the plain tests, then the parametrised one."""
    lines = ["import pytest", "", ""]
    for i in range(PLAIN_PER_MODULE):
        lines += [f"def test_{i}():", "    assert True", "", ""]
    lines += [
        f'@pytest.mark.parametrize("x", range({PARAMS_PER_MODULE}))',
        "def test_param(x):",
        "    assert x >= 0",
    ]
    return "\n".join(lines) + "\n"


def write_suite(directory: Path) -> None:
    """Write the ini file and the test modules into ``directory``."""
    (directory / "pytest.ini").write_text(INI)
    source = module_source()
    for m in range(MODULES):
        (directory / f"test_module_{m:02d}.py").write_text(source)


# --------------------------------------------------------------------------- #
# Running it.
# --------------------------------------------------------------------------- #

PLUGIN = "asgiref"  # the pytest11 entry point's name
BASE_ARGS = ("-m", "pytest", "-q", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class Subject:
    """One way of running the suite."""

    name: str
    extra_args: tuple[str, ...]
    plugin_loaded: bool

    def argv(self, *, quiet: bool = True) -> list[str]:
        base = BASE_ARGS if quiet else tuple(a for a in BASE_ARGS if a != "-q")
        return [sys.executable, *base, *self.extra_args]

    def command(self) -> str:
        """The command line as the report prints it."""
        return " ".join(["python", *BASE_ARGS, *self.extra_args])


WITH_PLUGIN = Subject("plugin loaded", (), plugin_loaded=True)
WITHOUT_PLUGIN = Subject(f"-p no:{PLUGIN}", ("-p", f"no:{PLUGIN}"), False)
SUBJECTS = (WITH_PLUGIN, WITHOUT_PLUGIN)

#: The issue's target, judged on the wall time: at most 2% longer with the plugin.
TARGET = Comparison(WITH_PLUGIN.name, WITHOUT_PLUGIN.name, 1.02, at_most=True)
#: The same ratio on the subprocesses' CPU time: context, no target.
CPU_RATIO = Comparison(WITH_PLUGIN.name, WITHOUT_PLUGIN.name)
WALL = f"{TESTS:,} trivial tests, wall time"
CPU = f"{TESTS:,} trivial tests, CPU time"

#: Runs of one subject per measurement at ``--scale 1``.
RUNS_PER_MEASUREMENT = 3
#: A run of this trivial suite takes a few seconds; one this long has hung.
RUN_TIMEOUT = 120.0

_STRIPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def child_env() -> dict[str, str]:
    """This process's environment, without what would change pytest's plugins."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env.pop("FORCE_COLOR", None)
    env["PY_COLORS"] = "0"  # plain output, for the checks that read it
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
    """One finished run of the suite."""

    proc: subprocess.CompletedProcess[str]
    wall_ns: int
    cpu_ns: int | None  # the subprocess's user + system CPU time


def run_suite(
    subject: Subject, suite: Path, env: dict[str, str], *, quiet: bool = True
) -> Run:
    """Run the suite once, in a subprocess, timing it from spawn to exit."""
    argv = subject.argv(quiet=quiet)
    cpu_before = children_cpu_ns()
    start = time.perf_counter_ns()
    try:
        proc = subprocess.run(
            argv,
            cwd=suite,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        msg = (
            f"{subject.name}: pytest did not finish within {RUN_TIMEOUT:g} s "
            f"(command: {' '.join(argv)}; directory: {suite})"
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


def check_passed(
    subject: Subject, suite: Path, proc: subprocess.CompletedProcess[str]
) -> int:
    """Fail unless the run exited 0 with exactly ``2000 passed``.

    Returns the number of warnings in the summary (warnings alone are no
    failure, but the report mentions them).
    """
    counts = outcomes(proc.stdout)
    others = {
        k: v for k, v in (counts or {}).items() if k not in {"passed", "warnings"}
    }
    if (
        proc.returncode != 0
        or counts is None
        or counts.get("passed") != TESTS
        or others
    ):
        summary = "no summary line" if counts is None else repr(counts)
        msg = (
            f"{subject.name}: the generated suite must pass with exit status 0 and "
            f"exactly '{TESTS} passed', but pytest exited {proc.returncode} with "
            f"{summary}.\ncommand: {' '.join(proc.args)}\ndirectory: {suite}\n"
            f"{_tail(proc)}\nIf pytest_asgiref is in the middle of an edit, rerun "
            "once it imports again."
        )
        raise SuiteFailed(msg)
    return counts.get("warnings", 0)


@dataclass(frozen=True)
class Checked:
    """What the untimed check run of one subject showed."""

    plugins: list[str]  # the header's "plugins:" entries, as "name-version"
    warnings: int


def _header_value(stdout: str, key: str) -> str | None:
    for line in stdout.splitlines():
        if line.startswith(f"{key}: "):
            return line.removeprefix(f"{key}: ").strip()
    return None


def check_subject(subject: Subject, suite: Path, env: dict[str, str]) -> Checked:
    """Run the suite once, untimed and with its header, and check it.

    It must pass; the rootdir must be the suite's directory with its own
    ini file; the plugin must be listed exactly when the subject loads it.
    """
    proc = run_suite(subject, suite, env, quiet=False).proc
    warnings = check_passed(subject, suite, proc)
    rootdir = _header_value(proc.stdout, "rootdir")
    configfile = _header_value(proc.stdout, "configfile")
    if rootdir is None or Path(rootdir) != suite or configfile != "pytest.ini":
        msg = (
            f"{subject.name}: pytest must use the suite's own directory and ini "
            f"file ({suite}, pytest.ini), but it reported rootdir {rootdir!r}, "
            f"configfile {configfile!r}\n{_tail(proc)}"
        )
        raise SuiteFailed(msg)
    listed = _header_value(proc.stdout, "plugins")
    plugins = listed.split(", ") if listed else []
    loaded = any(p.startswith(f"{PLUGIN}-") for p in plugins)
    if loaded != subject.plugin_loaded:
        msg = (
            f"{subject.name}: the plugin '{PLUGIN}' should "
            f"{'' if subject.plugin_loaded else 'not '}be loaded, but pytest's "
            f"header lists the plugins {plugins!r}. Is pytest-asgiref installed "
            '(.venv/bin/pip install -e ".[benchmark]")?'
        )
        raise SuiteFailed(msg)
    return Checked(plugins, warnings)


def others_of(plugins: Sequence[str]) -> list[str]:
    """The plugins listed, but the one under test."""
    return sorted(p for p in plugins if not p.startswith(f"{PLUGIN}-"))


def check_same_others(checked: dict[str, Checked]) -> list[str]:
    """Fail unless both subjects load the same other plugins; return them."""
    first, second = (others_of(checked[s.name].plugins) for s in SUBJECTS)
    if first != second:
        msg = (
            f"the subjects must differ only by the plugin '{PLUGIN}', but the "
            f"other plugins differ: {first!r} against {second!r}"
        )
        raise SuiteFailed(msg)
    return first


# --------------------------------------------------------------------------- #
# Results and the report.
# --------------------------------------------------------------------------- #


@dataclass
class SubjectResult:
    name: str
    command: str
    n: int  # runs per measurement
    samples_ns: list[float]  # mean wall time per run, one per measurement
    median_ns: float
    plugins: list[str]
    warnings: int  # in the check run's summary


@dataclass
class WorkloadResult:
    name: str
    subjects: list[SubjectResult]
    comparisons: list[ComparisonResult]


@dataclass
class PluginLoadReport:
    """Everything one run found; written out whole by ``--json``."""

    machine: Machine
    settings: Settings
    notes: list[str]
    suite: dict[str, int | str]
    workloads: list[WorkloadResult]


def overhead(ratio: float) -> str:
    """The ratio as the share of the run the plugin adds, in percent."""
    return f"{(ratio - 1) * 100:+.2f}%"


def print_results(workloads: Sequence[WorkloadResult], repeat: int) -> None:
    """The subjects table, then the ratios with their overhead and verdict."""
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
        "(a / b: how many times longer a takes than b; overhead = what loading "
        "the plugin adds, in percent of the run without it; range = min-max of "
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
        "pluggy": package_version("pluggy"),
    }


def measure(settings: Settings) -> tuple[PluginLoadReport, list[str]]:
    """Generate the suite, check both subjects, time them; the report and misses."""
    env = child_env()
    n = settings.n(RUNS_PER_MEASUREMENT)
    with tempfile.TemporaryDirectory(prefix="bench_plugin_load-") as tmp:
        suite = Path(tmp).resolve()
        progress(f"writing {TESTS} tests to {suite}")
        write_suite(suite)
        checked: dict[str, Checked] = {}
        for subject in SUBJECTS:
            progress(f"checking that the suite passes: {subject.name}")
            checked[subject.name] = check_subject(subject, suite, env)
        others = check_same_others(checked)
        ours = checked[WITH_PLUGIN.name].plugins

        cpu: dict[str, list[float]] = {s.name: [] for s in SUBJECTS}

        def thunk(subject: Subject) -> tuple[str, Callable[[int], int]]:
            def runs(k: int) -> int:
                wall = cpu_total = 0
                for _ in range(k):
                    run = run_suite(subject, suite, env)
                    check_passed(subject, suite, run.proc)  # outside the clock
                    wall += run.wall_ns
                    cpu_total += run.cpu_ns or 0
                cpu[subject.name].append(cpu_total / k)
                return wall

            return subject.name, runs

        cpu_known = children_cpu_ns() is not None
        notes = [
            f"the suite: {MODULES} modules of {PLAIN_PER_MODULE} plain tests "
            f"(`def test_n(): assert True`) and one test parametrised "
            f"{PARAMS_PER_MODULE} ways, {TESTS:,} tests, in a temporary directory "
            "with its own pytest.ini ([pytest] only) and no conftest.py",
            "the suite uses none of the plugin's fixtures, markers or options: "
            "this is the cost of loading the plugin alone",
            f"subjects: '{WITH_PLUGIN.command()}' (plugin loaded through its "
            f"pytest11 entry point) and '{WITHOUT_PLUGIN.command()}'",
            "plugins loaded in both subjects: "
            f"{', '.join(others) if others else 'none'}; only "
            f"{', '.join(sorted(set(ours) - set(others)))} differs",
            "each figure is the wall time of a whole pytest subprocess, spawn to "
            f"exit; {', '.join(_STRIPPED_ENV)} removed from its environment; "
            "the collector setting above is this process's, not pytest's",
            "the target is judged on the wall time; the CPU time row (user + "
            "system time of the subprocess) is context: less sensitive to other "
            "load on the machine"
            if cpu_known
            else "no CPU time row: this platform cannot report a child's CPU time",
        ]
        notes.append(
            "bytecode caching is off (PYTHONDONTWRITEBYTECODE is set): every run "
            "compiles, and assertion-rewrites, the plugin's modules again; with "
            "caching on, as usual, pytest caches its rewritten modules and only "
            "the first run pays for that"
            if env.get("PYTHONDONTWRITEBYTECODE")
            else "bytecode caching is on: after the warm-up runs, the plugin's "
            "modules load from pytest's cache of rewritten modules"
        )
        notes += [
            f"{name}: the check run's summary shows {c.warnings} warning(s)"
            for name, c in checked.items()
            if c.warnings
        ]
        machine = machine_info(versions())
        print_header("bench_plugin_load", machine, settings, notes)
        progress(f"measuring: {settings.repeat} x {n} runs of each subject")
        wall = measure_series([thunk(s) for s in SUBJECTS], n, settings.repeat)
    # The first measurement of each subject was the warm-up.
    cpu_samples = {name: values[1:] for name, values in cpu.items()}

    def result(
        name: str, samples: dict[str, list[float]], ratio: Comparison
    ) -> WorkloadResult:
        subjects = [
            SubjectResult(
                s.name,
                s.command(),
                n,
                samples[s.name],
                statistics.median(samples[s.name]),
                checked[s.name].plugins,
                checked[s.name].warnings,
            )
            for s in SUBJECTS
        ]
        return WorkloadResult(name, subjects, [compare(ratio, samples)])

    workloads = [result(WALL, wall, TARGET)]
    if cpu_known:
        workloads.append(result(CPU, cpu_samples, CPU_RATIO))
    suite_info: dict[str, int | str] = {
        "modules": MODULES,
        "plain_tests_per_module": PLAIN_PER_MODULE,
        "parametrised_cases_per_module": PARAMS_PER_MODULE,
        "tests": TESTS,
        "ini": INI,
    }
    report = PluginLoadReport(machine, settings, notes, suite_info, workloads)
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
        description="Measure what loading the pytest-asgiref plugin, unused, "
        f"costs a run of {TESTS:,} trivial tests.",
        hang="a hung pytest run",
    )
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        try:
            report, missed = measure(settings)
        except SuiteFailed as exc:
            print(f"bench_plugin_load: aborted: {exc}", file=sys.stderr)
            return 1

    print_results(report.workloads, settings.repeat)
    save_json(report, args.json)
    return exit_status(missed, args)


if __name__ == "__main__":
    sys.exit(main())
