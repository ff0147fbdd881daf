"""Side-by-side benchmark: asgiref_core.testing vs asgiref, Django Channels, httpx
and Starlette's TestClient.

What is measured (every figure is wall-clock time per operation):

* **ApplicationCommunicator round trip.** An echo application
  (``while True: await send(await receive())``) under one communicator, built
  and started once per measurement; one operation is
  ``await c.send_input(msg); await c.receive_output()``. asgiref 3.13's
  ``asgiref.testing.ApplicationCommunicator`` against
  ``asgiref_core.testing.ApplicationCommunicator`` with its defaults
  (``validate=False``, as asgiref has no validation).
* **Validation overhead.** The same round trip, made legal: a WebSocket echo
  application on the complete scope from
  ``asgiref_core.testing.websocket_scope()``. The handshake
  (``websocket.connect`` in, ``websocket.accept`` out) happens once before the
  clock starts; one operation is a ``websocket.receive`` in and the
  ``websocket.send`` it answers with out. ``asgiref_core``'s
  ``ApplicationCommunicator(app, scope, validate=True)`` against the same with
  ``validate=False``. After the clock stops, the test disconnects, the
  application returns, and the run fails if the validator found a violation.
* **A small GET.** A raw ASGI application reads ``http.request`` and sends a
  200 ``http.response.start`` with a ``content-type`` header and the body
  ``b"hello"``. One operation is the whole request, including building the
  client side:

  - Channels: ``channels.testing.HttpCommunicator(app, "GET", "/")`` then
    ``await c.get_response()``. It builds a minimal scope, sends the request and
    reads the start and body messages; it does not wait for the application to
    return, but this application returns as soon as it has sent its body, so
    by the time ``get_response()`` has the body the task is done and the
    communicator's ``__del__`` (run at the end of the iteration by reference
    counting) has nothing to cancel. Every ``send_input`` and
    ``receive_output`` of Channels' communicator also enters a
    ``mock.patch`` of ``channels.db.close_old_connections``; that is part of
    its cost.
  - asgiref_core: ``asgiref_core.testing.HttpCommunicator(app, "GET", "/")``
    then ``await c.get_response()``, validation on (the default). It builds a
    complete scope, validates the scope and every message, sends the request,
    reads the response, delivers ``http.disconnect`` and checks that the
    application has returned.
  - For context only: the same with ``validate=False``; httpx, with one
    ``httpx.AsyncClient(transport=httpx.ASGITransport(app=app))`` per
    measurement and ``await client.get("/")`` per operation (the application
    runs inline in the request's task); Starlette's ``TestClient(app)``, one
    client per measurement and ``client.get("/")`` per operation, from the main
    thread with no event loop running. Used outside a ``with`` block, as
    here, ``TestClient`` starts a blocking portal (a thread running a new
    event loop) for every request, which is most of its cost. It runs fewer
    operations per measurement (see the ``N`` column).
* **References**, for context, measured the same way in the same run with no
  testing library: for the round trip, an echo task between two bare
  ``asyncio.Queue`` objects (what the simplest task-and-queues communicator
  costs); for the GET, the application awaited in place with two closures as
  ``receive``/``send`` and a scope dict built per call (no task at all: a
  floor no communicator can reach).

Nothing is left pending, and deferred work is paid for. Each measurement ends,
inside the clock, by running the loop until no task is pending but the
subject's own long-lived one (the round-trip application): work a subject
hands to the loop belongs to its cost. (httpx needs this: its requests never
yield to the loop, and each leaves the loop's async-generator finaliser a
callback that starts a task to close the request body's generator.) After the
tear-down the script fails if any task is still pending (or, for
``TestClient``, if the thread count has grown). Per-measurement set-up and
tear-down (building the round-trip communicator and starting its application,
the WebSocket handshake, the httpx and Starlette clients, cancelling or
closing at the end) happen outside the clock.

Method, as in ``bench_sync.py``: everything runs in one process; every subject
gets its own long-lived event loop (an ``asyncio.Runner``); for each workload
every subject is warmed up, then the workload is repeated R times
(``--repeat``), each repetition measuring every subject once, alternating the
order. A measurement is N operations timed with ``time.perf_counter_ns``
around a tight loop; the loop overhead is included and nothing is subtracted.
The cyclic garbage collector is off while timing and runs between
measurements; the objects it then frees are reported per operation, so that a
subject cannot hide the cost of the reference cycles it makes.

Reported: the median time per operation of each subject; for each comparison
the ratio of the medians and the range of the per-repetition ratios; PASS/MISS
against the target where the comparison has one.

Run ``python benchmarks/bench_testing.py --help`` for the options; see
``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asgiref.testing
import django.conf
import httpx
from _harness import (
    Comparison,
    Measure,
    Report,
    Settings,
    Subject,
    Workload,
    drain,
    exit_status,
    expect,
    machine_info,
    missed_targets,
    module_version,
    package_version,
    parse_options,
    print_header,
    print_workloads,
    run_workloads,
    save_json,
    settle,
    watchdog,
)

try:
    import asgiref_core
    import asgiref_core.testing
except ImportError as exc:  # fail loudly: this benchmark is pointless without it
    _msg = (
        f"cannot import asgiref_core.testing: {exc}. The benchmark needs it; "
        "from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc

Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


def _load_channels() -> tuple[type[Any], str]:
    """Channels' ``HttpCommunicator``, and a note on how it was imported.

    Channels' testing helpers need configured Django settings; the defaults do.
    ``channels/testing/__init__.py`` also imports the live-server test case,
    which needs Daphne (an optional Channels extra the communicators never
    use). Without Daphne, the real ``channels.testing.http`` module is loaded
    without that ``__init__``.
    """
    if not django.conf.settings.configured:
        django.conf.settings.configure()
    try:
        from channels.testing import HttpCommunicator
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("daphne"):
            raise
        import channels

        package = types.ModuleType("channels.testing")
        package.__path__ = [str(Path(channels.__file__).parent / "testing")]
        sys.modules["channels.testing"] = package
        module = importlib.import_module("channels.testing.http")
        note = (
            "channels.testing.http loaded without channels/testing/__init__.py "
            "(Daphne, needed only by its live-server test case, is not installed)"
        )
        return module.HttpCommunicator, note  # type: ignore[no-any-return]
    return HttpCommunicator, "channels.testing imported normally"


ChannelsHttpCommunicator, CHANNELS_IMPORT_NOTE = _load_channels()

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork over httpx; either works for this.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    import starlette.testclient

# --------------------------------------------------------------------------- #
# The applications.
# --------------------------------------------------------------------------- #


async def echo_app(scope: Message, receive: Receive, send: Send) -> None:
    """Send back every message it receives, forever (breaks the protocol)."""
    while True:
        message = await receive()
        await send(message)


async def websocket_echo_app(scope: Message, receive: Receive, send: Send) -> None:
    """Accept, then answer every text frame with the same text until disconnect."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return  # websocket.disconnect
        await send({"type": "websocket.send", "text": event["text"]})


