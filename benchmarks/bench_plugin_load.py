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

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    Comparison,
    Settings,
    machine_info,
    print_header,
    progress,
)
from _pytest_runs import (
    RERUN_HINT,
    WALL_TIME_NOTE,
    PytestRunner,
    PytestRunReport,
    PytestSubject,
    Run,
    SubjectResult,
    SuiteFailed,
    check_rootdir,
    cpu_time_known,
    header_plugins,
    outcomes,
    run_benchmark,
    tail,
    time_subjects,
    versions,
    workload_results,
)

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

#: The suite as the JSON reports it.
SUITE_INFO: dict[str, int | str] = {
    "modules": MODULES,
    "plain_tests_per_module": PLAIN_PER_MODULE,
    "parametrised_cases_per_module": PARAMS_PER_MODULE,
    "tests": TESTS,
    "ini": INI,
}


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
# The subjects, and checking their runs.
# --------------------------------------------------------------------------- #

PLUGIN = "asgiref"  # the pytest11 entry point's name


@dataclass(frozen=True)
class Subject(PytestSubject):
    """One way of running the suite."""

    plugin_loaded: bool


WITH_PLUGIN = Subject("plugin loaded", (), plugin_loaded=True)
WITHOUT_PLUGIN = Subject(f"-p no:{PLUGIN}", ("-p", f"no:{PLUGIN}"), False)
SUBJECTS = (WITH_PLUGIN, WITHOUT_PLUGIN)

#: The issue's target, judged on the wall time: at most 2% longer with the plugin.
TARGET = Comparison(WITH_PLUGIN.name, WITHOUT_PLUGIN.name, 1.02, at_most=True)
LABEL = f"{TESTS:,} trivial tests"

#: Runs of one subject per measurement at ``--scale 1``.
RUNS_PER_MEASUREMENT = 3
#: A run of this trivial suite takes a few seconds; one this long has hung.
RUN_TIMEOUT = 120.0


def check_passed(subject: Subject, suite: Path, run: Run) -> int:
    """Fail unless the run exited 0 with exactly ``2000 passed``.

    Returns the number of warnings in the summary (warnings alone are no
    failure, but the report mentions them).
    """
    proc = run.proc
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
            f"{tail(proc)}\n{RERUN_HINT}"
        )
        raise SuiteFailed(msg)
    return counts.get("warnings", 0)


def run_passing(runner: PytestRunner, subject: Subject, suite: Path) -> Run:
    """Run the suite once and check that it passed."""
    run = runner.run(subject, suite)
    check_passed(subject, suite, run)
    return run


@dataclass(frozen=True)
class Checked:
    """What the untimed check run of one subject showed."""

    plugins: list[str]  # the header's "plugins:" entries, as "name-version"
    warnings: int


def check_plugin_listed(subject: Subject, plugins: list[str]) -> None:
    """Fail unless the header lists the plugin exactly when the subject loads it."""
    loaded = any(p.startswith(f"{PLUGIN}-") for p in plugins)
    if loaded != subject.plugin_loaded:
        msg = (
            f"{subject.name}: the plugin '{PLUGIN}' should "
            f"{'' if subject.plugin_loaded else 'not '}be loaded, but pytest's "
            f"header lists the plugins {plugins!r}. Is pytest-asgiref installed "
            '(.venv/bin/pip install -e ".[benchmark]")?'
        )
        raise SuiteFailed(msg)


def check_subject(runner: PytestRunner, subject: Subject, suite: Path) -> Checked:
    """Run the suite once, untimed and with its header, and check it.

    It must pass; the rootdir must be the suite's directory with its own
    ini file; the plugin must be listed exactly when the subject loads it.
    """
    run = runner.run(subject, suite, quiet=False)
    warnings = check_passed(subject, suite, run)
    check_rootdir(subject, suite, run.proc)
    plugins = header_plugins(run.proc.stdout)
    check_plugin_listed(subject, plugins)
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
class LoadSubjectResult(SubjectResult):
    plugins: list[str]
    warnings: int  # in the check run's summary


def report_notes(
    checked: dict[str, Checked], others: list[str], env: dict[str, str]
) -> list[str]:
    """What the suite and the subjects are, and what the check runs showed."""
    ours = checked[WITH_PLUGIN.name].plugins
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
        WALL_TIME_NOTE,
        "the target is judged on the wall time; the CPU time row (user + "
        "system time of the subprocess) is context: less sensitive to other "
        "load on the machine"
        if cpu_time_known()
        else "no CPU time row: this platform cannot report a child's CPU time",
        "bytecode caching is off (PYTHONDONTWRITEBYTECODE is set): every run "
        "compiles, and assertion-rewrites, the plugin's modules again; with "
        "caching on, as usual, pytest caches its rewritten modules and only "
        "the first run pays for that"
        if env.get("PYTHONDONTWRITEBYTECODE")
        else "bytecode caching is on: after the warm-up runs, the plugin's "
        "modules load from pytest's cache of rewritten modules",
    ]
    notes += [
        f"{name}: the check run's summary shows {c.warnings} warning(s)"
        for name, c in checked.items()
        if c.warnings
    ]
    return notes


# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #


def measure(settings: Settings) -> PytestRunReport:
    """Generate the suite, check both subjects, time them."""
    runner = PytestRunner(RUN_TIMEOUT)
    n = settings.n(RUNS_PER_MEASUREMENT)
    with tempfile.TemporaryDirectory(prefix="bench_plugin_load-") as tmp:
        suite = Path(tmp).resolve()
        progress(f"writing {TESTS} tests to {suite}")
        write_suite(suite)
        checked: dict[str, Checked] = {}
        for subject in SUBJECTS:
            progress(f"checking that the suite passes: {subject.name}")
            checked[subject.name] = check_subject(runner, subject, suite)
        others = check_same_others(checked)

        notes = report_notes(checked, others, runner.env)
        machine = machine_info(versions("pluggy"))
        print_header("bench_plugin_load", machine, settings, notes)
        timings = time_subjects(
            SUBJECTS, lambda s: run_passing(runner, s, suite), n, settings.repeat
        )

    def result(subject: Subject, runs: int, samples: list[float]) -> SubjectResult:
        found = checked[subject.name]
        return LoadSubjectResult.of(
            subject, runs, samples, plugins=found.plugins, warnings=found.warnings
        )

    workloads = workload_results(LABEL, SUBJECTS, n, timings, [TARGET], result)
    return PytestRunReport(machine, settings, notes, SUITE_INFO, workloads)


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        argv,
        script="bench_plugin_load",
        description="Measure what loading the pytest-asgiref plugin, unused, "
        f"costs a run of {TESTS:,} trivial tests.",
        measure=measure,
        overhead_means="what loading the plugin adds, in percent of the run without it",
    )


if __name__ == "__main__":
    sys.exit(main())
