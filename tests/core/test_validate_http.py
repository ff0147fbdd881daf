"""The ``http`` checker: each rule kept by one conversation and broken by another.

A case is a list of steps, ``("receive", message)``, ``("send", message)`` or
``RETURN``. The passing conversation must go through without a violation; the
failing one must go through until its last step, which must break exactly the
named rule.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from asgiref_core.validate import ASGIProtocolError, Checker, check_scope

Step = tuple[str, Any]
RETURN: Step = ("return", None)

ALL_EXTENSIONS = {
    name: {}
    for name in (
        "http.response.trailers",
        "http.response.push",
        "http.response.zerocopysend",
        "http.response.pathsend",
        "http.response.early_hint",
        "http.response.debug",
    )
}


def http_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.com")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": ALL_EXTENSIONS,
    }
    scope.update(overrides)
    return scope


def recv(**message: Any) -> Step:
    return ("receive", message)


def send(**message: Any) -> Step:
    return ("send", message)


def run(checker: Checker, steps: list[Step]) -> None:
    for direction, message in steps:
        if direction == "receive":
            checker.received(message)
        elif direction == "send":
            checker.sent(message)
        else:
            checker.returned()


def assert_breaks(
    scope: dict[str, Any], steps: list[Step], rule: str
) -> ASGIProtocolError:
    """Run ``steps``; only the last may fail, and it must break ``rule``."""
    checker = check_scope(scope)
    run(checker, steps[:-1])
    assert checker.violations == []
    with pytest.raises(ASGIProtocolError) as caught:
        run(checker, steps[-1:])
    error = caught.value
    assert error.rule == rule, str(error)
    assert checker.violations == [error]
    assert error.direction == steps[-1][0]
    assert f"[rule {rule}]" in str(error)
    return error


START = send(
    type="http.response.start", status=200, headers=[(b"content-type", b"text/plain")]
)
BODY = send(type="http.response.body", body=b"hello")
MORE = send(type="http.response.body", body=b"hel", more_body=True)
REQUEST = recv(type="http.request", body=b"", more_body=False)
TRAILERS_START = send(type="http.response.start", status=200, trailers=True)
TRAILERS = send(type="http.response.trailers", headers=[(b"x-checksum", b"1")])
PUSH = send(type="http.response.push", path="/style.css", headers=[])
EXISTING_FILE = os.path.abspath(__file__)

# rule -> (a conversation that keeps it, one whose last step breaks it)
CASES: dict[str, tuple[list[Step], list[Step]]] = {
    "http.request.order": (
        [
            recv(type="http.request", body=b"a", more_body=True),
            REQUEST,
            recv(type="http.disconnect"),
        ],
        [REQUEST, REQUEST],
    ),
    "http.request.body": (
        [recv(type="http.request", body=b"data")],
        [recv(type="http.request", body=bytearray(b"data"))],
    ),
    "http.request.more_body": (
        [recv(type="http.request", more_body=False)],
        [recv(type="http.request", more_body="no")],
    ),
    "http.response.start.order": (
        [REQUEST, START, BODY],
        [START, START],
    ),
    "http.response.start.status": (
        [send(type="http.response.start", status=404)],
        [send(type="http.response.start", status="200")],
    ),
    "http.response.start.headers": (
        [
            send(
                type="http.response.start",
                status=200,
                headers=[[b"set-cookie", b"a=1"]],
            )
        ],
        [
            send(
                type="http.response.start",
                status=200,
                headers=[(b":status", b"200")],
            )
        ],
    ),
    "http.response.start.trailers": (
        [send(type="http.response.start", status=200, trailers=False)],
        [send(type="http.response.start", status=200, trailers="yes")],
    ),
    "http.response.body.order": (
        [START, MORE, BODY],
        [START, BODY, BODY],
    ),
    "http.response.body.body": (
        [START, send(type="http.response.body")],
        [START, send(type="http.response.body", body="text")],
    ),
    "http.response.body.more_body": (
        [START, send(type="http.response.body", more_body=True)],
        [START, send(type="http.response.body", more_body=1)],
    ),
    "http.response.trailers.order": (
        [TRAILERS_START, BODY, TRAILERS],
        [START, BODY, TRAILERS],
    ),
    "http.response.trailers.headers": (
        [TRAILERS_START, BODY, send(type="http.response.trailers", headers=[])],
        [TRAILERS_START, BODY, send(type="http.response.trailers")],
    ),
    "http.response.trailers.more_trailers": (
        [
            TRAILERS_START,
            BODY,
            send(type="http.response.trailers", headers=[], more_trailers=True),
            TRAILERS,
        ],
        [
            TRAILERS_START,
            BODY,
            send(type="http.response.trailers", headers=[], more_trailers=None),
        ],
    ),
    "http.response.push.extension": (
        [START, PUSH],
        [START, ("scope", {"extensions": {}}), PUSH],
    ),
    "http.response.push.order": (
        [START, PUSH, BODY],
        [START, BODY, PUSH],
    ),
    "http.response.push.path": (
        [START, PUSH],
        [START, send(type="http.response.push", path=b"/style.css", headers=[])],
    ),
    "http.response.push.headers": (
        [
            START,
            send(type="http.response.push", path="/a", headers=[(b"accept", b"*/*")]),
        ],
        [
            START,
            send(type="http.response.push", path="/a", headers=[(b":authority", b"x")]),
        ],
    ),
    "http.response.zerocopysend.extension": (
        [START, send(type="http.response.zerocopysend", file="FILE")],
        [
            START,
            ("scope", {"extensions": None}),
            send(type="http.response.zerocopysend", file="FILE"),
        ],
    ),
    "http.response.zerocopysend.order": (
        [
            START,
            send(type="http.response.zerocopysend", file="FILE", more_body=True),
            BODY,
        ],
        [send(type="http.response.zerocopysend", file="FILE")],
    ),
    "http.response.zerocopysend.file": (
        [
            START,
            send(type="http.response.zerocopysend", file="FILE", offset=0, count=10),
        ],
        [START, send(type="http.response.zerocopysend", file="/etc/hostname")],
    ),
    "http.response.zerocopysend.offset": (
        [START, send(type="http.response.zerocopysend", file="FILE", offset=5)],
        [START, send(type="http.response.zerocopysend", file="FILE", offset=-1)],
    ),
    "http.response.zerocopysend.count": (
        [START, send(type="http.response.zerocopysend", file="FILE", count=None)],
        [START, send(type="http.response.zerocopysend", file="FILE", count=1.5)],
    ),
    "http.response.zerocopysend.more_body": (
        [START, send(type="http.response.zerocopysend", file="FILE", more_body=False)],
        [
            START,
            send(type="http.response.zerocopysend", file="FILE", more_body="false"),
        ],
    ),
    "http.response.pathsend.extension": (
        [START, send(type="http.response.pathsend", path=EXISTING_FILE)],
        [
            START,
            ("scope", {"extensions": {"http.response.push": {}}}),
            send(type="http.response.pathsend", path=EXISTING_FILE),
        ],
    ),
    "http.response.pathsend.order": (
        [
            START,
            send(type="http.response.pathsend", path=EXISTING_FILE),
            recv(type="http.disconnect"),
        ],
        [START, MORE, send(type="http.response.pathsend", path=EXISTING_FILE)],
    ),
    "http.response.pathsend.path": (
        [START, send(type="http.response.pathsend", path=EXISTING_FILE)],
        [START, send(type="http.response.pathsend", path="relative/file.txt")],
    ),
    "http.response.early_hint.extension": (
        [send(type="http.response.early_hint", links=[b"</a.css>; rel=preload"])],
        [
            ("scope", {"extensions": {}}),
            send(type="http.response.early_hint", links=[]),
        ],
    ),
    "http.response.early_hint.order": (
        [START, send(type="http.response.early_hint", links=[]), BODY],
        [START, BODY, send(type="http.response.early_hint", links=[])],
    ),
    "http.response.early_hint.links": (
        [send(type="http.response.early_hint", links=(b"</a.css>; rel=preload",))],
        [send(type="http.response.early_hint", links=["</a.css>; rel=preload"])],
    ),
    "http.response.debug.extension": (
        [send(type="http.response.debug", info={"template": "index.html"})],
        [("scope", {"extensions": {}}), send(type="http.response.debug", info={})],
    ),
    "http.response.debug.order": (
        [send(type="http.response.debug", info={}), START, BODY],
        [START, send(type="http.response.debug", info={})],
    ),
    "http.response.debug.info": (
        [send(type="http.response.debug", info={"context": {}})],
        [send(type="http.response.debug", info=[("context", {})])],
    ),
    "http.unknown_message": (
        [REQUEST, START, BODY],
        [send(type="http.response.flush")],
    ),
    "http.returned": (
        [REQUEST, START, BODY, RETURN],
        [REQUEST, START, MORE, RETURN],
    ),
    "message.dict": (
        [("send", {"type": "http.response.start", "status": 200})],
        [("send", [("type", "http.response.start")])],
    ),
    "message.type": (
        [REQUEST],
        [("receive", {"body": b""})],
    ),
}


def _prepare(steps: list[Step], file: Any) -> tuple[dict[str, Any], list[Step]]:
    """The scope for ``steps``, and the steps with the placeholders filled in."""
    scope = http_scope()
    prepared: list[Step] = []
    for direction, message in steps:
        if direction == "scope":
            scope.update(message)
        elif isinstance(message, dict) and message.get("file") == "FILE":
            prepared.append((direction, {**message, "file": file}))
        else:
            prepared.append((direction, message))
    return scope, prepared


@pytest.fixture
def open_file() -> Any:
    with tempfile.TemporaryFile() as file:
        yield file


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_kept(rule: str, open_file: Any) -> None:
    scope, steps = _prepare(CASES[rule][0], open_file)
    checker = check_scope(scope)
    run(checker, steps)
    assert checker.violations == []


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_broken(rule: str, open_file: Any) -> None:
    scope, steps = _prepare(CASES[rule][1], open_file)
    assert_breaks(scope, steps, rule)


def test_every_documented_http_and_message_rule_has_cases() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "validate.md"
    text = page.read_text(encoding="utf-8")
    pattern = r"^\| `((?:http|message)\.[a-z_.]+)`"
    documented = set(re.findall(pattern, text, re.MULTILINE))
    assert documented == set(CASES)


# -- details the table does not show ---------------------------------------------


def test_error_text_matches_the_documented_shape() -> None:
    error = assert_breaks(
        http_scope(),
        [send(type="http.response.start", status="200")],
        "http.response.start.status",
    )
    first_line = str(error).splitlines()[0]
    assert first_line == (
        "sent 'http.response.start' message: 'status' must be int (got '200'); "
        "expected an int HTTP status code such as 200 [rule http.response.start.status]"
    )
    assert error.expected == "an int HTTP status code such as 200"
    assert error.problem == "'status' must be int (got '200')"
    assert error.message == {"type": "http.response.start", "status": "200"}


def test_a_long_body_is_abbreviated_in_the_text() -> None:
    steps = [START, BODY, send(type="http.response.body", body=b"x" * 100_000)]
    error = assert_breaks(http_scope(), steps, "http.response.body.order")
    text = str(error)
    assert len(text) < 600
    assert "(100000 bytes)" in text
    assert "sent after the response was complete" in text


@pytest.mark.parametrize(
    ("status", "fine"),
    [
        (200, True),
        (599, True),
        (100, True),
        (99, False),
        (600, False),
        (True, False),
        (200.0, False),
    ],
)
def test_status_range_and_type(status: object, fine: bool) -> None:
    checker = check_scope(http_scope())
    if fine:
        checker.sent({"type": "http.response.start", "status": status})
    else:
        with pytest.raises(ASGIProtocolError, match=r"rule http.response.start.status"):
            checker.sent({"type": "http.response.start", "status": status})


def test_an_int_enum_status_is_an_int() -> None:
    from http import HTTPStatus

    checker = check_scope(http_scope())
    run(
        checker,
        [("send", {"type": "http.response.start", "status": HTTPStatus.OK}), BODY],
    )
    assert checker.violations == []


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ("content-type: text/plain", "not str"),
        ({b"content-type": b"text/plain"}, "not dict"),
        ([(b"content-type",)], "two-item"),
        ([(b"content-type", "text/plain")], "must be bytes"),
        ([(bytearray(b"a"), b"b")], "must be bytes"),
        ([(b"", b"b")], "must not be empty"),
        ([(b":status", b"200")], "pseudo headers"),
        (42, "iterable"),
    ],
)
def test_bad_response_headers(headers: object, problem: str) -> None:
    checker = check_scope(http_scope())
    with pytest.raises(
        ASGIProtocolError, match=r"rule http.response.start.headers"
    ) as caught:
        checker.sent({"type": "http.response.start", "status": 200, "headers": headers})
    assert problem in caught.value.problem


def test_mixed_case_response_header_names_are_accepted() -> None:
    # Django's ASGIHandler sends names as written (b"Content-Type"); servers
    # accept them, so the checker does too (a documented interpretation).
    checker = check_scope(http_scope())
    headers = [(b"Content-Type", b"text/plain"), (b"X-Token", b"1")]
    checker.sent({"type": "http.response.start", "status": 200, "headers": headers})
    assert checker.violations == []


def test_headers_in_any_reiterable_container_are_checked() -> None:
    checker = check_scope(http_scope())
    headers = {b":status": b"200"}.items()
    with pytest.raises(ASGIProtocolError, match=r"pseudo headers"):
        checker.sent({"type": "http.response.start", "status": 200, "headers": headers})


def test_a_one_shot_header_iterator_is_not_consumed() -> None:
    checker = check_scope(http_scope())
    headers = iter([(b"content-type", b"text/plain")])
    checker.sent({"type": "http.response.start", "status": 200, "headers": headers})
    assert list(headers) == [(b"content-type", b"text/plain")]


def test_byte_subclasses_count_as_bytes() -> None:
    class Body(bytes):
        pass

    checker = check_scope(http_scope())
    run(checker, [START, ("send", {"type": "http.response.body", "body": Body(b"x")})])
    assert checker.violations == []


def test_extra_keys_are_allowed() -> None:
    checker = check_scope(http_scope())
    run(
        checker,
        [
            recv(type="http.request", body=b"", extra="x"),
            START,
            send(type="http.response.body", future_key=1),
        ],
    )
    assert checker.violations == []


def test_the_unknown_message_error_lists_only_advertised_extensions() -> None:
    scope = http_scope(extensions={"http.response.pathsend": {}})
    error = assert_breaks(
        scope, [send(type="http.response.flush")], "http.unknown_message"
    )
    assert (
        "'http.response.start', 'http.response.body', 'http.response.pathsend'"
        in error.expected
    )
    assert "push" not in error.expected
    error = assert_breaks(
        http_scope(), [recv(type="http.response.start")], "http.unknown_message"
    )
    assert error.expected == "one of 'http.request', 'http.disconnect'"


def test_a_str_subclass_type_is_dispatched() -> None:
    class Kind(str):
        pass

    checker = check_scope(http_scope())
    with pytest.raises(ASGIProtocolError, match=r"rule http\.response\.body\.order"):
        checker.sent({"type": Kind("http.response.body")})


def test_a_non_str_type_is_reported() -> None:
    checker = check_scope(http_scope())
    with pytest.raises(
        ASGIProtocolError, match=r"'type' must be a str|rule message.type"
    ) as caught:
        checker.sent({"type": ["http.response.start"]})
    assert caught.value.rule == "message.type"


@pytest.mark.parametrize(
    ("steps", "detail"),
    [
        ([], "'http.response.start' was never sent"),
        ([START], "no body followed"),
        ([START, MORE], "more_body True"),
        ([TRAILERS_START, BODY], "trailers' were never sent"),
    ],
)
def test_returning_early_says_what_was_missing(steps: list[Step], detail: str) -> None:
    error = assert_breaks(http_scope(), [*steps, RETURN], "http.returned")
    assert detail in str(error)
    assert str(error).startswith(
        "application: returned without completing the response"
    )
    assert error.message is None


def test_returning_after_a_disconnect_is_fine() -> None:
    checker = check_scope(http_scope())
    run(checker, [REQUEST, recv(type="http.disconnect"), RETURN])
    assert checker.violations == []


def test_disconnect_may_repeat_but_requests_stop() -> None:
    checker = check_scope(http_scope())
    run(checker, [recv(type="http.disconnect"), recv(type="http.disconnect")])
    with pytest.raises(ASGIProtocolError, match=r"after 'http\.disconnect'"):
        checker.received({"type": "http.request"})


def test_a_trailers_response_finishes_with_the_last_trailers() -> None:
    checker = check_scope(http_scope())
    run(
        checker,
        [
            TRAILERS_START,
            MORE,
            BODY,
            send(type="http.response.trailers", headers=[], more_trailers=True),
            TRAILERS,
            RETURN,
        ],
    )
    assert checker.violations == []
    with pytest.raises(ASGIProtocolError, match=r"after the response was complete"):
        checker.sent({"type": "http.response.trailers", "headers": []})


def test_a_body_is_refused_while_trailers_are_due() -> None:
    error = assert_breaks(
        http_scope(), [TRAILERS_START, BODY, BODY], "http.response.body.order"
    )
    assert "trailers' were due" in error.problem


def test_trailers_announced_without_the_extension() -> None:
    scope = http_scope(extensions={})
    error = assert_breaks(scope, [TRAILERS_START], "http.response.start.trailers")
    assert "did not advertise" in error.problem


def test_pathsend_completes_the_response() -> None:
    checker = check_scope(http_scope())
    run(
        checker,
        [START, send(type="http.response.pathsend", path=EXISTING_FILE), RETURN],
    )
    assert checker.violations == []


def test_debug_only_once() -> None:
    steps = [
        send(type="http.response.debug", info={}),
        send(type="http.response.debug", info={}),
    ]
    error = assert_breaks(http_scope(), steps, "http.response.debug.order")
    assert error.problem == "sent twice"


# -- carrying on after a violation -----------------------------------------------


def test_after_a_bad_start_the_body_is_still_checked_in_order() -> None:
    checker = check_scope(http_scope())
    with pytest.raises(ASGIProtocolError):
        checker.sent({"type": "http.response.start", "status": "200"})
    # The start counted: a body may follow, and finishes the response.
    checker.sent({"type": "http.response.body", "body": b"x"})
    checker.returned()
    assert [error.rule for error in checker.violations] == [
        "http.response.start.status"
    ]


def test_a_body_before_the_start_counts_as_starting_the_response() -> None:
    checker = check_scope(http_scope())
    with pytest.raises(ASGIProtocolError, match=r"before 'http\.response\.start'"):
        checker.sent({"type": "http.response.body", "body": b"x", "more_body": True})
    checker.sent({"type": "http.response.body", "body": b"y"})
    checker.returned()
    assert len(checker.violations) == 1


def test_a_bad_more_body_counts_by_truthiness() -> None:
    checker = check_scope(http_scope())
    checker.sent({"type": "http.response.start", "status": 200})
    with pytest.raises(ASGIProtocolError):
        checker.sent({"type": "http.response.body", "more_body": 1})
    checker.sent({"type": "http.response.body"})
    checker.returned()
    assert len(checker.violations) == 1


def test_an_unadvertised_extension_message_changes_no_state() -> None:
    checker = check_scope(http_scope(extensions={}))
    checker.sent({"type": "http.response.start", "status": 200})
    with pytest.raises(ASGIProtocolError):
        checker.sent({"type": "http.response.pathsend", "path": EXISTING_FILE})
    checker.sent({"type": "http.response.body"})
    assert len(checker.violations) == 1


def test_violations_accumulate_in_order() -> None:
    checker = check_scope(http_scope())
    for message in ({"type": "nope"}, {"type": "http.response.body", "body": 1}):
        with pytest.raises(ASGIProtocolError):
            checker.sent(message)
    assert [error.rule for error in checker.violations] == [
        "http.unknown_message",
        "http.response.body.order",
    ]
