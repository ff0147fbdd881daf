"""Adapters between WSGI and ASGI, in both directions.

:class:`WsgiToAsgi` serves a WSGI application (Flask, Django's WSGI handler,
anything PEP 3333) to an ASGI server or test harness; it mirrors asgiref's.
:class:`AsgiToWsgi` does the reverse: a WSGI callable that runs an ASGI
application, for WSGI servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from asgiref_core._asgi_to_wsgi import AsgiToWsgi
from asgiref_core._wsgi_environ import (
    TooManyHeadersError as _TooManyHeadersError,
)
from asgiref_core._wsgi_environ import (
    build_environ as _build_environ,
)
from asgiref_core._wsgi_environ import (
    excess_duplicate as _excess_duplicate,
)
from asgiref_core._wsgi_environ import (
    read_request_body as _read_request_body,
)
from asgiref_core._wsgi_exchange import WsgiExchange as _WsgiExchange
from asgiref_core.typing import ASGIReceiveCallable, ASGISendCallable, Scope

__all__ = ["AsgiToWsgi", "WsgiToAsgi", "WsgiToAsgiInstance"]

_WsgiApplication = Callable[..., Iterable[bytes]]


class WsgiToAsgi:
    """An ASGI application that serves ``wsgi_application`` for ``http`` scopes.

    Each request's WSGI call runs on one of the library's pooled worker
    threads (``asgiref_core-wsgi-<n>``), so concurrent requests run side by
    side, as under a threaded WSGI server (asgiref runs them one at a time).
    The request body is read first (spooled to a temporary file past 1 MiB);
    the response streams back chunk by chunk as the application
    yields it. A header repeated more than ``duplicate_header_limit`` times
    (``None`` or ``0``: no limit) gets ``400 Bad Request`` without the
    application being called.
    """

    def __init__(
        self,
        wsgi_application: _WsgiApplication,
        duplicate_header_limit: int | None = 100,
    ) -> None:
        self.wsgi_application = wsgi_application
        self.duplicate_header_limit = _checked_limit(duplicate_header_limit)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        await WsgiToAsgiInstance(self.wsgi_application, self.duplicate_header_limit)(
            scope, receive, send
        )


class WsgiToAsgiInstance(_WsgiExchange):
    """One request served by :class:`WsgiToAsgi`.

    ``build_environ`` and ``start_response`` keep asgiref's names and
    signatures, so a subclass can adjust the environ or the response.
    """

    def __init__(
        self,
        wsgi_application: _WsgiApplication,
        duplicate_header_limit: int | None = 100,
    ) -> None:
        super().__init__(wsgi_application)
        self.duplicate_header_limit = _checked_limit(duplicate_header_limit)
        self.scope: Mapping[str, Any] = {}

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        kind = scope.get("type")
        if kind != "http":
            msg = (
                f"WsgiToAsgi serves only 'http' scopes, got a {kind!r} scope; "
                "route WebSocket and lifespan scopes to an ASGI application"
            )
            raise ValueError(msg)
        self.scope = scope
        limit = self.duplicate_header_limit
        headers: Any = scope.get("headers", ())
        if limit and len(headers) > limit:
            # Only a request with that many headers can break the limit:
            # refuse it before reading (and spooling) its body.
            excess = _excess_duplicate(headers, limit)
            if excess is not None:
                await _refuse(send, excess)
                return
        body = await _read_request_body(receive)
        if body is None:
            return  # the client left before sending its whole request
        try:
            environ = self.build_environ(scope, body)
        except BaseException as error:
            body.close()
            if isinstance(error, _TooManyHeadersError):
                await _refuse(send, error)
                return
            raise
        await self._exchange(environ, body, receive, send)

    def build_environ(
        self, scope: Mapping[str, Any], body: IO[bytes]
    ) -> dict[str, Any]:
        """The PEP 3333 environ for ``scope``, with ``body`` as ``wsgi.input``."""
        return _build_environ(scope, body, self.duplicate_header_limit)


def _checked_limit(limit: int | None) -> int | None:
    if limit is None or (type(limit) is int and limit >= 0):
        return limit
    msg = (
        "duplicate_header_limit must be None or an int of 0 or more (0 and None "
        f"mean no limit); got {limit!r}"
    )
    raise ValueError(msg)


async def _refuse(send: ASGISendCallable, error: _TooManyHeadersError) -> None:
    body = f"Bad Request: {error}\n".encode("latin-1", "replace")
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain; charset=latin-1"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
