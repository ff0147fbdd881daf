"""A Flask to-do list: an HTML form and a JSON API over one store.

Flask is a WSGI framework; the tests still drive it through the plugin's
ASGI fixtures, which wrap any WSGI application they are given.

- ``GET /`` shows the list and a form; ``POST /todos`` takes the form
  (``title=...``) and redirects back to ``/``;
- ``/api/todos`` lists (GET) and creates (POST, JSON) to-dos,
  ``/api/todos/<id>`` reads (GET) and updates (PATCH) one;
- ``GET /export.csv`` streams the list as CSV, row by row;
- ``GET /whoami`` tells the client what the server saw of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from html import escape
from typing import Any

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.exceptions import HTTPException

Todo = dict[str, Any]


class TodoStore:
    """To-dos in memory. WSGI requests run on several threads, hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._todos: dict[int, Todo] = {}
        self._next_id = 1

    def add(self, title: str) -> Todo:
        with self._lock:
            todo = {"id": self._next_id, "title": title, "done": False}
            self._todos[self._next_id] = todo
            self._next_id += 1
            return dict(todo)

    def get(self, todo_id: int) -> Todo | None:
        with self._lock:
            todo = self._todos.get(todo_id)
            return dict(todo) if todo is not None else None

    def update(self, todo_id: int, **changes: Any) -> Todo | None:
        with self._lock:
            todo = self._todos.get(todo_id)
            if todo is None:
                return None
            todo.update(changes)
            return dict(todo)

    def all(self) -> list[Todo]:
        with self._lock:
            return [dict(todo) for todo in self._todos.values()]

    def clear(self) -> None:
        with self._lock:
            self._todos.clear()
            self._next_id = 1


def clean_title(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def create_app() -> Flask:
    app = Flask(__name__)
    store = app.extensions["todos"] = TodoStore()

    @app.get("/")
    def index() -> str:
        items = "".join(
            f"<li>{'[x]' if todo['done'] else '[ ]'} {escape(todo['title'])}</li>"
            for todo in store.all()
        )
        return (
            f"<h1>To do</h1><ul>{items}</ul>"
            '<form method="post" action="/todos">'
            '<input name="title"><button>Add</button></form>'
        )

    @app.post("/todos")
    def add_from_form() -> Any:
        title = clean_title(request.form.get("title"))
        if title is None:
            return "<p>A title is required.</p>", 400
        store.add(title)
        return redirect("/", code=303)

    @app.get("/api/todos")
    def list_todos() -> Any:
        return jsonify(store.all())

    @app.post("/api/todos")
    def add_todo() -> Any:
        data = request.get_json(silent=True)
        title = clean_title(data.get("title") if isinstance(data, dict) else None)
        if title is None:
            return jsonify(error="send JSON with a non-empty 'title'"), 422
        todo = store.add(title)
        return jsonify(todo), 201, {"Location": f"/api/todos/{todo['id']}"}

    @app.get("/api/todos/<int:todo_id>")
    def get_todo(todo_id: int) -> Any:
        todo = store.get(todo_id)
        if todo is None:
            return jsonify(error=f"no to-do {todo_id}"), 404
        return jsonify(todo)

    @app.patch("/api/todos/<int:todo_id>")
    def update_todo(todo_id: int) -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("done"), bool):
            return jsonify(error="send JSON with a boolean 'done'"), 422
        todo = store.update(todo_id, done=data["done"])
        if todo is None:
            return jsonify(error=f"no to-do {todo_id}"), 404
        return jsonify(todo)

    @app.get("/export.csv")
    def export() -> Response:
        def rows() -> Iterator[str]:
            yield "id,title,done\r\n"
            for todo in store.all():
                yield f"{todo['id']},{todo['title']},{todo['done']}\r\n"

        return Response(rows(), mimetype="text/csv")

    @app.get("/whoami")
    def whoami() -> Any:
        return jsonify(
            address=request.remote_addr,
            host=request.host,
            scheme=request.scheme,
            agent=request.headers.get("User-Agent"),
        )

    @app.errorhandler(HTTPException)
    def json_errors(error: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return jsonify(error=error.description), error.code
        return error

    return app


app = create_app()
