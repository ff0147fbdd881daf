"""``WebsocketCommunicator``: one WebSocket connection to an ASGI application.

The test is the client, and the communicator the server between them: it
performs the handshake, turns data into ``websocket.receive`` events, reads
``websocket.send`` events back, and closes the connection the way a server
would, with ``websocket.disconnect`` and with ``send()`` raising afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from asgiref_core._communicator import ApplicationCommunicator, Message, ValidateMode
from asgiref_core._http_testing import HttpResponse, header_pairs
from asgiref_core._scopes import (
    DEFAULT_CLIENT,
    DEFAULT_SERVER,
    HeadersInput,
    websocket_scope,
)
from asgiref_core._testing_errors import UnexpectedMessageError

__all__ = ["WebsocketClosedError", "WebsocketCommunicator", "WebsocketConnection"]

# The close code a client sees when the connection drops without a close frame.
ABNORMAL_CLOSURE = 1006


class WebsocketConnection(tuple[bool, Any]):
    """The outcome of :meth:`WebsocketCommunicator.connect`.

    It unpacks like Django Channels' result, ``accepted, detail =
    await communicator.connect()``, where ``detail`` is the accepted
    subprotocol (or ``None``), the close code of a rejection, or the HTTP
    status of a denial response. The attributes say the same by name.
    """

    accepted: bool
    #: The subprotocol the application accepted, if any.
    subprotocol: str | None
    #: The close code of a rejection (``websocket.close`` before accepting).
    close_code: int | None
    #: The close reason of a rejection.
    reason: str
    #: Headers the application sent with ``websocket.accept``.
    headers: list[tuple[bytes, bytes]]
    #: The HTTP response of a denial (the ``websocket.http.response`` extension).
    denial: HttpResponse | None

    def __new__(
        cls,
        accepted: bool,
        *,
        subprotocol: str | None = None,
        close_code: int | None = None,
        reason: str = "",
        headers: list[tuple[bytes, bytes]] | None = None,
        denial: HttpResponse | None = None,
    ) -> WebsocketConnection:
        if accepted:
            detail: Any = subprotocol
        elif denial is not None:
            detail = denial.status
        else:
            detail = close_code
        self = super().__new__(cls, (accepted, detail))
        self.accepted = accepted
        self.subprotocol = subprotocol
        self.close_code = close_code
        self.reason = reason
        self.headers = headers if headers is not None else []
        self.denial = denial
        return self

    def __repr__(self) -> str:
        if self.accepted:
            return f"WebsocketConnection(accepted, subprotocol={self.subprotocol!r})"
        if self.denial is not None:
            return f"WebsocketConnection(denied, {self.denial!r})"
        return (
            f"WebsocketConnection(rejected, close_code={self.close_code!r}, "
            f"reason={self.reason!r})"
        )


class WebsocketClosedError(UnexpectedMessageError):
    """The application closed the connection where the test expected data."""

    def __init__(self, message: Message, *, where: str) -> None:
        self.code: int = message.get("code", 1000)
        self.reason: str = message.get("reason") or ""
        super().__init__("'websocket.send'", message, where=where)


class WebsocketCommunicator(ApplicationCommunicator):
    """Open a WebSocket to ``application`` at ``path`` and talk over it.

    ``subprotocols`` are offered in the scope and the
    ``sec-websocket-protocol`` header. ``spec_version`` sets the scope's
    ``asgi["spec_version"]``, as Django Channels' communicator allows. The
    other keyword arguments shape the scope (see
    :func:`~asgiref_core.testing.websocket_scope`); ``scope`` overrides any
    key. The conversation is validated unless ``validate=False``.
    """

    _lean_queues = True

    def __init__(
        self,
        application: object,
        path: str,
        headers: HeadersInput | None = None,
        subprotocols: Iterable[str] | None = None,
        spec_version: str | None = None,
        *,
        query_string: bytes | str | None = None,
        scheme: str = "ws",
        http_version: str = "1.1",
        root_path: str = "",
        client: tuple[str, int] | None = DEFAULT_CLIENT,
        server: tuple[str, int | None] | None = DEFAULT_SERVER,
        state: Mapping[str, Any] | None = None,
        extensions: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        validate: ValidateMode = True,
        cancel_on_timeout: bool = True,
        transcript_size: int = 20,
    ) -> None:
        built = websocket_scope(
            path,
            headers=headers,
            query_string=query_string,
            subprotocols=subprotocols,
            scheme=scheme,
            http_version=http_version,
            root_path=root_path,
            client=client,
            server=server,
            state=state,
            extensions=extensions,
            scope=scope,
        )
        if spec_version is not None:
            built["asgi"]["spec_version"] = spec_version
        super().__init__(
            application,
            built,
            cancel_on_timeout=cancel_on_timeout,
            validate=False,
            transcript_size=transcript_size,
        )
        # As for HTTP: the builder's own output needs no second check.
        self._start_validation(
            validate,
            trusted=scope is None
            and spec_version is None
            and extensions is None
            and client is DEFAULT_CLIENT
            and server is DEFAULT_SERVER
            and http_version in ("1.1", "2")
            and scheme in ("ws", "wss")
            and not root_path,
        )
        self._connection: WebsocketConnection | None = None

    @property
    def connection(self) -> WebsocketConnection | None:
        """The handshake's outcome, once :meth:`connect` has returned."""
        return self._connection

    async def connect(self, timeout: float = 1) -> WebsocketConnection:
        """Send ``websocket.connect`` and wait for the application's answer."""
        if self._connection is not None:
            msg = f"{self._where()}: connect() was already called"
            raise RuntimeError(msg)
        await self.send_input({"type": "websocket.connect"})
        message = await self._expect_output("an answer to 'websocket.connect'", timeout)
        kind = message.get("type")
        if kind == "websocket.accept":
            headers = header_pairs(message)
            self._connection = WebsocketConnection(
                True, subprotocol=message.get("subprotocol"), headers=headers
            )
        elif kind == "websocket.close":
            self._close_seen(message)
            self._connection = WebsocketConnection(
                False,
                close_code=message.get("code", 1000),
                reason=message.get("reason") or "",
            )
        elif kind == "websocket.http.response.start":
            denial = await self._read_denial(message, timeout)
            self._connection = WebsocketConnection(False, denial=denial)
        else:
            raise UnexpectedMessageError(
                "'websocket.accept', 'websocket.close' or "
                "'websocket.http.response.start'",
                message,
                where=self._where(),
            )
        return self._connection

    async def send_to(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        """Send one data message: exactly one of ``text_data`` or ``bytes_data``."""
        if (text_data is None) == (bytes_data is None):
            msg = (
                f"{self._where()}: send_to() needs exactly one of text_data or "
                f"bytes_data (got text_data={text_data!r}, bytes_data={bytes_data!r})"
            )
            raise TypeError(msg)
        # Checked at run time too: callers may not be type-checked.
        text: object = text_data
        data: object = bytes_data
        if text is not None and not isinstance(text, str):
            msg = f"{self._where()}: text_data must be str (got {text_data!r})"
            raise TypeError(msg)
        if data is not None and not isinstance(data, bytes):
            msg = f"{self._where()}: bytes_data must be bytes (got {bytes_data!r})"
            raise TypeError(msg)
        self._check_open("send_to()")
        if text_data is not None:
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def send_json_to(self, data: Any) -> None:
        """Send ``data`` as a JSON text message."""
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:
        """The next data message the application sends: ``str`` or ``bytes``.

        Raises :class:`WebsocketClosedError` if the application closes the
        connection instead.
        """
        message = await self._expect_output("a 'websocket.send' message", timeout)
        kind = message.get("type")
        if kind == "websocket.close":
            self._close_seen(message)
            raise WebsocketClosedError(message, where=self._where())
        if kind != "websocket.send":
            raise UnexpectedMessageError(
                "'websocket.send'", message, where=self._where()
            )
        text = message.get("text")
        if text is not None:
            return text  # type: ignore[no-any-return]
        data = message.get("bytes")
        if data is None:
            raise UnexpectedMessageError(
                "'websocket.send' with text or bytes", message, where=self._where()
            )
        return data  # type: ignore[no-any-return]

    async def receive_json_from(self, timeout: float = 1) -> Any:
        """The next text message, parsed as JSON."""
        data = await self.receive_from(timeout)
        if not isinstance(data, str):
            msg = (
                f"{self._where()}: expected a JSON text message, got "
                f"{len(data)} bytes of binary data: {data[:60]!r}"
            )
            raise TypeError(msg)
        return json.loads(data)

    async def receive_close(self, timeout: float = 1) -> tuple[int, str]:
        """Wait for the application to close the connection: ``(code, reason)``."""
        message = await self._expect_output("a 'websocket.close' message", timeout)
        if message.get("type") != "websocket.close":
            raise UnexpectedMessageError(
                "'websocket.close'", message, where=self._where()
            )
        self._close_seen(message)
        return message.get("code", 1000), message.get("reason") or ""

    async def disconnect(
        self, code: int = 1000, timeout: float = 1, *, reason: str | None = None
    ) -> None:
        """Close from the client side and wait up to ``timeout`` for the app to end."""
        if self._conversation.closed is None:
            event: Message = {"type": "websocket.disconnect", "code": code}
            if reason is not None:
                event["reason"] = reason
            self._close("the WebSocket is closed")
            self.input_queue.put_nowait(event)
        await self.wait(timeout)

    # -- machinery -------------------------------------------------------------

    def _close_seen(self, message: Message) -> None:
        # The server closes the socket and tells the application so on its next
        # receive(); sending after that raises.
        if self._conversation.closed is None:
            self._close("the WebSocket is closed")
            code = message.get("code", 1000)
            if self._connection is None:
                code = ABNORMAL_CLOSURE  # no handshake, so no close frame
            self.input_queue.put_nowait({"type": "websocket.disconnect", "code": code})

    async def _read_denial(self, start: Message, timeout: float) -> HttpResponse:
        headers = header_pairs(start)
        response = HttpResponse(start.get("status"), headers)  # type: ignore[arg-type]
        while True:
            message = await self._expect_output(
                "a 'websocket.http.response.body' message", timeout
            )
            if message.get("type") != "websocket.http.response.body":
                raise UnexpectedMessageError(
                    "'websocket.http.response.body'", message, where=self._where()
                )
            response.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self._close("the WebSocket is closed")
        self.input_queue.put_nowait(
            {"type": "websocket.disconnect", "code": ABNORMAL_CLOSURE}
        )
        return response

    def _check_open(self, action: str) -> None:
        if self._conversation.closed is not None:
            msg = f"{self._where()}: {action} on a closed connection"
            raise RuntimeError(msg)

    def _where(self) -> str:
        return f"WebsocketCommunicator {self.scope.get('path')!r}"
