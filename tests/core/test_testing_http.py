"""HttpCommunicator against hand-written ASGI applications."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from asgiref_core.testing import (
    ClientDisconnectedError,
    HttpCommunicator,
    HttpResponse,
    UnexpectedMessageError,
)
from asgiref_core.validate import ASGIProtocolError

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20)]


async def read_body(receive: Any) -> tuple[bytes, int]:
    body, chunks = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message.get("body", b"")
        chunks += 1
        if not message.get("more_body", False):
            return body, chunks


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await read_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": "héllo".encode()})


async def echo_request(scope: Any, receive: Any, send: Any) -> None:
    body, chunks = await read_body(receive)
    info = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(),
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "body": body.decode(),
        "chunks": chunks,
        "state": scope.get("state"),
        "client": scope["client"],
        "server": scope["server"],
        "root_path": scope["root_path"],
        "scheme": scope["scheme"],
    }
    payload = json.dumps(info).encode()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": payload})


async def test_get_response() -> None:
    response = await HttpCommunicator(hello, "GET", "/").get_response()
    assert isinstance(response, HttpResponse)
    assert response.status == 200
    assert response.headers == [(b"content-type", b"text/plain; charset=utf-8")]
    assert response.body == "héllo".encode()
    assert response.text == "héllo"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    # Readable like Django Channels' dict.
    assert response["status"] == 200
    assert response["body"] == response.body
    with pytest.raises(KeyError, match="'stat'"):
        response["stat"]


async def test_scope_is_complete_and_overridable() -> None:
    communicator = HttpCommunicator(
        echo_request,
        "post",
        "/caf%C3%A9/x?a=1&b=%20",
        body=b"data",
        headers={"X-Thing": "1"},
        state={"pool": "p"},
    )
    info = (await communicator.get_response()).json()
    assert info["method"] == "POST"
    assert info["path"] == "/café/x"
    assert info["raw_path"] == "/caf%C3%A9/x"
    assert info["query"] == "a=1&b=%20"
    assert ["x-thing", "1"] in info["headers"]
    assert ["host", "testserver"] in info["headers"]
    assert info["body"] == "data"
    assert info["state"] == {"pool": "p"}
    scope = communicator.scope
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    overridden = HttpCommunicator(
        echo_request,
        "GET",
        "/",
        scheme="https",
        root_path="/api",
        client=None,
        server=("example.org", 8443),
        scope={"http_version": "2"},
    )
    assert overridden.scope["http_version"] == "2"
    info = (await overridden.get_response()).json()
    assert info["scheme"] == "https"
    assert info["root_path"] == "/api"
    assert info["client"] is None
    assert ["host", "example.org:8443"] in info["headers"]


async def test_state_is_copied_not_shared() -> None:
    state = {"counter": 1}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["state"]["counter"] = 99
        await hello(scope, receive, send)

    await HttpCommunicator(app, "GET", "/", state=state).get_response()
    assert state == {"counter": 1}


async def test_body_in_chunks() -> None:
    communicator = HttpCommunicator(echo_request, "PUT", "/", body=[b"ab", b"cd", b"e"])
    info = (await communicator.get_response()).json()
    assert info["body"] == "abcde"
    assert info["chunks"] == 3


async def test_manual_body_and_disconnect_mid_request() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect":
                return

    communicator = HttpCommunicator(app, "POST", "/upload")
    await communicator.send_body(b"part", more_body=True)
    await communicator.disconnect()
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]
    assert communicator.future.done()


async def test_send_body_after_the_body_is_complete_is_an_error() -> None:
    communicator = HttpCommunicator(hello, "POST", "/")
    await communicator.send_body(b"all")
    with pytest.raises(RuntimeError, match="already complete"):
        await communicator.send_body(b"more")
    await communicator.get_response()


async def test_bad_body_types_are_rejected() -> None:
    with pytest.raises(TypeError, match="encode it"):
        HttpCommunicator(hello, "POST", "/", body="text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'x'"):
        HttpCommunicator(hello, "POST", "/", body=[b"a", "x"])  # type: ignore[list-item]


async def test_bad_paths_and_headers_are_rejected() -> None:
    with pytest.raises(ValueError, match="start with '/'"):
        HttpCommunicator(hello, "GET", "relative")
    with pytest.raises(ValueError, match="given twice"):
        HttpCommunicator(hello, "GET", "/?a=1", query_string=b"b=2")
    with pytest.raises(TypeError, match="pair"):
        HttpCommunicator(hello, "GET", "/", headers=[(b"a",)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not latin-1"):
        HttpCommunicator(hello, "GET", "/", headers={"x": "€"})


async def streaming_events(scope: Any, receive: Any, send: Any) -> None:
    await read_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    n = 0
    try:
        while True:  # endless, as server-sent events are
            n += 1
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {n}\n\n".encode(),
                    "more_body": True,
                }
            )
            await asyncio.sleep(0.001)
    except ClientDisconnectedError:
        return


async def test_endless_stream_read_three_events_then_disconnect() -> None:
    communicator = HttpCommunicator(streaming_events, "GET", "/events")
    start = await communicator.receive_response_start()
    assert start.status == 200
    assert start.header("content-type") == "text/event-stream"
    events = [await communicator.receive_body() for _ in range(3)]
    assert events == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    assert not communicator.response_complete
    await communicator.disconnect()
    assert communicator.future.done()
    assert not communicator.future.cancelled()


async def test_iter_body_streams_to_the_end() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200})
        for part in (b"a", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})

    communicator = HttpCommunicator(app, "GET", "/")
    assert not communicator.body_complete
    chunks = [chunk async for chunk in communicator.iter_body()]
    assert chunks == [b"a", b"b", b"c"]
    assert communicator.body_complete
    assert communicator.response_complete
    response = await communicator.get_response()
    assert response.body == b"abc"


async def test_trailers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"payload"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"abc")],
                "more_trailers": True,
            }
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-more", b"1")]})

    response = await HttpCommunicator(app, "GET", "/").get_response()
    assert response.body == b"payload"
    assert response.trailers == [(b"x-checksum", b"abc"), (b"x-more", b"1")]


async def test_after_the_response_receive_gives_disconnect() -> None:
    after: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        after.append(await receive())

    await HttpCommunicator(app, "GET", "/").get_response()
    assert after == [{"type": "http.disconnect"}]


async def test_send_after_disconnect_raises_oserror() -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        assert (await receive())["type"] == "http.disconnect"
        try:
            await send({"type": "http.response.start", "status": 200})
        except OSError as error:
            errors.append(error)

    communicator = HttpCommunicator(app, "GET", "/")
    await communicator.send_request()
    await communicator.disconnect()
    assert len(errors) == 1
    assert isinstance(errors[0], ClientDisconnectedError)


async def test_app_error_after_the_response_is_raised_with_the_status() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 500})
        await send({"type": "http.response.body", "body": b"oops"})
        raise ZeroDivisionError("after responding")

    with pytest.raises(ZeroDivisionError) as info:
        await HttpCommunicator(app, "GET", "/").get_response()
    assert "sent a 500 response first" in "\n".join(info.value.__notes__)


async def test_app_that_does_not_return_after_responding() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError, match="after completing its response"):
        await HttpCommunicator(app, "GET", "/").get_response(timeout=0.05)


async def test_missing_response_times_out_with_a_clear_message() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError, match=r"'http\.response\.start'") as info:
        await HttpCommunicator(app, "GET", "/slow").get_response(timeout=0.05)
    assert "'/slow'" in str(info.value)
    assert "http.request" in str(info.value)


async def test_validation_catches_a_body_before_the_start() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.body", "body": b"early"})

    with pytest.raises(ASGIProtocolError, match=r"http\.response\.start"):
        await HttpCommunicator(app, "GET", "/").get_response()


async def test_without_validation_unexpected_order_is_still_explained() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        await send({"type": "http.response.body", "body": b"early"})

    communicator = HttpCommunicator(app, "GET", "/", validate=False)
    with pytest.raises(UnexpectedMessageError, match=r"expected 'http\.response\.st"):
        await communicator.get_response()


async def test_app_that_returns_without_responding() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)

    communicator = HttpCommunicator(app, "GET", "/", validate=False)
    with pytest.raises(TimeoutError, match="returned without sending one"):
        await communicator.get_response(timeout=30)
    with pytest.raises(ASGIProtocolError):
        await HttpCommunicator(app, "GET", "/").get_response(timeout=30)


async def test_nothing_is_left_pending() -> None:
    await HttpCommunicator(hello, "GET", "/").get_response()
    communicator = HttpCommunicator(streaming_events, "GET", "/")
    await communicator.receive_body()
    await communicator.disconnect()
    assert asyncio.all_tasks() == {asyncio.current_task()}
