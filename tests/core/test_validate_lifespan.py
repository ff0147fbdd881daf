"""The ``lifespan`` checker: each rule kept by one conversation, broken by another."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from asgiref_core.validate import ASGIProtocolError, Checker, check_scope

Step = tuple[str, Any]
RETURN: Step = ("return", None)
SCOPE = {
    "type": "lifespan",
    "asgi": {"version": "3.0", "spec_version": "2.0"},
    "state": {},
}


def recv(kind: str) -> Step:
    return ("receive", {"type": kind})


def send(kind: str, **keys: Any) -> Step:
    return ("send", {"type": kind, **keys})


def run(checker: Checker, steps: list[Step]) -> None:
    for direction, message in steps:
        if direction == "receive":
            checker.received(message)
        elif direction == "send":
            checker.sent(message)
        else:
            checker.returned()


STARTUP = recv("lifespan.startup")
SHUTDOWN = recv("lifespan.shutdown")
STARTED = send("lifespan.startup.complete")
STOPPED = send("lifespan.shutdown.complete")

CASES: dict[str, tuple[list[Step], list[Step]]] = {
    "lifespan.startup.order": (
        [STARTUP, STARTED],
        [STARTUP, STARTED, STARTUP],
    ),
    "lifespan.shutdown.order": (
        [STARTUP, STARTED, SHUTDOWN, STOPPED],
        [SHUTDOWN],
    ),
    "lifespan.startup.complete.order": (
        [STARTUP, STARTED],
        [STARTED],
    ),
    "lifespan.startup.failed.order": (
        [STARTUP, send("lifespan.startup.failed", message="no database")],
        [STARTUP, STARTED, send("lifespan.startup.failed")],
    ),
    "lifespan.startup.failed.message": (
        [STARTUP, send("lifespan.startup.failed")],
        [STARTUP, send("lifespan.startup.failed", message=None)],
    ),
    "lifespan.shutdown.complete.order": (
        [STARTUP, STARTED, SHUTDOWN, STOPPED, RETURN],
        [STARTUP, STARTED, STOPPED],
    ),
    "lifespan.shutdown.failed.order": (
        [STARTUP, STARTED, SHUTDOWN, send("lifespan.shutdown.failed", message="")],
        [STARTUP, STARTED, SHUTDOWN, STOPPED, send("lifespan.shutdown.failed")],
    ),
    "lifespan.shutdown.failed.message": (
        [STARTUP, STARTED, SHUTDOWN, send("lifespan.shutdown.failed", message="x")],
        [STARTUP, STARTED, SHUTDOWN, send("lifespan.shutdown.failed", message=["x"])],
    ),
    "lifespan.unknown_message": (
        [STARTUP, STARTED],
        [STARTUP, send("lifespan.startup.done")],
    ),
    "lifespan.returned": (
        [STARTUP, STARTED, SHUTDOWN, STOPPED, RETURN],
        [STARTUP, RETURN],
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_kept(rule: str) -> None:
    checker = check_scope(SCOPE)
    run(checker, CASES[rule][0])
    assert checker.violations == []


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_broken(rule: str) -> None:
    steps = CASES[rule][1]
    checker = check_scope(SCOPE)
    run(checker, steps[:-1])
    with pytest.raises(ASGIProtocolError) as caught:
        run(checker, steps[-1:])
    assert caught.value.rule == rule
    assert checker.violations == [caught.value]


def test_every_documented_lifespan_rule_has_cases() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "validate.md"
    text = page.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(lifespan\.[a-z_.]+)`", text, re.MULTILINE))
    assert documented == set(CASES)


@pytest.mark.parametrize(
    "steps",
    [
        [],  # returned at once: nothing was asked of it
        [STARTUP, STARTED],  # returned after startup: the server has its answer
        [STARTUP, send("lifespan.startup.failed")],
        [STARTUP, STARTED, SHUTDOWN, send("lifespan.shutdown.failed")],
    ],
)
def test_returning_is_fine_unless_an_answer_is_due(steps: list[Step]) -> None:
    checker = check_scope(SCOPE)
    run(checker, [*steps, RETURN])
    assert checker.violations == []


@pytest.mark.parametrize(
    ("steps", "event"),
    [
        ([STARTUP], "'lifespan.startup'"),
        ([STARTUP, STARTED, SHUTDOWN], "'lifespan.shutdown'"),
    ],
)
def test_returning_while_the_server_waits(steps: list[Step], event: str) -> None:
    checker = check_scope(SCOPE)
    run(checker, steps)
    with pytest.raises(ASGIProtocolError) as caught:
        checker.returned()
    error = caught.value
    assert error.rule == "lifespan.returned"
    assert error.direction == "return"
    assert f"returned after receiving {event} without answering it" in str(error)
    assert "should raise instead" in error.expected


def test_an_early_answer_changes_no_state() -> None:
    checker = check_scope(SCOPE)
    with pytest.raises(
        ASGIProtocolError, match=r"before 'lifespan\.startup' was received"
    ):
        checker.sent({"type": "lifespan.startup.complete"})
    # The real answer, once startup arrives, is not a second answer.
    run(checker, [STARTUP, STARTED, SHUTDOWN, STOPPED, RETURN])
    assert len(checker.violations) == 1


def test_a_repeated_answer_names_the_event() -> None:
    checker = check_scope(SCOPE)
    run(checker, [STARTUP, STARTED])
    with pytest.raises(ASGIProtocolError) as caught:
        checker.sent({"type": "lifespan.startup.failed", "message": "late"})
    assert (
        caught.value.problem
        == "sent after 'lifespan.startup' had already been answered"
    )
