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

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _bridge_suite import BRIDGE_TESTS, BridgeBenchmark
from _harness import Comparison
from _pytest_runs import (
    PytestRunner,
    PytestSubject,
    check_outcome,
    run_benchmark,
)

# --------------------------------------------------------------------------- #
# The suite (``_bridge_suite.BridgeSuite``) and the probe.
# --------------------------------------------------------------------------- #

PROBE = """\
import threading

STOP = threading.Event()


def test_leaves_a_thread():
    thread = threading.Thread(target=STOP.wait, args=(5,), name="probe-leak")
    thread.daemon = True
    thread.start()
"""

# --------------------------------------------------------------------------- #
# The subjects.
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Subject(PytestSubject):
    """One way of running the suite; ``probe`` is what the leak probe shows."""

    probe: str  # "silent", "warning" or "error"


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

_PROBE_OUTCOMES = {
    "silent": {"passed": 1},
    "warning": {"passed": 1, "warnings": 1},
    "error": {"passed": 1, "errors": 1},
}


def check_probe(runner: PytestRunner, subject: Subject, probe: Path) -> None:
    """A test that leaks a thread is reported as the subject says it must be."""
    proc = runner.run(subject, probe).proc
    check_outcome(subject, proc, _PROBE_OUTCOMES[subject.probe], "the leak probe")


# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #

BENCHMARK = BridgeBenchmark(
    script="bench_diagnostics",
    subjects=SUBJECTS,
    comparisons=COMPARISONS,
    probe=PROBE,
    probe_name="the probe",
    check_probe=check_probe,
    checks_note="every subject passes the suite with no warning (no false alarm) "
    "and reports a leaking probe test as it should",
    packages=("pytest-asyncio",),
    runs_per_measurement=RUNS_PER_MEASUREMENT,
    run_timeout=RUN_TIMEOUT,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        argv,
        script=BENCHMARK.script,
        description="Measure what the plugin's thread and task leak check costs "
        f"a run of {BRIDGE_TESTS:,} tests that each use a bridge.",
        measure=BENCHMARK.measure,
        overhead_means="what the diagnostic adds, in percent of the run without it",
    )


if __name__ == "__main__":
    sys.exit(main())
