"""The ``websocket`` checker: each rule kept by one conversation, broken by another."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from asgiref_core.validate import ASGIProtocolError, Checker, check_scope

Step = tuple[str, Any]
RETURN: Step = ("return", None)


def ws_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/chat",
        "raw_path": b"/chat",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.com")],
        "client": ["127.0.0.1", 50000],
        "server": ["127.0.0.1", 8000],
        "subprotocols": ["chat.v2", "chat.v1"],
        "extensions": {"websocket.http.response": {}},
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
    checker = check_scope(scope)
    run(checker, steps[:-1])
    assert checker.violations == []
    with pytest.raises(ASGIProtocolError) as caught:
        run(checker, steps[-1:])
    error = caught.value
    assert error.rule == rule, str(error)
    assert checker.violations == [error]
    assert error.direction == steps[-1][0]
    return error


CONNECT = recv(type="websocket.connect")
ACCEPT = send(type="websocket.accept")
CLOSE = send(type="websocket.close")
TEXT_IN = recv(type="websocket.receive", text="hi")
TEXT_OUT = send(type="websocket.send", text="hi")
DISCONNECT = recv(type="websocket.disconnect", code=1000)
DENY = send(type="websocket.http.response.start", status=403, headers=[])
DENY_BODY = send(type="websocket.http.response.body", body=b"no")

CASES: dict[str, tuple[list[Step], list[Step]]] = {
    "websocket.connect.order": (
        [CONNECT, ACCEPT],
        [TEXT_IN],
    ),
    "websocket.receive.order": (
        [CONNECT, ACCEPT, TEXT_IN, CLOSE],
        [CONNECT, TEXT_IN],
    ),
    "websocket.receive.frame": (
        [CONNECT, ACCEPT, recv(type="websocket.receive", bytes=b"x", text=None)],
        [CONNECT, ACCEPT, recv(type="websocket.receive", bytes=b"x", text="x")],
    ),
    "websocket.receive.bytes": (
        [CONNECT, ACCEPT, recv(type="websocket.receive", bytes=b"\x00")],
        [CONNECT, ACCEPT, recv(type="websocket.receive", bytes=bytearray(b"\x00"))],
    ),
    "websocket.receive.text": (
        [CONNECT, ACCEPT, recv(type="websocket.receive", bytes=None, text="")],
        [CONNECT, ACCEPT, recv(type="websocket.receive", text=b"hi")],
    ),
    "websocket.disconnect.code": (
        [CONNECT, recv(type="websocket.disconnect", code=1005)],
        [CONNECT, recv(type="websocket.disconnect")],
    ),
    "websocket.disconnect.reason": (
        [CONNECT, recv(type="websocket.disconnect", code=1000, reason="bye")],
        [CONNECT, recv(type="websocket.disconnect", code=1000, reason=b"bye")],
    ),
    "websocket.accept.order": (
        [CONNECT, ACCEPT],
        [CONNECT, ACCEPT, ACCEPT],
    ),
    "websocket.accept.subprotocol": (
        [CONNECT, send(type="websocket.accept", subprotocol="chat.v1")],
        [CONNECT, send(type="websocket.accept", subprotocol="chat.v3")],
    ),
    "websocket.accept.headers": (
        [CONNECT, send(type="websocket.accept", headers=[(b"x-server", b"1")])],
        [
            CONNECT,
            send(type="websocket.accept", headers=[(b"sec-websocket-protocol", b"a")]),
        ],
    ),
    "websocket.send.order": (
        [CONNECT, ACCEPT, TEXT_OUT, CLOSE],
        [CONNECT, TEXT_OUT],
    ),
    "websocket.send.frame": (
        [CONNECT, ACCEPT, send(type="websocket.send", bytes=b"x")],
        [CONNECT, ACCEPT, send(type="websocket.send")],
    ),
    "websocket.send.bytes": (
        [CONNECT, ACCEPT, send(type="websocket.send", bytes=b"", text=None)],
        [CONNECT, ACCEPT, send(type="websocket.send", bytes=memoryview(b"x"))],
    ),
    "websocket.send.text": (
        [CONNECT, ACCEPT, send(type="websocket.send", text="é")],
        [CONNECT, ACCEPT, send(type="websocket.send", text=42)],
    ),
    "websocket.close.order": (
        [CONNECT, ACCEPT, CLOSE],
        [CONNECT, ACCEPT, CLOSE, CLOSE],
    ),
    "websocket.close.code": (
        [CONNECT, ACCEPT, send(type="websocket.close", code=4000)],
        [CONNECT, ACCEPT, send(type="websocket.close", code=1006)],
    ),
    "websocket.close.reason": (
        [CONNECT, ACCEPT, send(type="websocket.close", code=1000, reason="done")],
        [CONNECT, ACCEPT, send(type="websocket.close", reason="x" * 124)],
    ),
    "websocket.http.response.start.extension": (
        [CONNECT, DENY],
        [CONNECT, ("scope", {"extensions": {}}), DENY],
    ),
    "websocket.http.response.start.order": (
        [CONNECT, DENY, DENY_BODY],
        [CONNECT, ACCEPT, DENY],
    ),
    "websocket.http.response.start.status": (
        [CONNECT, send(type="websocket.http.response.start", status=401)],
        [CONNECT, send(type="websocket.http.response.start", status=b"401")],
    ),
    "websocket.http.response.start.headers": (
        [
            CONNECT,
            send(type="websocket.http.response.start", status=403, headers=[]),
        ],
        [
            CONNECT,
            send(
                type="websocket.http.response.start", status=403, headers=[("a", "b")]
            ),
        ],
    ),
    "websocket.http.response.body.extension": (
        [CONNECT, DENY, DENY_BODY],
        [CONNECT, ("scope", {"extensions": None}), DENY_BODY],
    ),
    "websocket.http.response.body.order": (
        [
            CONNECT,
            DENY,
            send(type="websocket.http.response.body", more_body=True),
            DENY_BODY,
        ],
        [CONNECT, DENY, DENY_BODY, DENY_BODY],
    ),
    "websocket.http.response.body.body": (
        [CONNECT, DENY, send(type="websocket.http.response.body")],
        [CONNECT, DENY, send(type="websocket.http.response.body", body="no")],
    ),
    "websocket.http.response.body.more_body": (
        [CONNECT, DENY, send(type="websocket.http.response.body", more_body=False)],
        [CONNECT, DENY, send(type="websocket.http.response.body", more_body=None)],
    ),
    "websocket.unknown_message": (
        [CONNECT, ACCEPT, TEXT_OUT],
        [CONNECT, ACCEPT, send(type="websocket.ping")],
    ),
    "websocket.returned": (
        [CONNECT, ACCEPT, TEXT_IN, TEXT_OUT, CLOSE, RETURN],
        [CONNECT, ACCEPT, TEXT_OUT, RETURN],
    ),
}


def _prepare(steps: list[Step]) -> tuple[dict[str, Any], list[Step]]:
    scope = ws_scope()
    prepared: list[Step] = []
    for direction, message in steps:
        if direction == "scope":
            scope.update(message)
        else:
            prepared.append((direction, message))
    return scope, prepared


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_kept(rule: str) -> None:
    scope, steps = _prepare(CASES[rule][0])
    checker = check_scope(scope)
    run(checker, steps)
    assert checker.violations == []


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_broken(rule: str) -> None:
    scope, steps = _prepare(CASES[rule][1])
    assert_breaks(scope, steps, rule)


def test_every_documented_websocket_rule_has_cases() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "validate.md"
    text = page.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(websocket\.[a-z_.]+)`", text, re.MULTILINE))
    assert documented == set(CASES)


# -- details --------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1014, 3000, 4999])
def test_close_codes_an_application_may_send(code: int) -> None:
    checker = check_scope(ws_scope())
    run(checker, [CONNECT, ACCEPT, send(type="websocket.close", code=code)])
    assert checker.violations == []


@pytest.mark.parametrize(
    "code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, "1000"]
)
def test_close_codes_an_application_may_not_send(code: object) -> None:
    steps = [CONNECT, ACCEPT, send(type="websocket.close", code=code)]
    assert_breaks(ws_scope(), steps, "websocket.close.code")


def test_close_reason_limit_is_in_utf8_bytes() -> None:
    fits = "é" * 61  # 122 bytes
    too_long = "é" * 62  # 124 bytes, 62 characters
    checker = check_scope(ws_scope())
    run(checker, [CONNECT, ACCEPT, send(type="websocket.close", reason=fits)])
    steps = [CONNECT, ACCEPT, send(type="websocket.close", reason=too_long)]
    error = assert_breaks(ws_scope(), steps, "websocket.close.reason")
    assert "124 bytes" in error.problem


def test_a_close_before_reading_connect_refuses_the_connection() -> None:
    checker = check_scope(ws_scope())
    run(checker, [CLOSE, CONNECT, DISCONNECT, RETURN])
    assert checker.violations == []


def test_an_accept_before_reading_connect_is_reported() -> None:
    error = assert_breaks(ws_scope(), [ACCEPT], "websocket.accept.order")
    assert error.problem == "sent before 'websocket.connect' was received"


def test_frames_after_a_close_by_the_application_may_still_arrive() -> None:
    checker = check_scope(ws_scope())
    run(checker, [CONNECT, ACCEPT, CLOSE, TEXT_IN, DISCONNECT])
    assert checker.violations == []


def test_nothing_is_received_after_disconnect() -> None:
    steps = [CONNECT, ACCEPT, DISCONNECT, TEXT_IN]
    error = assert_breaks(ws_scope(), steps, "websocket.receive.order")
    assert "after 'websocket.disconnect'" in error.problem


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([CONNECT, CLOSE, TEXT_OUT], "sent after 'websocket.close'"),
        ([CONNECT, DENY, TEXT_OUT], "sent after 'websocket.http.response.start'"),
        (
            [CONNECT, DENY, DENY_BODY, CLOSE],
            "sent after the denial response was complete",
        ),
    ],
)
def test_nothing_but_the_denial_after_it_starts(
    steps: list[Step], problem: str
) -> None:
    rule = f"{steps[-1][1]['type']}.order"
    error = assert_breaks(ws_scope(), steps, rule)
    assert error.problem == problem


def test_no_subprotocol_may_be_chosen_when_none_was_offered() -> None:
    scope = ws_scope()
    del scope["subprotocols"]
    steps = [CONNECT, send(type="websocket.accept", subprotocol="chat.v1")]
    error = assert_breaks(scope, steps, "websocket.accept.subprotocol")
    assert "was not offered" in error.problem
    assert "[]" in error.problem


def test_subprotocol_must_be_a_str() -> None:
    steps = [CONNECT, send(type="websocket.accept", subprotocol=b"chat.v1")]
    assert_breaks(ws_scope(), steps, "websocket.accept.subprotocol")


@pytest.mark.parametrize(
    ("spec_version", "fine"), [("2.0", False), ("2.1", True), (None, True)]
)
def test_accept_headers_need_spec_2_1(spec_version: str | None, fine: bool) -> None:
    asgi = {"version": "3.0"}
    if spec_version is not None:
        asgi["spec_version"] = spec_version
    scope = ws_scope(asgi=asgi)
    steps = [CONNECT, send(type="websocket.accept", headers=[(b"x-a", b"1")])]
    if fine:
        checker = check_scope(scope)
        run(checker, steps)
        assert checker.violations == []
    else:
        error = assert_breaks(scope, steps, "websocket.accept.headers")
        assert "needs spec version 2.1" in error.problem


@pytest.mark.parametrize(
    ("spec_version", "fine"), [("2.2", False), ("2.3", True), ("2.10", True)]
)
def test_close_reason_needs_spec_2_3(spec_version: str, fine: bool) -> None:
    scope = ws_scope(asgi={"version": "3.0", "spec_version": spec_version})
    steps = [CONNECT, ACCEPT, send(type="websocket.close", reason="bye")]
    if fine:
        checker = check_scope(scope)
        run(checker, steps)
        assert checker.violations == []
    else:
        assert_breaks(scope, steps, "websocket.close.reason")


def test_empty_headers_and_reason_are_fine_for_an_old_server() -> None:
    scope = ws_scope(asgi={"version": "3.0", "spec_version": "2.0"})
    checker = check_scope(scope)
    run(
        checker,
        [
            CONNECT,
            send(type="websocket.accept", headers=[]),
            send(type="websocket.close", reason=""),
        ],
    )
    assert checker.violations == []


@pytest.mark.parametrize(
    ("steps", "detail"),
    [
        ([], "never answered"),
        ([CONNECT], "never answered"),
        ([CONNECT, ACCEPT], "accepted and never closed"),
        ([CONNECT, DENY], "final body was never sent"),
    ],
)
def test_returning_early_says_what_was_missing(steps: list[Step], detail: str) -> None:
    error = assert_breaks(ws_scope(), [*steps, RETURN], "websocket.returned")
    assert detail in error.problem


@pytest.mark.parametrize(
    "steps",
    [
        [CONNECT, CLOSE],
        [CONNECT, DENY, DENY_BODY],
        [CONNECT, ACCEPT, DISCONNECT],
        [CONNECT, DISCONNECT],
    ],
)
def test_returning_is_fine_once_closed_denied_or_disconnected(
    steps: list[Step],
) -> None:
    checker = check_scope(ws_scope())
    run(checker, [*steps, RETURN])
    assert checker.violations == []


def test_after_a_bad_accept_frames_are_checked_as_accepted() -> None:
    checker = check_scope(ws_scope())
    checker.received({"type": "websocket.connect"})
    with pytest.raises(ASGIProtocolError):
        checker.sent({"type": "websocket.accept", "subprotocol": "nope"})
    checker.sent({"type": "websocket.send", "text": "still open"})
    checker.received({"type": "websocket.receive", "bytes": b"x"})
    checker.sent({"type": "websocket.close"})
    checker.returned()
    assert len(checker.violations) == 1


def test_a_disconnect_before_connect_is_reported_but_counts() -> None:
    checker = check_scope(ws_scope())
    with pytest.raises(ASGIProtocolError, match=r"rule websocket\.connect\.order"):
        checker.received({"type": "websocket.disconnect", "code": 1006})
    checker.returned()
    assert len(checker.violations) == 1
