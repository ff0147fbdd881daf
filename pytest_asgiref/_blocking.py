"""What the communicator fixtures hand to sync tests: blocking twins.

Each method has the name and arguments of its async original and runs it on
the portal's loop, returning its result; a test body reads the same in a sync
and in an async test, less ``await``. The async object stays reachable as
``.communicator`` (or ``.client``) for anything not mirrored here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Self

from asgiref_core.testing import (
    ApplicationCommunicator,
    HttpCommunicator,
    HttpResponse,
    LifespanCommunicator,
    LifespanOutcome,
    Transcript,
    WebsocketCommunicator,
    WebsocketConnection,
)
from asgiref_core.validate import ASGIProtocolError
from pytest_asgiref._clients import (
    NO_JSON,
    AsyncHttpClient,
    AsyncLifespanFactory,
    AsyncWebsocketFactory,
)
from pytest_asgiref._portal import Portal

# One ASGI message, as asgiref_core.testing types them.
Message = dict[str, Any]

__all__ = [
    "BlockingCommunicator",
    "BlockingHttpClient",
    "BlockingHttpCommunicator",
    "BlockingLifespanCommunicator",
    "BlockingLifespanFactory",
    "BlockingWebsocketCommunicator",
    "BlockingWebsocketFactory",
]


class BlockingCommunicator:
    """An :class:`~asgiref_core.testing.ApplicationCommunicator`, blocking."""

    def __init__(self, communicator: ApplicationCommunicator, portal: Portal) -> None:
        #: The async communicator this one drives.
        self.communicator = communicator
        self._call = portal.call

    @property
    def scope(self) -> dict[str, Any]:
        scope: dict[str, Any] = self.communicator.scope
        return scope

    @property
    def transcript(self) -> Transcript:
        return self.communicator.transcript

    @property
    def violation(self) -> ASGIProtocolError | None:
        return self.communicator.violation

    def send_input(self, message: Message) -> None:
        self._call(self.communicator.send_input(message))

    def receive_output(self, timeout: float = 1) -> Message:
        return self._call(self.communicator.receive_output(timeout))

    def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        return self._call(self.communicator.receive_nothing(timeout, interval))

    def wait(self, timeout: float = 1) -> None:
        self._call(self.communicator.wait(timeout))

    def close(self) -> None:
        """Cancel the application if it still runs and wait for it to end."""
        self._call(self.communicator.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self.communicator.__aexit__(exc_type, exc, traceback))


class BlockingHttpCommunicator(BlockingCommunicator):
    """An :class:`~asgiref_core.testing.HttpCommunicator`, blocking."""

    communicator: HttpCommunicator

    @property
    def body_complete(self) -> bool:
        return self.communicator.body_complete

    @property
    def response_complete(self) -> bool:
        return self.communicator.response_complete

    def send_request(self) -> None:
        self._call(self.communicator.send_request())

    def send_body(self, chunk: bytes, *, more_body: bool = False) -> None:
        self._call(self.communicator.send_body(chunk, more_body=more_body))

    def send_disconnect(self) -> None:
        self._call(self.communicator.send_disconnect())

    def receive_response_start(self, timeout: float = 1) -> HttpResponse:
        return self._call(self.communicator.receive_response_start(timeout))

    def receive_body(self, timeout: float = 1) -> bytes:
        return self._call(self.communicator.receive_body(timeout))

    def iter_body(self, timeout: float = 1) -> Iterator[bytes]:
        """Yield the body chunks as the application sends them, to the last."""
        while not self.communicator.body_complete:
            yield self.receive_body(timeout)

    def receive_trailers(self, timeout: float = 1) -> list[tuple[bytes, bytes]]:
        return self._call(self.communicator.receive_trailers(timeout))

    def get_response(self, timeout: float = 1) -> HttpResponse:
        return self._call(self.communicator.get_response(timeout))

    def disconnect(self, timeout: float = 1) -> None:
        self._call(self.communicator.disconnect(timeout))


class BlockingWebsocketCommunicator(BlockingCommunicator):
    """A :class:`~asgiref_core.testing.WebsocketCommunicator`, blocking."""

    communicator: WebsocketCommunicator

    @property
    def connection(self) -> WebsocketConnection | None:
        return self.communicator.connection

    def connect(self, timeout: float = 1) -> WebsocketConnection:
        return self._call(self.communicator.connect(timeout))

    def send_to(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        self._call(self.communicator.send_to(text_data, bytes_data))

    def send_json_to(self, data: Any) -> None:
        self._call(self.communicator.send_json_to(data))

    def receive_from(self, timeout: float = 1) -> str | bytes:
        return self._call(self.communicator.receive_from(timeout))

    def receive_json_from(self, timeout: float = 1) -> Any:
        return self._call(self.communicator.receive_json_from(timeout))

    def receive_close(self, timeout: float = 1) -> tuple[int, str]:
        return self._call(self.communicator.receive_close(timeout))

    def disconnect(
        self, code: int = 1000, timeout: float = 1, *, reason: str | None = None
    ) -> None:
        self._call(self.communicator.disconnect(code, timeout, reason=reason))


class BlockingLifespanCommunicator(BlockingCommunicator):
    """A :class:`~asgiref_core.testing.LifespanCommunicator`, blocking."""

    communicator: LifespanCommunicator

    @property
    def state(self) -> dict[str, Any]:
        return self.communicator.state

    @property
    def startup_outcome(self) -> LifespanOutcome | None:
        return self.communicator.startup_outcome

    @property
    def shutdown_outcome(self) -> LifespanOutcome | None:
        return self.communicator.shutdown_outcome

    def startup(self, timeout: float = 10) -> LifespanOutcome:
        return self._call(self.communicator.startup(timeout))

    def shutdown(self, timeout: float = 10) -> LifespanOutcome:
        return self._call(self.communicator.shutdown(timeout))

    def __enter__(self) -> Self:
        self._call(self.communicator.__aenter__())
        return self


class BlockingHttpClient:
    """``asgi_http`` in sync tests: the blocking twin of the async client."""

    def __init__(self, client: AsyncHttpClient, portal: Portal) -> None:
        #: The async client this one drives.
        self.client = client
        self._portal = portal

    def __call__(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | Iterable[bytes] = b"",
        headers: Any = None,
        *,
        json: Any = NO_JSON,
        **options: Any,
    ) -> BlockingHttpCommunicator:
        """An HTTP communicator for one request, closed at teardown."""
        communicator = self.client(method, path, body, headers, json=json, **options)
        return BlockingHttpCommunicator(communicator, self._portal)

    def request(
        self,
        method: str,
        path: str = "/",
        *,
        body: bytes | Iterable[bytes] = b"",
        json: Any = NO_JSON,
        headers: Any = None,
        timeout: float = 1,
        **options: Any,
    ) -> HttpResponse:
        """Send one request and return the whole response."""
        return self._portal.call(
            self.client.request(
                method,
                path,
                body=body,
                json=json,
                headers=headers,
                timeout=timeout,
                **options,
            )
        )

    def get(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("GET", path, **options))

    def head(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("HEAD", path, **options))

    def options(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("OPTIONS", path, **options))

    def delete(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("DELETE", path, **options))

    def post(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("POST", path, **options))

    def put(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("PUT", path, **options))

    def patch(self, path: str = "/", **options: Any) -> HttpResponse:
        return self._portal.call(self.client.request("PATCH", path, **options))


class BlockingWebsocketFactory:
    """``asgi_websocket`` in sync tests."""

    def __init__(self, factory: AsyncWebsocketFactory, portal: Portal) -> None:
        self._factory = factory
        self._portal = portal

    def __call__(
        self,
        path: str = "/",
        headers: Any = None,
        subprotocols: Iterable[str] | None = None,
        **options: Any,
    ) -> BlockingWebsocketCommunicator:
        """A WebSocket communicator, not yet connected; closed at teardown."""
        communicator = self._factory(path, headers, subprotocols, **options)
        return BlockingWebsocketCommunicator(communicator, self._portal)


class BlockingLifespanFactory:
    """``asgi_lifespan`` in sync tests."""

    def __init__(self, factory: AsyncLifespanFactory, portal: Portal) -> None:
        self._factory = factory
        self._portal = portal

    def __call__(
        self, state: dict[str, Any] | None = None, **options: Any
    ) -> BlockingLifespanCommunicator:
        """A lifespan communicator on the test's application; closed at teardown."""
        communicator = self._factory(state, **options)
        return BlockingLifespanCommunicator(communicator, self._portal)