async def hello_app(scope: Message, receive: Receive, send: Send) -> None:
    """Read the request, answer 200 ``hello``, return."""
    await receive()  # http.request
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


# --------------------------------------------------------------------------- #
# Workload bodies. Each measure function runs n operations on its own loop and
# returns the elapsed nanoseconds; the per-operation figure is elapsed / n.
# Each ends, inside the clock, with ``drain``: work a subject defers to the
# loop is part of its cost. (httpx's requests never yield to the loop; each
# leaves the loop's async-generator finaliser a callback that creates a task
# to close the request body's generator.)
# --------------------------------------------------------------------------- #

QUEUE_REFERENCE = "bare asyncio.Queue pair (reference)"
DIRECT_REFERENCE = "app awaited in place (reference)"


async def _end(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has finished."""
    task.cancel()
    await asyncio.wait({task})


ECHO_MESSAGE: Message = {"type": "bench.echo", "payload": b"x" * 16}


def _round_trip(name: str, communicator_class: type[Any]) -> Measure:
    """An echo round trip through ``communicator_class(echo_app, scope)``."""

    def measure(runner: asyncio.Runner, n: int) -> int:
        async def run() -> int:
            c = communicator_class(echo_app, asgiref_core.testing.http_scope())
            msg = ECHO_MESSAGE
            await c.send_input(msg)  # starts the application task
            expect(name, await c.receive_output(), msg)
            start = time.perf_counter_ns()
            for _ in range(n):
                await c.send_input(msg)
                await c.receive_output()
            await drain(keep={c.future})
            elapsed = time.perf_counter_ns() - start
            await _end(c.future)
            await settle(name)
            return elapsed

        return runner.run(run())

    return measure


def reference_queue_echo(runner: asyncio.Runner, n: int) -> int:
    """Two bare ``asyncio.Queue`` s and an echo task: no communicator at all."""

    async def run() -> int:
        to_app: asyncio.Queue[Message] = asyncio.Queue()
        from_app: asyncio.Queue[Message] = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(
            echo_app({}, to_app.get, from_app.put)
        )
        msg = ECHO_MESSAGE
        await to_app.put(msg)
        await from_app.get()
        start = time.perf_counter_ns()
        for _ in range(n):
            await to_app.put(msg)
            await from_app.get()
        await drain(keep={task})
        elapsed = time.perf_counter_ns() - start
        await _end(task)
        await settle(QUEUE_REFERENCE)
        return elapsed

    return runner.run(run())


WEBSOCKET_TEXT: Message = {"type": "websocket.receive", "text": "hello"}


def _websocket_round_trip(*, validate: bool) -> Measure:
    name = f"validate={validate}"

    def measure(runner: asyncio.Runner, n: int) -> int:
        async def run() -> int:
            c = asgiref_core.testing.ApplicationCommunicator(
                websocket_echo_app,
                asgiref_core.testing.websocket_scope(),
                validate=validate,
            )
            await c.send_input({"type": "websocket.connect"})
            expect(name, await c.receive_output(), {"type": "websocket.accept"})
            msg = WEBSOCKET_TEXT
            await c.send_input(msg)
            expect(
                name,
                await c.receive_output(),
                {"type": "websocket.send", "text": "hello"},
            )
            start = time.perf_counter_ns()
            for _ in range(n):
                await c.send_input(msg)
                await c.receive_output()
            await drain(keep={c.future})
            elapsed = time.perf_counter_ns() - start
            await c.send_input({"type": "websocket.disconnect", "code": 1000})
            await c.wait()  # raises what the application or the validator raised
            expect(name, c.violation, None)
            await settle(name)
            return elapsed

        return runner.run(run())

    return measure


def _check_get(subject: str, status: object, body: object) -> None:
    expect(subject, (status, body), (200, b"hello"))


def get_channels(runner: asyncio.Runner, n: int) -> int:
    communicator = ChannelsHttpCommunicator

    async def run() -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            c = communicator(hello_app, "GET", "/")
            response = await c.get_response()
        await drain()
        elapsed = time.perf_counter_ns() - start
        _check_get("channels", response["status"], response["body"])
        await settle("channels")
        return elapsed

    return runner.run(run())


def _get_asgiref_core(*, validate: bool) -> Measure:
    name = f"asgiref_core validate={validate}"
    communicator = asgiref_core.testing.HttpCommunicator

    def measure(runner: asyncio.Runner, n: int) -> int:
        async def run() -> int:
            if validate:  # the default: written as users write it
                start = time.perf_counter_ns()
                for _ in range(n):
                    c = communicator(hello_app, "GET", "/")
                    response = await c.get_response()
                await drain()
                elapsed = time.perf_counter_ns() - start
            else:
                start = time.perf_counter_ns()
                for _ in range(n):
                    c = communicator(hello_app, "GET", "/", validate=False)
                    response = await c.get_response()
                await drain()
                elapsed = time.perf_counter_ns() - start
            _check_get(name, response.status, response.body)
            await settle(name)
            return elapsed

        return runner.run(run())

    return measure


def get_httpx(runner: asyncio.Runner, n: int) -> int:
    async def run() -> int:
        transport = httpx.ASGITransport(app=hello_app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver"
        ) as client:
            start = time.perf_counter_ns()
            for _ in range(n):
                response = await client.get("/")
            await drain()
            elapsed = time.perf_counter_ns() - start
        _check_get("httpx", response.status_code, response.content)
        await settle("httpx")
        return elapsed

    return runner.run(run())


def get_starlette(runner: asyncio.Runner, n: int) -> int:
    # Synchronous: called from the main thread, the runner's loop idle.
    threads = threading.active_count()
    client = starlette.testclient.TestClient(hello_app)
    try:
        start = time.perf_counter_ns()
        for _ in range(n):
            response = client.get("/")
        elapsed = time.perf_counter_ns() - start
    finally:
        client.close()
    _check_get("TestClient", response.status_code, response.content)
    if threading.active_count() > threads:
        msg = (
            f"TestClient: {threading.active_count() - threads} thread(s) left "
            "running after a measurement"
        )
        raise RuntimeError(msg)
    return elapsed


def reference_direct_call(runner: asyncio.Runner, n: int) -> int:
    """The application awaited in place, with two closures for ``receive``/``send``."""

    async def run() -> int:
        request: Message = {"type": "http.request", "body": b"", "more_body": False}
        start = time.perf_counter_ns()
        for _ in range(n):
            sent: list[Message] = []

            async def receive() -> Message:
                return request

            async def send(message: Message, sent: list[Message] = sent) -> None:
                sent.append(message)

            scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
            await hello_app(scope, receive, send)
        await drain()
        elapsed = time.perf_counter_ns() - start
        _check_get(DIRECT_REFERENCE, sent[0]["status"], sent[1]["body"])
        await settle(DIRECT_REFERENCE)
        return elapsed

    return runner.run(run())


# --------------------------------------------------------------------------- #
# Workload table.
# --------------------------------------------------------------------------- #


# A reference subject uses no testing library: it is there for context only.
WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "ApplicationCommunicator round trip",
        20_000,
        (
            Subject(
                "asgiref",
                _round_trip("asgiref", asgiref.testing.ApplicationCommunicator),
            ),
            Subject(
                "asgiref_core",
                _round_trip(
                    "asgiref_core", asgiref_core.testing.ApplicationCommunicator
                ),
            ),
            Subject(QUEUE_REFERENCE, reference_queue_echo, reference=True),
        ),
        (
            Comparison("asgiref", "asgiref_core", 1.0),
            Comparison("asgiref_core", QUEUE_REFERENCE),
        ),
    ),
    Workload(
        "validation overhead (websocket round trip)",
        20_000,
        (
            Subject("validate=True", _websocket_round_trip(validate=True)),
            Subject("validate=False", _websocket_round_trip(validate=False)),
        ),
        (Comparison("validate=True", "validate=False", 1.30, at_most=True),),
    ),
    Workload(
        "small GET",
        5_000,
        (
            Subject("channels", get_channels),
            Subject("asgiref_core", _get_asgiref_core(validate=True)),
            Subject("asgiref_core validate=False", _get_asgiref_core(validate=False)),
            Subject("httpx", get_httpx),
            Subject("TestClient", get_starlette, n_factor=0.02),
            Subject(DIRECT_REFERENCE, reference_direct_call, reference=True),
        ),
        (
            Comparison("channels", "asgiref_core", 2.0),
            Comparison("httpx", "asgiref_core"),
            Comparison("TestClient", "asgiref_core"),
            Comparison("asgiref_core", "asgiref_core validate=False"),
            Comparison("asgiref_core", DIRECT_REFERENCE),
        ),
    ),
)

# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #


def versions() -> dict[str, str]:
    return {
        "asgiref_core": module_version(asgiref_core),
        "asgiref": package_version("asgiref"),
        "channels": package_version("channels"),
        "django": package_version("django"),
        "httpx": package_version("httpx"),
        "starlette": package_version("starlette"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(
        argv,
        description="Benchmark asgiref_core.testing against asgiref, Django "
        "Channels, httpx and Starlette's TestClient.",
        hang="a hung application",
    )
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        machine = machine_info(versions())
        notes = [CHANNELS_IMPORT_NOTE]
        print_header("bench_testing", machine, settings, notes)
        report = Report(machine, settings, notes, run_workloads(WORKLOADS, settings))

    print_workloads(report.workloads, settings.repeat)
    save_json(report, args.json)
    return exit_status(missed_targets(report.workloads), args)


if __name__ == "__main__":
    sys.exit(main())
