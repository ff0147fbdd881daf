"""Side-by-side benchmark: asgiref_core's WSGI adapters vs asgiref 3.13 and a2wsgi.

What is measured (every figure is wall-clock time per request):

* **WSGI->ASGI, small POST echo.** A plain WSGI callable reads
  ``wsgi.input`` (``CONTENT_LENGTH`` bytes) and returns ``[body]`` with a
  ``Content-Length`` header. It is wrapped by ``asgiref_core.wsgi.WsgiToAsgi``,
  asgiref 3.13's ``asgiref.wsgi.WsgiToAsgi`` and a2wsgi's ``WSGIMiddleware``,
  each with its defaults. Every wrapper is driven by the same minimal ASGI
  driver, on one event loop per subject, one request after the other: a
  complete ``http`` scope for ``POST /echo`` with a 64-byte body (a shallow
  copy per request, as servers build one per request); ``receive`` returns one
  ``http.request`` holding the whole body, and after that waits until the
  response is complete, then returns ``http.disconnect`` (as uvicorn does);
  ``send`` appends to a list. Every request's response is checked (status 200,
  the body echoed back, a final body message).
* **WSGI->ASGI, streamed response.** The same, but the WSGI application is a
  generator yielding 16 chunks of 4 KiB, with no ``Content-Length``. No target:
  for information.
* **ASGI->WSGI, small POST echo.** A raw ASGI 3 application reads the request
  body and sends it back with a ``content-length`` header (it also answers the
  lifespan protocol, as a well-behaved application does). It is wrapped by
  ``asgiref_core.wsgi.AsgiToWsgi`` and a2wsgi's ``ASGIMiddleware``, each with
  its defaults, and called the way a WSGI server calls an application, from
  one plain thread (the main thread, no event loop running): a fresh environ
  per request (a copy of a crafted PEP 3333 environ with a new ``io.BytesIO``
  as ``wsgi.input``), a ``start_response`` that records the status and
  headers, the returned iterable iterated to the end and its ``close()``
  called. If ``asgiref_core.wsgi`` has no ``AsgiToWsgi``, these rows are
  skipped and a ``note:`` line says so.

**Thread placement.** Every adapter here hands each request to another thread
and back, and on a small virtual machine the cost of a thread wake-up depends
on whether the two threads share a CPU. So the small POST rows run twice:

* **one CPU**: every thread of the process pinned to one CPU while measuring
  (on Linux; elsewhere the threads stay free and a ``note:`` says so), so that
  a hop is a context switch and the figures show the adapters' own overhead
  rather than the machine's wake-up latency. The affinity of every thread is
  restored after each measurement. These rows carry the targets.
* **threads free**: where the scheduler puts the threads, which is what a
  server on the machine sees. A hop then costs a context switch or a
  cross-CPU wake-up depending on where the threads land, which changes every
  few seconds, so single repetitions swing by 2x or more, and so does the
  median ratio from run to run. The same ratios are printed, with no target.

The streamed response row runs with the threads free, with no target.

Per-measurement set-up is outside the clock; the adapters are built once,
before any measurement, and closed at the end: ``AsgiToWsgi.close()``;
a2wsgi's ``WSGIMiddleware`` shuts down its executor; a2wsgi's
``ASGIMiddleware`` has no way to stop the loop thread it starts, so the script
starts that loop and thread itself and hands the loop over with the
middleware's ``loop=`` parameter (the middleware then does exactly what it does
with its own), and stops, joins and closes it at the end.

Method, as in the other benchmarks here: everything runs in one process;
every subject gets its own long-lived event loop (an ``asyncio.Runner``); for
each workload every subject is warmed up, then the workload is repeated R
times (``--repeat``), each repetition measuring every subject once,
alternating the order. A measurement is N requests timed with
``time.perf_counter_ns``; the loop overhead and the response checks are
included and nothing is subtracted. Each measurement of an ASGI driver ends,
inside the clock, by running the loop until no other task is pending (work an
adapter defers to the loop is part of its cost), and fails if one is left.
The cyclic garbage collector is off while timing and runs between
measurements; the objects it then frees are reported per request.

Reported: the median time per request of each subject; for each comparison
the ratio of the medians and the range of the per-repetition ratios; PASS/MISS
against the target where the comparison has one.

Run ``python benchmarks/bench_wsgi.py --help`` for the options; see
``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import a2wsgi
import asgiref.wsgi
from _harness import (
    Comparison,
    ComparisonResult,
    Report,
    Settings,
    compare,
    drain,
    exit_status,
    loop_runner,
    machine_info,
    measure_with_cycles,
    missed_targets,
    module_version,
    package_version,
    parse_options,
    print_header,
    print_workloads,
    progress,
    save_json,
    settle,
    watchdog,
)

try:
    import asgiref_core
    import asgiref_core.testing
    import asgiref_core.wsgi
except ImportError as exc:  # fail loudly: this benchmark is pointless without it
    _msg = (
        f"cannot import asgiref_core.wsgi: {exc}. The benchmark needs it; "
        "from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Message, Receive, Send], Awaitable[None]]
Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
#: Wraps an application in an adapter. The peers' classes are typed loosely
#: (asgiref's not at all), so the adapters are handled as ``Any``.
Adapter = Callable[..., Any]

OURS = "asgiref_core"
ASGIREF = "asgiref"
A2WSGI = "a2wsgi"

OURS_WSGI_TO_ASGI: Adapter = asgiref_core.wsgi.WsgiToAsgi
ASGIREF_WSGI_TO_ASGI: Adapter = asgiref.wsgi.WsgiToAsgi
A2WSGI_WSGI_TO_ASGI: Adapter = a2wsgi.WSGIMiddleware
#: ``None`` until ``asgiref_core.wsgi`` exports it: its rows are then skipped.
OURS_ASGI_TO_WSGI: Adapter | None = getattr(asgiref_core.wsgi, "AsgiToWsgi", None)
A2WSGI_ASGI_TO_WSGI: Adapter = a2wsgi.ASGIMiddleware

REQUEST_BODY = bytes(range(64))
STREAM_CHUNK = b"s" * 4096
STREAM_CHUNKS = 16
STREAM_BODY = STREAM_CHUNK * STREAM_CHUNKS

NOTES = (
    "asgiref's WsgiToAsgi runs the WSGI call on asgiref's process-wide "
    "thread-sensitive executor (no async_to_sync is around it); a2wsgi's "
    "WSGIMiddleware on its own executor (10 workers); ours on its pooled workers",
    "a2wsgi's ASGIMiddleware gets a loop the script runs in a thread of its own "
    "(its loop= parameter), so that the loop can be stopped at the end",
)

# --------------------------------------------------------------------------- #
# The applications.
# --------------------------------------------------------------------------- #


def wsgi_echo(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """A plain WSGI application: the request body back, with Content-Length."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def wsgi_stream(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """A WSGI generator: 16 chunks of 4 KiB, no Content-Length."""
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(STREAM_CHUNKS):
        yield STREAM_CHUNK


async def asgi_echo(scope: Message, receive: Receive, send: Send) -> None:
    """A raw ASGI 3 application: the request body back, with content-length."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- #
