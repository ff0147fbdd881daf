"""Each example under examples/ passes its own test suite, run as a user would.

Every example is a project of its own, with its own pytest.ini, so its suite
runs in a fresh interpreter from its directory: the plugin is found through
its entry point, exactly as after ``pip install pytest-asgiref``. The number
of tests that pass is pinned, so that a suite collecting nothing (or less
than it should) fails here too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Each example's directory and how many tests its suite has.
EXPECTED = {
    "raw_asgi": 21,
    "starlette_app": 16,
    "flask_app": 17,
    "channels_chat": 15,
}

# Seconds one example's run may take before it is killed; each finishes in a
# few seconds, and pytest's own time limit below leaves room for this one.
RUN_LIMIT = 90

pytestmark = pytest.mark.timeout(RUN_LIMIT + 30)

_OUTCOME = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)"
)


def _child_environment() -> dict[str, str]:
    # The example's suite must see none of this run's pytest settings
    # (PYTEST_ADDOPTS, xdist's worker variables, PYTEST_CURRENT_TEST...).
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PYTEST_")
    }
    # Leave no __pycache__ directories in the examples.
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


def outcomes(output: str) -> dict[str, int]:
    """The counts of pytest's summary line: the last line naming a duration."""
    summary = ""
    for line in output.splitlines():
        if re.search(r" in \d+(\.\d+)?s\b", line):
            summary = line
    counts: dict[str, int] = {}
    for number, word in _OUTCOME.findall(summary):
        key = {"error": "errors", "warning": "warnings"}.get(word, word)
        counts[key] = int(number)
    return counts


def test_outcomes_parses_pytest_summaries() -> None:
    assert outcomes("....\n21 passed in 0.26s\n") == {"passed": 21}
    assert outcomes("1 failed, 3 passed, 1 error, 2 warnings in 1.50s") == {
        "failed": 1,
        "passed": 3,
        "errors": 1,
        "warnings": 2,
    }
    assert outcomes("no tests ran in 0.01s") == {}
    assert outcomes("") == {}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_suite_passes(example: str) -> None:
    directory = EXAMPLES / example
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    try:
        result = subprocess.run(
            command,
            cwd=directory,
            env=_child_environment(),
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = error.stdout or b""
        text = output.decode() if isinstance(output, bytes) else output
        pytest.fail(
            f"examples/{example}: the suite ran for more than {RUN_LIMIT}s and "
            f"was killed; its output so far:\n{text}"
        )
    output = result.stdout + result.stderr
    counts = outcomes(result.stdout)
    expected = {"passed": EXPECTED[example]}
    assert (result.returncode, counts) == (0, expected), (
        f"examples/{example}: expected {expected}, got {counts or 'no summary'} "
        f"(exit code {result.returncode}); output:\n{output}"
    )
