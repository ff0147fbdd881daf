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

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _bridge_suite import BRIDGE_TESTS, BridgeBenchmark
from _harness import Comparison
from _pytest_runs import (
    PytestRunner,
    PytestSubject,
    SuiteFailed,
    check_outcome,
    run_benchmark,
    tail,
)

# --------------------------------------------------------------------------- #
# The suite (``_bridge_suite.BridgeSuite``) and the probe.
# --------------------------------------------------------------------------- #

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

# --------------------------------------------------------------------------- #
# The subjects.
# --------------------------------------------------------------------------- #

BLOCK_HANGS = ("-p", "no:pytest_asgiref._hangs")


@dataclass(frozen=True)
class Subject(PytestSubject):
    """One way of running the suite, and how to probe that it does what it says.

    ``probe_args`` replace ``extra_args`` for the probe (the same options, a
    short limit); ``marks`` are the texts the probe's output must contain,
    ``absent`` those it must not.
    """

    probe_args: tuple[str, ...] | None
    marks: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


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


def check_probe(runner: PytestRunner, subject: Subject, probe: Path) -> None:
    """The hung probe test fails, the next passes, the report is where it belongs."""
    if subject.probe_args is None:
        return
    proc = runner.run(subject, probe, subject.probe_args).proc
    # pytest-timeout's signal interrupts the test's loop with its task still
    # pending, which the leak check warns about.
    expected = {"failed": 1, "passed": 1}
    check_outcome(subject, proc, expected, "the hang probe", ignore_warnings=True)
    for mark in subject.marks:
        if mark not in proc.stdout:
            msg = (
                f"{subject.name}: the hang probe's output must contain {mark!r}\n"
                f"command: {' '.join(proc.args)}\n{tail(proc, 40)}"
            )
            raise SuiteFailed(msg)
    for mark in subject.absent:
        if mark in proc.stdout:
            msg = (
                f"{subject.name}: the hang probe's output must not contain "
                f"{mark!r} (is the hang module still loaded?)\n"
                f"command: {' '.join(proc.args)}\n{tail(proc, 40)}"
            )
            raise SuiteFailed(msg)


# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #

BENCHMARK = BridgeBenchmark(
    script="bench_hang_watch",
    subjects=SUBJECTS,
    comparisons=COMPARISONS,
    probe=PROBE,
    probe_name="the hang probe",
    check_probe=check_probe,
    checks_note="every subject passes the suite, and ends a hung probe test (with "
    "a short limit) as it should, with the hang report exactly when "
    "pytest-asgiref's hang module is loaded",
    packages=("pytest-timeout",),
    runs_per_measurement=RUNS_PER_MEASUREMENT,
    run_timeout=RUN_TIMEOUT,
    suite_aside="; nothing in it hangs",
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        argv,
        script=BENCHMARK.script,
        description="Measure what --asgi-timeout (and the pytest-timeout report "
        f"set-up) costs a run of {BRIDGE_TESTS:,} tests that each "
        "use a bridge, when nothing hangs.",
        measure=BENCHMARK.measure,
        overhead_means="what a adds, in percent of the run of b",
    )


if __name__ == "__main__":
    sys.exit(main())