# The ASGI driver (WSGI->ASGI rows).
# --------------------------------------------------------------------------- #

#: Runs n requests; returns the elapsed nanoseconds.
Measure = Callable[[int], int]

SCOPE: Message = asgiref_core.testing.http_scope(
    "POST",
    "/echo",
    headers=[
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(len(REQUEST_BODY)).encode("ascii")),
    ],
    extensions={},
)


class _Client:
    """One request's ``receive`` and ``send``, as a minimal server gives them."""

    __slots__ = ("complete", "messages", "requested", "waiter")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.requested = False
        self.complete = False
        self.waiter: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": REQUEST_BODY, "more_body": False}
        if not self.complete:
            # Nothing more arrives until the response is out.
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get(
            "more_body", False
        ):
            self.complete = True
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


def _check_asgi_response(subject: str, messages: list[Message], body: bytes) -> None:
    ok = (
        len(messages) >= 2
        and messages[0]["type"] == "http.response.start"
        and messages[0]["status"] == 200
        and all(m["type"] == "http.response.body" for m in messages[1:])
        and not messages[-1].get("more_body", False)
        and b"".join(m.get("body", b"") for m in messages[1:]) == body
    )
    if not ok:
        msg = (
            f"{subject}: wrong response, expected 200 and {body!r:.40}: "
            f"{messages!r:.400}"
        )
        raise RuntimeError(msg)


