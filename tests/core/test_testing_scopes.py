"""The scope builders: complete scopes a server would build, with overrides."""

from __future__ import annotations

import pytest

from asgiref_core.testing import http_scope, lifespan_scope, websocket_scope
from asgiref_core.validate import check_scope


def test_http_scope_defaults_pass_the_validator() -> None:
    scope = http_scope()
    check_scope(scope)
    assert scope["type"] == "http"
    assert scope["method"] == "GET"
    assert scope["path"] == "/"
    assert scope["raw_path"] == b"/"
    assert scope["query_string"] == b""
    assert scope["root_path"] == ""
    assert scope["scheme"] == "http"
    assert scope["client"] == ("127.0.0.1", 50000)
    assert scope["server"] == ("testserver", 80)
    assert scope["headers"] == [(b"host", b"testserver")]
    assert "state" not in scope


def test_path_decoding_and_raw_path() -> None:
    scope = http_scope("GET", "/a%2Fb/caf\u00e9 x?q=caf\u00e9 1#frag")
    assert scope["path"] == "/a/b/caf\u00e9 x"
    assert scope["raw_path"] == b"/a%2Fb/caf%C3%A9%20x"
    assert scope["query_string"] == b"q=caf%C3%A9%201"


def test_double_slash_is_a_path_not_a_host() -> None:
    scope = http_scope("GET", "//evil.example/x")
    assert scope["path"] == "//evil.example/x"


def test_query_string_argument() -> None:
    assert http_scope("GET", "/", query_string="a=1")["query_string"] == b"a=1"
    assert http_scope("GET", "/", query_string=b"b=2")["query_string"] == b"b=2"


def test_headers_are_lowercased_bytes_and_host_is_kept() -> None:
    scope = http_scope(
        "GET", "/", headers=[("X-One", "1"), (b"Host", b"example.org"), ("x-one", "2")]
    )
    assert scope["headers"] == [
        (b"x-one", b"1"),
        (b"host", b"example.org"),
        (b"x-one", b"2"),
    ]


def test_host_header_carries_a_non_default_port() -> None:
    scope = http_scope("GET", "/", server=("localhost", 8000))
    assert (b"host", b"localhost:8000") in scope["headers"]
    assert http_scope("GET", "/", server=None)["headers"] == []


def test_scope_overrides_win() -> None:
    scope = http_scope("GET", "/", scope={"path": "/other", "custom": 1})
    assert scope["path"] == "/other"
    assert scope["custom"] == 1


def test_header_errors_name_the_value() -> None:
    with pytest.raises(TypeError, match="got 5"):
        http_scope("GET", "/", headers=[("a", 5)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="path must be str"):
        http_scope("GET", b"/")  # type: ignore[arg-type]


def test_websocket_scope() -> None:
    scope = websocket_scope("/ws?room=1", subprotocols=["a", "b"])
    check_scope(scope)
    assert scope["scheme"] == "ws"
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["query_string"] == b"room=1"
    assert (b"sec-websocket-protocol", b"a, b") in scope["headers"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    with pytest.raises(TypeError, match="subprotocols must be str"):
        websocket_scope("/", subprotocols=[b"a"])  # type: ignore[list-item]


def test_lifespan_scope_shares_the_state_dict() -> None:
    state: dict[str, object] = {}
    scope = lifespan_scope(state=state)
    check_scope(scope)
    assert scope["state"] is state
    assert lifespan_scope()["state"] == {}
