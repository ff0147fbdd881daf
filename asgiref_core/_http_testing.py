"""``HttpCommunicator``: one HTTP request to an ASGI application, played by the test.

The communicator behaves like a server would: it sends the request body (in
one message or in chunks), reads the response as the application streams it,
delivers ``http.disconnect`` once the response is complete or whenever the
test says the client left, and from then on makes ``send()`` raise
:class:`~asgiref_core.testing.ClientDisconnectedError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from asgiref_core._communicator import ApplicationCommunicator, Message, ValidateMode
from asgiref_core._scopes import (
    DEFAULT_CLIENT,
    DEFAULT_SERVER,
    HeadersInput,
    http_scope,
)
from asgiref_core._testing_errors import UnexpectedMessageError

__all__ = ["HttpCommunicator", "HttpResponse", "header_pairs"]

_DISCONNECT: Message = {"type": "http.disconnect"}


def header_pairs(message: Message) -> list[tuple[bytes, bytes]]:
    """A message's ``headers`` as a list of ``(name, value)`` byte tuples."""
    return [(bytes(name), bytes(value)) for name, value in message.get("headers", ())]


class HttpResponse:
    """A response as the application sent it.

    Also readable by key (``response["status"]``, ``["headers"]``,
    ``["body"]``), like the dict Django Channels' communicator returns.
    """

    __slots__ = ("body", "headers", "status", "trailers")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        trailers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        #: The status code from ``http.response.start``.
        self.status = status
        #: The headers from ``http.response.start``, as ``(name, value)`` bytes.
        self.headers = headers
        #: The whole body read so far.
        self.body = body
        #: Headers from ``http.response.trailers`` messages, if the application
        #: announced trailers.
        self.trailers = trailers if trailers is not None else []

    def __getitem__(self, key: str) -> Any:
        if key in self.__slots__:
            return getattr(self, key)
        msg = f"HttpResponse has no key {key!r}; use one of {sorted(self.__slots__)!r}"
        raise KeyError(msg)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), decoded as latin-1."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return default

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order."""
        wanted = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == wanted]

    @property
    def text(self) -> str:
        """The body decoded with the ``content-type`` charset (UTF-8 if none)."""
        charset = "utf-8"
        for part in (self.header("content-type") or "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        return self.body.decode(charset)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return (
            f"<HttpResponse {self.status}, {len(self.headers)} header(s), "
            f"{len(self.body)} byte(s) of body>"
        )


class HttpCommunicator(ApplicationCommunicator):
    """Send one HTTP request to ``application`` and read its response.

    ``body`` is the request body: bytes, or an iterable of byte chunks sent as
    separate ``http.request`` messages. ``path`` may include the query string.
    The other keyword arguments shape the scope (see
    :func:`~asgiref_core.testing.http_scope`); ``scope`` overrides any key.
    The conversation is validated unless ``validate=False``.

    ``await get_response()`` does it all. For streaming responses, read with
    :meth:`receive_response_start` and :meth:`receive_body` (or
    :meth:`iter_body`) and end with :meth:`disconnect`.
    """

    _lean_queues = True

    def __init__(
        self,
        application: object,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] = b"",
        headers: HeadersInput | None = None,
        *,
        query_string: bytes | str | None = None,
        scheme: str = "http",
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
        built = http_scope(
            method,
            path,
            headers=headers,
            query_string=query_string,
            scheme=scheme,
            http_version=http_version,
            root_path=root_path,
            client=client,
            server=server,
            state=state,
            extensions=extensions,
            scope=scope,
        )
        if isinstance(body, bytes):
            self.body_chunks: list[bytes] = [body]
        elif isinstance(body, str | bytearray | memoryview):
            msg = (
                f"HttpCommunicator({method!r}, {path!r}): body must be bytes or an "
                f"iterable of bytes chunks (got {type(body).__name__}); encode it"
            )
            raise TypeError(msg)
        else:
            self.body_chunks = list(body)
            chunks: list[object] = list(self.body_chunks)
            for chunk in chunks:
                if not isinstance(chunk, bytes):
                    msg = (
                        f"HttpCommunicator({method!r}, {path!r}): body chunks "
                        f"must be bytes (got {chunk!r})"
                    )
                    raise TypeError(msg)
        super().__init__(
            application,
            built,
            cancel_on_timeout=cancel_on_timeout,
            validate=False,
            transcript_size=transcript_size,
        )
        # The builder's output is valid by construction when every part came
        # from it; checking it again would be most of validation's cost.
        self._start_validation(
            validate,
            trusted=scope is None
            and extensions is None
            and client is DEFAULT_CLIENT
            and server is DEFAULT_SERVER
            and http_version in ("1.0", "1.1", "2")
            and scheme in ("http", "https")
            and not root_path,
        )
        self._request_started = False
        self._request_complete = False
        self._response: HttpResponse | None = None
        self._wants_trailers = False
        self._body_complete = False
        self._complete = False

    # -- the application's send side ---------------------------------------------

    # -- the request ---------------------------------------------------------------

    async def send_request(self) -> None:
        """Send the request body given to the constructor, if not sent yet."""
        if self._request_started:
            return
        self._request_started = True
        self._request_complete = True
        self._raise_if_failed()
        put = self.input_queue.put_nowait
        chunks = self.body_chunks or [b""]
        last = len(chunks) - 1
        for index, chunk in enumerate(chunks):
            put({"type": "http.request", "body": chunk, "more_body": index < last})
        self._ensure_started()

    async def send_body(self, chunk: bytes, *, more_body: bool = False) -> None:
        """Send one request body chunk yourself, instead of the constructor's body."""
        if self._request_complete:
            msg = (
                "the request body is already complete; send_body() can only "
                "follow send_body(..., more_body=True)"
            )
            raise RuntimeError(msg)
        self._request_started = True
        self._request_complete = not more_body
        await self.send_input(
            {"type": "http.request", "body": chunk, "more_body": more_body}
        )

    async def send_disconnect(self) -> None:
        """Tell the application the client left; its later ``send()`` calls raise."""
        self._request_started = self._request_complete = True
        if self._conversation.closed is None:
            self._close("the client disconnected")
            self.input_queue.put_nowait(_DISCONNECT)
        self._ensure_started()

    # -- the response --------------------------------------------------------------

    async def receive_response_start(self, timeout: float = 1) -> HttpResponse:
        """Wait for ``http.response.start``: the status and headers, no body yet."""
        if self._response is not None:
            return self._response
        await self.send_request()
        message = await self._expect_output("'http.response.start'", timeout)
        if message.get("type") != "http.response.start":
            raise UnexpectedMessageError(
                "'http.response.start'", message, where=self._where()
            )
        headers = header_pairs(message)
        self._wants_trailers = bool(message.get("trailers", False))
        self._response = HttpResponse(message.get("status"), headers)  # type: ignore[arg-type]
        return self._response

    @property
    def body_complete(self) -> bool:
        """Whether the last body chunk arrived (trailers may still follow)."""
        return self._body_complete

    @property
    def response_complete(self) -> bool:
        """Whether the application finished the response (body and trailers)."""
        return self._complete

    async def receive_body(self, timeout: float = 1) -> bytes:
        """The next ``http.response.body`` chunk, as the application sent it.

        Check :attr:`response_complete` to know whether it was the last one.
        """
        response = await self.receive_response_start(timeout)
        if self._body_complete:
            msg = f"{self._where()}: the response body is already complete"
            raise RuntimeError(msg)
        message = await self._expect_output("an 'http.response.body' message", timeout)
        if message.get("type") != "http.response.body":
            raise UnexpectedMessageError(
                "'http.response.body'", message, where=self._where()
            )
        chunk: bytes = message.get("body", b"")
        response.body += chunk
        if not message.get("more_body", False):
            self._body_complete = True
            if not self._wants_trailers:
                self._finish_response()
        return chunk

    async def iter_body(self, timeout: float = 1) -> AsyncIterator[bytes]:
        """Yield the body chunks as the application sends them, to the last.

        Each chunk gets ``timeout`` seconds. Stop iterating early (then call
        :meth:`disconnect`) to test endless or server-sent-event streams.
        """
        while not self._body_complete:
            yield await self.receive_body(timeout)

    async def receive_trailers(self, timeout: float = 1) -> list[tuple[bytes, bytes]]:
        """Read the ``http.response.trailers`` messages of a finished body."""
        response = await self.receive_response_start(timeout)
        while not self._complete:
            if not self._body_complete:
                await self.receive_body(timeout)
                continue
            message = await self._expect_output(
                "an 'http.response.trailers' message", timeout
            )
            if message.get("type") != "http.response.trailers":
                raise UnexpectedMessageError(
                    "'http.response.trailers'", message, where=self._where()
                )
            response.trailers.extend(header_pairs(message))
            if not message.get("more_trailers", False):
                self._finish_response()
        return response.trailers

    async def get_response(self, timeout: float = 1) -> HttpResponse:
        """Send the request, read the whole response, and let the application finish.

        Each step waits at most ``timeout`` seconds. Once the response is
        complete the application is told the client left and must return
        within ``timeout``. An exception the application raised, even after
        sending its response, is raised here.
        """
        response = await self.receive_response_start(timeout)
        while not self._body_complete:
            await self.receive_body(timeout)
        if not self._complete:
            await self.receive_trailers(timeout)
        await self._await_return(timeout, "after completing its response")
        return response

    async def disconnect(self, timeout: float = 1) -> None:
        """Disconnect the client; wait up to ``timeout`` for the application to end."""
        await self.send_disconnect()
        await self._await_return(timeout, "after the client disconnected")

    # -- machinery -----------------------------------------------------------------

    def _finish_response(self) -> None:
        self._complete = True
        # A server answers any later receive() with http.disconnect.
        if self._conversation.closed is None:
            self._close("the response was complete")
            self.input_queue.put_nowait(_DISCONNECT)

    async def _await_return(self, timeout: float, when: str) -> None:
        future = self.future
        if not future.done():
            await self._wait_for_task(future, timeout)
            if not future.done():
                await self._cancel_app()
                msg = self._describe_no_return(timeout, f" {when}")
                raise TimeoutError(msg)
        error = None if future.cancelled() else future.exception()
        if error is not None and self._response is not None:
            status = self._response.status
            error.add_note(f"The application had sent a {status} response first.")
        self._raise_if_failed()

    def _where(self) -> str:
        scope = self.scope
        return f"HttpCommunicator {scope.get('method')} {scope.get('path')!r}"