def asgi_requests(
    subject: str, runner: asyncio.Runner, app: AsgiApp, body: bytes
) -> Measure:
    """n sequential requests to ``app`` on ``runner``'s loop, each checked."""

    def measure(n: int) -> int:
        async def run() -> int:
            scope = SCOPE
            start = time.perf_counter_ns()
            for _ in range(n):
                client = _Client()
                await app(dict(scope), client.receive, client.send)
                _check_asgi_response(subject, client.messages, body)
            await drain(ticks=1)  # inside the clock: deferred work is paid for
            elapsed = time.perf_counter_ns() - start
            await settle(subject, ticks=1)
            return elapsed

        return runner.run(run())

    return measure


# --------------------------------------------------------------------------- #
# The WSGI driver (ASGI->WSGI rows).
# --------------------------------------------------------------------------- #

ENVIRON: Environ = {
    "REQUEST_METHOD": "POST",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/echo",
    "QUERY_STRING": "",
    "CONTENT_TYPE": "application/octet-stream",
    "CONTENT_LENGTH": str(len(REQUEST_BODY)),
    "SERVER_NAME": "testserver",
    "SERVER_PORT": "80",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "testserver",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


class _Server:
    """What a WSGI server keeps of one response: status and headers."""

    __slots__ = ("headers", "status")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: object = None,
    ) -> Callable[[bytes], object]:
        self.status = status
        self.headers = headers
        return _no_write

    def check(self, subject: str, got: bytes, body: bytes) -> None:
        length = [v for k, v in self.headers if k.lower() == "content-length"]
        if self.status != "200 OK" or got != body or length != [str(len(body))]:
            msg = (
                f"{subject}: wrong response, expected 200 and {body!r:.40}: "
                f"{self.status!r} {self.headers!r} {got!r:.80}"
            )
            raise RuntimeError(msg)


def _no_write(data: bytes) -> None:
    msg = "the benchmark's applications never call write()"
    raise AssertionError(msg)


def wsgi_requests(subject: str, app: WsgiApp, body: bytes) -> Measure:
    """n sequential WSGI calls from this thread, as a server makes them."""

    def measure(n: int) -> int:
        template = ENVIRON
        start = time.perf_counter_ns()
        for _ in range(n):
            environ = template.copy()
            environ["wsgi.input"] = io.BytesIO(body)
            server = _Server()
            result = app(environ, server.start_response)
            try:
                got = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            server.check(subject, got, body)
        return time.perf_counter_ns() - start

    return measure


# --------------------------------------------------------------------------- #
# Thread placement.
# --------------------------------------------------------------------------- #


def _one_cpu() -> int | None:
    """The CPU for the one-CPU rows; ``None`` where threads cannot be pinned."""
    if not hasattr(os, "sched_setaffinity") or not Path("/proc/self/task").is_dir():
        return None
    return min(os.sched_getaffinity(0))


ONE_CPU = _one_cpu()


def _set_every_thread(cpus: set[int]) -> None:
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread just ended
            os.sched_setaffinity(int(tid), cpus)


