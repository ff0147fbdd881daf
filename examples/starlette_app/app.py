"""A Starlette notes service: an in-memory "database" made at startup.

The lifespan creates one :class:`Notes` store and yields it as lifespan
state; Starlette hands it to every request as ``request.state.notes``.

- ``GET /notes`` lists the notes, ``POST /notes`` adds one from a JSON body
  ``{"text": ...}``, ``GET /notes/{id}`` reads one;
- the WebSocket ``/feed`` pushes every new note to the client as JSON, and
  adds the notes the client sends as ``{"text": ...}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

Note = dict[str, Any]


class Notes:
    """The store: notes by id, and a queue per live feed."""

    def __init__(self) -> None:
        self._notes: dict[int, Note] = {}
        self._next_id = 1
        self._feeds: set[asyncio.Queue[Note]] = set()
        self.closed = False

    def add(self, text: str) -> Note:
        note = {"id": self._next_id, "text": text}
        self._notes[self._next_id] = note
        self._next_id += 1
        for feed in self._feeds:
            feed.put_nowait(note)
        return note

    def get(self, note_id: int) -> Note | None:
        return self._notes.get(note_id)

    def all(self) -> list[Note]:
        return list(self._notes.values())

    @contextmanager
    def feed(self) -> Iterator[asyncio.Queue[Note]]:
        queue: asyncio.Queue[Note] = asyncio.Queue()
        self._feeds.add(queue)
        try:
            yield queue
        finally:
            self._feeds.discard(queue)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    notes = Notes()
    yield {"notes": notes}
    notes.closed = True


def text_of(data: object) -> str | None:
    if isinstance(data, dict):
        text = data.get("text")
        if isinstance(text, str) and text.strip():
            return text
    return None


async def list_notes(request: Request) -> JSONResponse:
    return JSONResponse(request.state.notes.all())


async def add_note(request: Request) -> JSONResponse:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    text = text_of(data)
    if text is None:
        return JSONResponse({"error": "'text' is required"}, status_code=422)
    return JSONResponse(request.state.notes.add(text), status_code=201)


async def get_note(request: Request) -> JSONResponse:
    note = request.state.notes.get(request.path_params["note_id"])
    if note is None:
        return JSONResponse({"error": "no such note"}, status_code=404)
    return JSONResponse(note)


async def feed(websocket: WebSocket) -> None:
    notes: Notes = websocket.state.notes
    await websocket.accept()
    with notes.feed() as queue:

        async def forward() -> None:
            while True:
                await websocket.send_json(await queue.get())

        forwarding = asyncio.create_task(forward())
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = text_of(json.loads(message.get("text") or "null"))
                if text is None:
                    await websocket.send_json({"error": "'text' is required"})
                else:
                    notes.add(text)
        finally:
            forwarding.cancel()


app = Starlette(
    routes=[
        Route("/notes", list_notes, methods=["GET"]),
        Route("/notes", add_note, methods=["POST"]),
        Route("/notes/{note_id:int}", get_note, methods=["GET"]),
        WebSocketRoute("/feed", feed),
    ],
    lifespan=lifespan,
)
