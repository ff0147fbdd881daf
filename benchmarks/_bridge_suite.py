"""The bridge suite that ``bench_diagnostics.py`` and ``bench_hang_watch.py``
both run, and :class:`BridgeBenchmark`, their whole measurement.

The suite is modules of tests that each make one bridge round trip. The
measurement writes the suite and a probe, checks every subject on both, and
times them with ``_pytest_runs.py``. The two scripts keep their subjects,
their probe and what it must show.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Self

from _harness import (
    Comparison,
    Settings,
    machine_info,
    print_header,
    progress,
)
from _pytest_runs import (
    WALL_TIME_NOTE,
    PytestRunner,
    PytestRunReport,
    S,
    time_subjects,
    versions,
    workload_results,
)

# --------------------------------------------------------------------------- #
# The bridge suite of bench_diagnostics.py and bench_hang_watch.py.
# --------------------------------------------------------------------------- #

BRIDGE_MODULES = 20
BRIDGE_TESTS_PER_MODULE = 100
BRIDGE_TESTS = BRIDGE_MODULES * BRIDGE_TESTS_PER_MODULE
#: ``--quick`` runs this many modules: the figures mean nothing anyway.
BRIDGE_QUICK_MODULES = 2

BRIDGE_INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
"""

_BRIDGE_MODULE = """\
from asgiref_core.sync import async_to_sync, sync_to_async


def answer():
    return 42
"""

_BRIDGE_TEST = """

def test_{i}():
    assert async_to_sync(sync_to_async(answer))() == 42
"""


@dataclass(frozen=True)
class BridgeSuite:
    """Modules of tests that each make one bridge round trip, in ``directory``.

    Each test, ``async_to_sync(sync_to_async(answer))()``, uses a loop thread
    for the ``async_to_sync`` call and the thread-sensitive executor for the
    ``sync_to_async`` one. The directory has its own ``pytest.ini`` and no
    ``conftest.py``.
    """

    directory: Path
    modules: int

    @classmethod
    def write(cls, directory: Path, settings: Settings) -> Self:
        """Write the suite into a new ``directory``, smaller with ``--quick``."""
        suite = cls(
            directory, BRIDGE_QUICK_MODULES if settings.quick else BRIDGE_MODULES
        )
        directory.mkdir()
        (directory / "pytest.ini").write_text(BRIDGE_INI)
        source = _BRIDGE_MODULE + "".join(
            _BRIDGE_TEST.format(i=i) for i in range(BRIDGE_TESTS_PER_MODULE)
        )
        for m in range(suite.modules):
            (directory / f"test_bridge_{m:02d}.py").write_text(source)
        progress(f"wrote {suite.tests} tests to {directory}")
        return suite

    @property
    def tests(self) -> int:
        return self.modules * BRIDGE_TESTS_PER_MODULE

    @property
    def label(self) -> str:
        """The workload's name, before ", wall time" or ", CPU time"."""
        return f"{self.tests:,} bridge tests"

    def note(self) -> str:
        """What the suite is, for the report's notes."""
        return (
            f"the suite: {self.modules} modules of {BRIDGE_TESTS_PER_MODULE} tests, "
            "each `assert async_to_sync(sync_to_async(answer))() == 42`, in a "
            "temporary directory with its own pytest.ini and no conftest.py"
        )

    def info(self) -> dict[str, int | str]:
        """What the suite is, for the JSON."""
        return {
            "modules": self.modules,
            "tests_per_module": BRIDGE_TESTS_PER_MODULE,
            "tests": self.tests,
            "ini": BRIDGE_INI,
        }


def write_probe(directory: Path, source: str) -> Path:
    """A new ``directory`` with the bridge suite's ini file and one test module."""
    directory.mkdir()
    (directory / "pytest.ini").write_text(BRIDGE_INI)
    (directory / "test_probe.py").write_text(source)
    return directory


@dataclass(frozen=True)
class BridgeBenchmark(Generic[S]):
    """Subjects timed on the bridge suite, each checked on a probe first.

    Before any timing, every subject must handle the probe (a test module run
    alone, in a directory of its own) as ``check_probe`` expects, which shows
    that the subjects differ as intended, and must pass the suite. Every
    timed run is checked again, outside the clock.
    """

    script: str  # "bench_diagnostics": names the header and the temporary directory
    subjects: Sequence[S]
    comparisons: Sequence[Comparison]
    probe: str  # the probe's test module
    probe_name: str  # "the probe", for the progress lines
    check_probe: Callable[[PytestRunner, S, Path], None]
    checks_note: str  # what the checks showed, for the report's notes
    packages: tuple[str, ...]  # versions in the header, after pytest's
    runs_per_measurement: int  # at --scale 1
    run_timeout: float  # seconds; a run that takes this long has hung
    suite_aside: str = ""  # ends the suite's note

    def measure(self, settings: Settings) -> PytestRunReport:
        """Write the suite and the probe, check every subject, time them."""
        runner = PytestRunner(self.run_timeout)
        n = settings.n(self.runs_per_measurement)
        with tempfile.TemporaryDirectory(prefix=f"{self.script}-") as tmp:
            probe = write_probe(Path(tmp, "probe"), self.probe)
            suite = BridgeSuite.write(Path(tmp, "suite"), settings)
            self._check(runner, suite, probe)
            notes = self._notes(suite)
            machine = machine_info(versions(*self.packages))
            print_header(self.script, machine, settings, notes)
            timings = time_subjects(
                self.subjects,
                lambda s: runner.run_passing(s, suite.directory, suite.tests),
                n,
                settings.repeat,
            )
        workloads = workload_results(
            suite.label, self.subjects, n, timings, self.comparisons
        )
        return PytestRunReport(machine, settings, notes, suite.info(), workloads)

    def _check(self, runner: PytestRunner, suite: BridgeSuite, probe: Path) -> None:
        for subject in self.subjects:
            progress(f"checking {subject.name}: {self.probe_name}, then the suite")
            self.check_probe(runner, subject, probe)
            runner.run_passing(subject, suite.directory, suite.tests)

    def _notes(self, suite: BridgeSuite) -> list[str]:
        return [
            suite.note() + self.suite_aside,
            *(f"subject '{s.name}': {s.command()}" for s in self.subjects),
            self.checks_note,
            WALL_TIME_NOTE,
        ]