@contextlib.contextmanager
def every_thread_on_one_cpu() -> Iterator[None]:
    """Pin every thread of the process to ``ONE_CPU``, then free them again.

    The adapters' worker and loop threads are long-lived, so pinning the
    calling thread alone would not move them; a thread started meanwhile
    inherits its creator's pinning, and is freed on the way out too.
    """
    if ONE_CPU is None:
        yield
        return
    allowed = os.sched_getaffinity(0)
    _set_every_thread({ONE_CPU})
    try:
        yield
    finally:
        _set_every_thread(allowed)


# --------------------------------------------------------------------------- #
# Workload table.
# --------------------------------------------------------------------------- #


# Not the harness's Subject and Workload: a subject here brings its own loop
# (or none: the WSGI driver calls from the main thread), and a workload has a
# thread placement.
@dataclass(frozen=True)
class Subject:
    """One adapter doing a workload's request."""

    name: str
    measure: Measure


@dataclass(frozen=True)
class Workload:
    """Subjects measured against each other, and the ratios reported."""

    name: str
    n: int  # requests per measurement at --scale 1
    subjects: tuple[Subject, ...]
    comparisons: tuple[Comparison, ...]
    one_cpu: bool = False  # every thread pinned to ONE_CPU while measuring


def _a2wsgi_asgi_middleware(stack: ExitStack, app: AsgiApp) -> Any:
    """a2wsgi's ASGIMiddleware on a loop thread the script can stop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_forever, name="bench-wsgi-a2wsgi-loop", daemon=True
    )
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if thread.is_alive():
            msg = "a2wsgi's loop thread did not stop within 10 s"
            raise RuntimeError(msg)
        loop.close()

    stack.callback(stop)
    return A2WSGI_ASGI_TO_WSGI(app, loop=loop)


def build_workloads(stack: ExitStack) -> tuple[list[Workload], list[str]]:
    """The workloads, their adapters and loops; closed when ``stack`` exits.

    Also returns notes on anything skipped.
    """

    def runner() -> asyncio.Runner:
        return loop_runner(stack)

    def wsgi_to_asgi(app: WsgiApp, body: bytes) -> tuple[Subject, ...]:
        peer = A2WSGI_WSGI_TO_ASGI(app)
        stack.callback(peer.executor.shutdown)
        return (
            Subject(
                ASGIREF,
                asgi_requests(ASGIREF, runner(), ASGIREF_WSGI_TO_ASGI(app), body),
            ),
            Subject(A2WSGI, asgi_requests(A2WSGI, runner(), peer, body)),
            Subject(OURS, asgi_requests(OURS, runner(), OURS_WSGI_TO_ASGI(app), body)),
        )

    def asgi_to_wsgi(ours: Adapter) -> tuple[Subject, ...]:
        adapter = ours(asgi_echo)
        stack.callback(adapter.close)
        peer = _a2wsgi_asgi_middleware(stack, asgi_echo)
        return (
            Subject(A2WSGI, wsgi_requests(A2WSGI, peer, REQUEST_BODY)),
            Subject(OURS, wsgi_requests(OURS, adapter, REQUEST_BODY)),
        )

    # The targets are judged on the one-CPU rows only: with the threads free,
    # where the scheduler puts them decides most of the time and changes every
    # few seconds, so those ratios swing (see benchmarks/README.md).
    workloads = [
        Workload(
            "WSGI->ASGI small POST, one CPU",
            1_000,
            wsgi_to_asgi(wsgi_echo, REQUEST_BODY),
            (Comparison(ASGIREF, OURS, 4.0), Comparison(A2WSGI, OURS, 1.0)),
            one_cpu=True,
        ),
        Workload(
            "WSGI->ASGI small POST, threads free",
            1_000,
            wsgi_to_asgi(wsgi_echo, REQUEST_BODY),
            (Comparison(ASGIREF, OURS), Comparison(A2WSGI, OURS)),
        ),
        Workload(
            f"WSGI->ASGI {STREAM_CHUNKS} x 4 KiB stream, threads free",
            250,
            wsgi_to_asgi(wsgi_stream, STREAM_BODY),
            (Comparison(ASGIREF, OURS), Comparison(A2WSGI, OURS)),
        ),
    ]
    notes = []
    if OURS_ASGI_TO_WSGI is None:
        notes.append(
            "ASGI->WSGI rows skipped: asgiref_core.wsgi has no AsgiToWsgi "
            "(not written yet?)"
        )
    else:
        workloads += [
            Workload(
                "ASGI->WSGI small POST, one CPU",
                1_000,
                asgi_to_wsgi(OURS_ASGI_TO_WSGI),
                (Comparison(A2WSGI, OURS, 1.0),),
                one_cpu=True,
            ),
            Workload(
                "ASGI->WSGI small POST, threads free",
                1_000,
                asgi_to_wsgi(OURS_ASGI_TO_WSGI),
                (Comparison(A2WSGI, OURS),),
            ),
        ]
    return workloads, notes


# --------------------------------------------------------------------------- #
# Measurement and entry point.
# --------------------------------------------------------------------------- #


# These two differ from the harness's SubjectResult and WorkloadResult, and so
# does the JSON: no subject here is a reference, and a workload records its
# thread placement.
@dataclass
class SubjectResult:
    name: str
    n: int
    samples_ns: list[float]
    median_ns: float
    cycles_per_op: float  # median over the measurements


@dataclass
class WorkloadResult:
    name: str
    one_cpu: bool
    subjects: list[SubjectResult]
    comparisons: list[ComparisonResult]


def run_workload(workload: Workload, settings: Settings) -> WorkloadResult:
    n = settings.n(workload.n)

    def bind(subject: Subject) -> Callable[[int], int]:
        def thunk(k: int) -> int:
            placement = (
                every_thread_on_one_cpu()
                if workload.one_cpu
                else contextlib.nullcontext()
            )
            with placement:
                return subject.measure(k)

        return thunk

    subjects = [(s.name, bind(s)) for s in workload.subjects]
    samples, cycles = measure_with_cycles(subjects, n, settings.repeat)
    results = [
        SubjectResult(
            s.name,
            n,
            samples[s.name],
            statistics.median(samples[s.name]),
            cycles[s.name],
        )
        for s in workload.subjects
    ]
    comparisons = [compare(c, samples) for c in workload.comparisons]
    return WorkloadResult(workload.name, workload.one_cpu, results, comparisons)


def versions() -> dict[str, str]:
    return {
        "asgiref_core": module_version(asgiref_core),
        "asgiref": package_version("asgiref"),
        "a2wsgi": package_version("a2wsgi"),
    }


def placement_note() -> str:
    if ONE_CPU is None:
        return (
            "'one CPU' rows: threads cannot be pinned on this platform, so they "
            "run free like the others"
        )
    return (
        f"'one CPU' rows: every thread of the process pinned to CPU {ONE_CPU} "
        "while measuring, then freed; 'threads free' rows: placed by the "
        "scheduler. The targets are judged on the 'one CPU' rows only: with the "
        "threads free, a hop costs a context switch or a cross-CPU wake-up "
        "depending on where they land, which changes every few seconds"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(
        argv,
        description="Benchmark asgiref_core's WSGI adapters against asgiref "
        "3.13's WsgiToAsgi and a2wsgi's WSGIMiddleware and ASGIMiddleware.",
        hang="a deadlocked adapter",
    )
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        machine = machine_info(versions())
        with ExitStack() as stack:
            workloads, skipped = build_workloads(stack)
            notes = [*NOTES, placement_note(), *skipped]
            print_header("bench_wsgi", machine, settings, notes)
            report = Report[WorkloadResult](machine, settings, notes)
            for workload in workloads:
                progress(f"measuring {workload.name}")
                report.workloads.append(run_workload(workload, settings))

    print_workloads(
        report.workloads,
        settings.repeat,
        unit="request",
        reading=", so above 1 means asgiref_core is faster",
    )
    save_json(report, args.json)
    return exit_status(missed_targets(report.workloads), args)


if __name__ == "__main__":
    sys.exit(main())
