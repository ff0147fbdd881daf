"""``check_scope``: each scope rule, kept by one scope and broken by another."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from asgiref_core.validate import ASGIProtocolError, Checker, check_scope


def http_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [],
    }
    scope.update(overrides)
    return scope


def ws_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/",
        "headers": [],
    }
    scope.update(overrides)
    return scope


# rule -> (a scope that keeps it, a scope that breaks it)
CASES: dict[str, tuple[object, object]] = {
    "scope.dict": (http_scope(), [("type", "http")]),
    "scope.type": ({"type": "custom.protocol"}, {"type": b"http"}),
    "scope.asgi": (http_scope(), http_scope(asgi="3.0")),
    "scope.asgi.version": (
        http_scope(asgi={"version": "2.0"}),
        http_scope(asgi={"version": 3.0}),
    ),
    "scope.asgi.spec_version": (
        http_scope(asgi={"version": "3.0", "spec_version": "2.5"}),
        http_scope(asgi={"version": "3.0", "spec_version": 2.5}),
    ),
    "scope.state": (http_scope(state={"db": object()}), http_scope(state=[])),
    "scope.extensions": (
        http_scope(extensions=None),
        http_scope(extensions={"http.response.trailers": True}),
    ),
    "scope.http_version": (http_scope(http_version="2"), http_scope(http_version=1.1)),
    "scope.method": (http_scope(method="M-SEARCH"), http_scope(method="get")),
    "scope.scheme": (http_scope(scheme="https"), http_scope(scheme="")),
    "scope.path": (http_scope(path="/caf\u00e9"), http_scope(path=b"/")),
    "scope.raw_path": (http_scope(raw_path=None), http_scope(raw_path="/")),
    "scope.query_string": (
        http_scope(query_string=b"a=1"),
        http_scope(query_string="a=1"),
    ),
    "scope.root_path": (http_scope(root_path="/api"), http_scope(root_path=b"/api")),
    "scope.headers": (
        http_scope(headers=[[b"Host", b"example.com"]]),
        http_scope(headers=[(b"host", "example.com")]),
    ),
    "scope.client": (
        http_scope(client=["::1", 50000]),
        http_scope(client=["127.0.0.1", "50000"]),
    ),
    "scope.server": (
        http_scope(server=["/run/app.sock", None]),
        http_scope(server=("127.0.0.1",)),
    ),
    "scope.subprotocols": (
        ws_scope(subprotocols=("chat",)),
        ws_scope(subprotocols="chat"),
    ),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_kept(rule: str) -> None:
    check_scope(CASES[rule][0])


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_broken(rule: str) -> None:
    bad = CASES[rule][1]
    with pytest.raises(ASGIProtocolError) as caught:
        check_scope(bad)
    error = caught.value
    assert error.rule == rule, str(error)
    assert error.direction == "scope"
    assert error.message is bad
    assert str(error).startswith("scope: ")
    assert "offending scope: " in str(error)


def test_every_documented_scope_rule_has_cases() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "validate.md"
    text = page.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(scope\.[a-z_.]+)`", text, re.MULTILINE))
    assert documented == set(CASES)


def test_the_error_names_the_value_and_what_to_send() -> None:
    with pytest.raises(ASGIProtocolError) as caught:
        check_scope(http_scope(method="get"))
    text = str(caught.value)
    assert text.startswith(
        "scope: 'method' must be a non-empty uppercase str (got 'get'); "
        "expected the request method as an uppercase str, such as 'GET' "
        "[rule scope.method]"
    )


@pytest.mark.parametrize(
    ("kind", "checker_name"),
    [
        ("http", "HTTPChecker"),
        ("websocket", "WebSocketChecker"),
        ("lifespan", "LifespanChecker"),
    ],
)
def test_each_scope_type_gets_its_checker(kind: str, checker_name: str) -> None:
    scope = {"http": http_scope(), "websocket": ws_scope()}.get(
        kind, {"type": "lifespan", "asgi": {"version": "3.0"}}
    )
    checker = check_scope(scope)
    assert type(checker).__name__ == checker_name
    assert isinstance(checker, Checker)
    assert checker.scope is scope
    assert checker.violations == []


def test_an_unknown_scope_type_gets_a_permissive_checker() -> None:
    checker = check_scope({"type": "webtransport"})
    assert type(checker) is Checker
    checker.received({"type": "webtransport.connect"})
    checker.sent({"type": "anything.at.all", "payload": bytearray()})
    checker.returned()
    assert checker.violations == []
    with pytest.raises(ASGIProtocolError, match=r"rule message\.dict"):
        checker.sent("webtransport.accept")
    with pytest.raises(ASGIProtocolError, match=r"rule message\.type"):
        checker.received({"type": 1})
    assert [error.direction for error in checker.violations] == ["send", "receive"]


def test_only_the_first_scope_problem_is_raised_but_all_are_recorded() -> None:
    from asgiref_core.validate import _start

    checker, problems = _start(http_scope(method="get", path=None, headers="x"))
    assert [error.rule for error in problems] == [
        "scope.method",
        "scope.path",
        "scope.headers",
    ]
    assert checker.violations == problems
    with pytest.raises(ASGIProtocolError, match=r"rule scope\.method"):
        check_scope(http_scope(method="get", path=None))


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"asgi": None}, "scope.asgi"),
        ({"asgi": {}}, "scope.asgi.version"),
        ({"http_version": "3"}, "scope.http_version"),
        ({"method": ""}, "scope.method"),
        ({"client": "127.0.0.1:80"}, "scope.client"),
        ({"client": [1, 80]}, "scope.client"),
        ({"client": ["h", 70000]}, "scope.client"),
        ({"client": ["h", None]}, "scope.client"),
        ({"server": ["h", True]}, "scope.server"),
        ({"headers": [(b"host",)]}, "scope.headers"),
        ({"headers": {"host": "x"}}, "scope.headers"),
        ({"extensions": {1: {}}}, "scope.extensions"),
        ({"extensions": []}, "scope.extensions"),
    ],
)
def test_more_broken_http_scopes(overrides: dict[str, Any], rule: str) -> None:
    with pytest.raises(ASGIProtocolError) as caught:
        check_scope(http_scope(**overrides))
    assert caught.value.rule == rule


@pytest.mark.parametrize(
    "missing", ["http_version", "method", "path", "query_string", "headers", "asgi"]
)
def test_required_http_keys(missing: str) -> None:
    scope = http_scope()
    del scope[missing]
    with pytest.raises(ASGIProtocolError, match=r"missing") as caught:
        check_scope(scope)
    assert caught.value.rule.startswith(f"scope.{missing}")


def test_optional_keys_may_be_left_out() -> None:
    check_scope(
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.0",
            "method": "POST",
            "path": "/",
            "query_string": b"",
            "headers": [],
        }
    )
    check_scope(
        {"type": "websocket", "asgi": {"version": "3.0"}, "path": "/", "headers": []}
    )
    check_scope({"type": "lifespan", "asgi": {"version": "3.0"}})


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"http_version": "1.0"}, "scope.http_version"),
        ({"query_string": "x"}, "scope.query_string"),
        ({"subprotocols": [b"chat"]}, "scope.subprotocols"),
        ({"subprotocols": 3}, "scope.subprotocols"),
    ],
)
def test_broken_websocket_scopes(overrides: dict[str, Any], rule: str) -> None:
    with pytest.raises(ASGIProtocolError) as caught:
        check_scope(ws_scope(**overrides))
    assert caught.value.rule == rule


def test_websocket_query_string_may_be_none() -> None:
    check_scope(ws_scope(query_string=None))


def test_a_one_shot_subprotocol_iterator_is_not_consumed() -> None:
    offered = iter(["chat"])
    checker = check_scope(ws_scope(subprotocols=offered))
    assert list(offered) == ["chat"]
    # The checker cannot know what was offered, so it takes any choice.
    checker.received({"type": "websocket.connect"})
    checker.sent({"type": "websocket.accept", "subprotocol": "chat"})
    assert checker.violations == []


def test_lifespan_scope_checks_state_and_asgi() -> None:
    with pytest.raises(ASGIProtocolError, match=r"rule scope\.state"):
        check_scope({"type": "lifespan", "asgi": {"version": "3.0"}, "state": None})
    with pytest.raises(ASGIProtocolError, match=r"rule scope\.asgi"):
        check_scope({"type": "lifespan"})


def test_a_mapping_that_is_not_a_dict_is_accepted() -> None:
    from types import MappingProxyType

    check_scope(MappingProxyType(http_scope()))


def test_a_trusted_scope_is_not_checked_but_its_messages_are() -> None:
    checker = check_scope(http_scope(method="get"), trusted=True)
    assert type(checker).__name__ == "HTTPChecker"
    assert checker.violations == []
    with pytest.raises(ASGIProtocolError, match=r"rule http\.response\.body\.order"):
        checker.sent({"type": "http.response.body"})


@pytest.mark.parametrize("scope", [["type", "http"], {"type": None}])
def test_trust_does_not_cover_a_scope_without_a_type(scope: object) -> None:
    with pytest.raises(ASGIProtocolError):
        check_scope(scope, trusted=True)
