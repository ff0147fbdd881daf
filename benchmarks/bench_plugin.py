"""The plugin's request round trip, against Starlette's ``TestClient``.

The target (from the issue): a sync test's blocking communicator round trip
costs at most one thread hand-off more than the async one, and a small GET is
at least 5x faster than Starlette's ``TestClient``.

What is measured (every figure is wall-clock time per request):

* **The application.** One small Starlette application, the same for every
  subject: ``GET /`` answers 200 with ``PlainTextResponse("hello")`` (a
  ``content-type`` header, plus the ``content-length`` Starlette adds). It has
  no lifespan handlers; Starlette still answers the lifespan protocol.
* **The subjects**, each a test in one generated pytest run, each doing the
  same GET through what a user's test would get:

  - ``sync plugin``: ``asgi_http.get("/")`` in a plain ``def`` test marked
    ``@pytest.mark.asgi_app(app=app)``. The fixture hands a sync test a
    blocking client: each call goes to the plugin's portal (an event loop in a
    helper thread) and waits there for the whole exchange.
  - ``sync plugin validate=off``: the same with
    ``@pytest.mark.asgi_app(app=app, validate="off")``, for information.
    Validation is on by default in the plugin (the run checks this in the
    plugin's report-header line), so the row above is what a user's suite pays.
  - ``async plugin``: ``await asgi_http.get("/")`` in an ``async def`` test run
    by pytest-asyncio, on the test's own loop: no thread hand-off at all.
  - ``TestClient``: ``client.get("/")`` on one ``starlette.testclient.TestClient``
    per test, built by a fixture inside ``with TestClient(app) as client:``
    (so its blocking portal thread is already running, and the lifespan has
    started) before the clock starts, as a user's fixture would.
  - ``thread hop (reference)``: no testing library: from a plain test,
    ``asyncio.run_coroutine_threadsafe(coro, loop).result()`` on a loop in a
    helper thread, where ``coro`` returns its argument at once. One round trip
    there and back, the least a portal call can cost: the thread hand-off of
    the target.

  The plugin fixtures are used as users use them: the measurement sees only
  the fixture value, never the plugin's private objects. Fixture set-up and
  tear-down (the lifespan the plugin runs for each test, the ``TestClient``
  and its portal, the reference's thread) happen outside the clock.

How: the script writes a test module, a ``pytest.ini`` (with
``asyncio_default_fixture_loop_scope = function`` and nothing else) into a
temporary directory and runs ``python -m pytest -p no:cacheprovider`` on it
in a subprocess whose environment has no ``PYTEST_ADDOPTS``,
``PYTEST_PLUGINS`` or ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``. Each test of that
module makes one measurement and appends it to a JSON-lines file named by an
environment variable. The module holds one warm-up test per subject (N/5
requests, discarded), then R repetitions of one test per subject, the order of
the subjects flipping every repetition; pytest runs them in that order, and
the script checks that the measurements came back in it. A measurement is N
requests timed with ``time.perf_counter_ns`` around a tight loop by
``_harness.timed`` (for the async test, the same steps written out with
``await``): the cyclic garbage collector is collected, then off while timing;
after the clock stops it runs again and the objects it freed are reported per
request. The async measurement ends, inside the clock, by running the loop
until no task is pending but those pending before the clock started (the
application's lifespan, which lasts the whole test; ``_harness.drain``), and
fails if another is left after it. Every measurement checks its last
response (200, ``hello``, the content type). If the inner run outlasts
``--timeout``, it dumps every thread's stack to a file and exits 1, and the
script prints the dump.

Reported: the median time per request of each subject; the ratios of the
medians with the range of the per-repetition ratios; PASS/MISS against the
target (``TestClient / sync plugin >= 5``); and the hand-off cost, the median
``sync plugin`` minus the median ``async plugin``, beside the bare thread hop.

Run ``python benchmarks/bench_plugin.py --help`` for the options; see
``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import (
    Comparison,
    Report,
    Settings,
    SubjectResult,
    WorkloadResult,
    compare,
    exit_status,
    fmt_time,
    machine_info,
    missed_targets,
    module_version,
    package_version,
    parse_options,
    print_header,
    print_workloads,
    progress,
    save_json,
    table,
    watchdog,
)

try:
    import pytest_asgiref
except ImportError as exc:  # fail loudly: this benchmark is pointless without it
    _msg = (
        f"cannot import pytest_asgiref: {exc}. The benchmark needs the plugin "
        "installed; from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc

# --------------------------------------------------------------------------- #
# The subjects.
# --------------------------------------------------------------------------- #

SYNC = "sync plugin"
SYNC_OFF = "sync plugin validate=off"
ASYNC = "async plugin"
PEER = "TestClient"
HOP = "thread hop (reference)"


@dataclass(frozen=True)
class Subject:
    """One way of making the GET, and the test that measures it."""

    name: str
    slug: str  # for the generated test's name
    test: str  # the test's source, with {test}, {name}, {rep} and {n} to fill in
    n_factor: float = 1.0  # its N is the workload's N times this
    reference: bool = False  # no library under test: for context only


# The generated tests. ``measure`` and ``measure_async`` are defined in
# INNER_PREAMBLE below; ``app`` is the Starlette application.
SUBJECTS: tuple[Subject, ...] = (
    Subject(
        SYNC,
        "sync",
        "@pytest.mark.asgi_app(app=app)\n"
        "def {test}(asgi_http):\n"
        "    measure({name!r}, {rep}, {n}, asgi_http.get, check_plugin)\n",
    ),
    Subject(
        SYNC_OFF,
        "sync_validate_off",
        '@pytest.mark.asgi_app(app=app, validate="off")\n'
        "def {test}(asgi_http):\n"
        "    measure({name!r}, {rep}, {n}, asgi_http.get, check_plugin)\n",
    ),
    Subject(
        ASYNC,
        "async",
        "@pytest.mark.asyncio\n"
        "@pytest.mark.asgi_app(app=app)\n"
        "async def {test}(asgi_http):\n"
        "    await measure_async({name!r}, {rep}, {n}, asgi_http.get, "
        "check_plugin)\n",
    ),
    Subject(
        PEER,
        "testclient",
        "def {test}(starlette_client):\n"
        "    measure({name!r}, {rep}, {n}, starlette_client.get, "
        "check_testclient)\n",
        # About 15 to 20 times slower: a tenth of the N keeps the times close.
        n_factor=0.1,
    ),
    Subject(
        HOP,
        "thread_hop",
        "def {test}(thread_hop):\n"
        "    measure({name!r}, {rep}, {n}, thread_hop, check_hop)\n",
        reference=True,
    ),
)

WORKLOAD = "small GET, Starlette app"
#: Requests per measurement at ``--scale 1``.
N = 2_000

COMPARISONS: tuple[Comparison, ...] = (
    Comparison(PEER, SYNC, 5.0),
    Comparison(SYNC, ASYNC),
    Comparison(SYNC, SYNC_OFF),
    Comparison(PEER, ASYNC),
)

# --------------------------------------------------------------------------- #
# The generated test run.
# --------------------------------------------------------------------------- #

RESULTS_VARIABLE = "BENCH_PLUGIN_RESULTS"
STACKS_VARIABLE = "BENCH_PLUGIN_STACKS"
RESULTS_FILE = "results.jsonl"
STACKS_FILE = "stacks.txt"  # where a hung inner run dumps its threads' stacks
WARM_UP = -1  # the repetition number of the warm-up measurements

INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
"""

INNER_PREAMBLE = '''\
"""Generated by benchmarks/bench_plugin.py: one measurement per test."""

import asyncio
import faulthandler
import gc
import json
import os
import threading
import time
import warnings

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from _harness import drain, expect, gc_off, timed

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork over httpx; either works for this.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

# A hung run dumps every thread's stack and exits 1. The dump goes to a file:
# pytest captures the standard error stream while the module is imported.
STACKS = open(os.environ[{stacks!r}], "w")
faulthandler.dump_traceback_later({timeout!r}, exit=True, file=STACKS)

RESULTS = os.environ[{variable!r}]
EXPECTED = (200, b"hello", "text/plain; charset=utf-8")


async def hello(request):
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", hello)])


def check_plugin(subject, response):
    content_type = dict(response.headers).get(b"content-type", b"").decode()
    expect(subject, (response.status, response.body, content_type), EXPECTED)


def check_testclient(subject, response):
    got = (response.status_code, response.content, response.headers["content-type"])
    expect(subject, got, EXPECTED)


def check_hop(subject, response):
    expect(subject, response, "/")


def record(subject, rep, n, ns_per_op, cycles_per_op):
    line = json.dumps(
        {{
            "subject": subject,
            "rep": rep,
            "n": n,
            "ns_per_op": ns_per_op,
            "cycles_per_op": cycles_per_op,
        }}
    )
    with open(RESULTS, "a") as results:
        results.write(line + "\\n")


def measure(subject, rep, n, get, check):
    """Time n calls of get("/") with the harness; check the last response."""
    freed = []
    last = []

    def thunk(k):
        start = time.perf_counter_ns()
        for _ in range(k):
            response = get("/")
        elapsed = time.perf_counter_ns() - start
        freed.append(gc.collect() / k)
        last.append(response)
        return elapsed

    ns_per_op = timed(thunk, n)
    check(subject, last[0])
    record(subject, rep, n, ns_per_op, freed[0])


async def measure_async(subject, rep, n, get, check):
    """What measure() does, for an awaitable get("/").

    Tasks pending before the clock starts (the application's lifespan, which
    runs for the whole test) are left alone; any other must be gone.
    """
    before = asyncio.all_tasks()
    gc.collect()
    with gc_off():
        start = time.perf_counter_ns()
        for _ in range(n):
            response = await get("/")
        await drain(keep=before)
        elapsed = time.perf_counter_ns() - start
        freed = gc.collect() / n
    check(subject, response)
    await asyncio.sleep(0)
    left = asyncio.all_tasks() - before - {{asyncio.current_task()}}
    if left:
        raise RuntimeError(f"{{subject}}: task(s) left pending: {{left!r}}")
    record(subject, rep, n, elapsed / n, freed)


@pytest.fixture
def starlette_client():
    with TestClient(app) as client:
        yield client


async def _echo(value):
    return value


@pytest.fixture
def thread_hop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def hop(value):
        return asyncio.run_coroutine_threadsafe(_echo(value), loop).result()

    yield hop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
'''


def schedule(settings: Settings) -> list[tuple[Subject, int, int]]:
    """(subject, repetition, N) for every measurement, in the order run.

    The warm-ups first, then the repetitions, the order of the subjects
    flipping every repetition, as the harness's ``measure_series`` does.
    """
    n = {s.name: settings.n(N, s.n_factor) for s in SUBJECTS}
    runs = [(s, WARM_UP, max(1, n[s.name] // 5)) for s in SUBJECTS]
    for rep in range(settings.repeat):
        order = SUBJECTS if rep % 2 == 0 else tuple(reversed(SUBJECTS))
        runs += [(s, rep, n[s.name]) for s in order]
    return runs


def module_source(runs: Sequence[tuple[Subject, int, int]], timeout: float) -> str:
    """The test module: the shared preamble, then one test per measurement."""
    preamble = INNER_PREAMBLE.format(
        timeout=timeout, variable=RESULTS_VARIABLE, stacks=STACKS_VARIABLE
    )
    parts = [preamble]
    for i, (subject, rep, n) in enumerate(runs):
        when = "warmup" if rep == WARM_UP else f"r{rep}"
        test = f"test_{i:03d}_{when}_{subject.slug}"
        parts.append(subject.test.format(test=test, name=subject.name, rep=rep, n=n))
    return "\n\n".join(parts)


_STRIPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def child_env(directory: Path) -> dict[str, str]:
    """The inner run's environment: no outside pytest options, the harness
    importable, the results and stack-dump files named."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env.pop("FORCE_COLOR", None)
    env["PY_COLORS"] = "0"
    here = str(Path(__file__).resolve().parent)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = here if not path else os.pathsep.join([here, path])
    env[RESULTS_VARIABLE] = str(directory / RESULTS_FILE)
    env[STACKS_VARIABLE] = str(directory / STACKS_FILE)
    return env


class InnerRunFailed(Exception):
    """The generated test run did not run as it must; the message says how."""


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(nothing)"


@dataclass
class InnerRun:
    """What the generated run measured, and what its header said."""

    records: list[dict[str, Any]]
    header: str  # the plugin's report-header line


def _output(stdout: str, stderr: str, stacks: str) -> str:
    parts = [
        f"--- end of stdout ---\n{_tail(stdout)}",
        f"--- end of stderr ---\n{_tail(stderr)}",
    ]
    if stacks:
        parts.append(f"--- stacks dumped at the time limit ---\n{stacks.rstrip()}")
    return "\n".join(parts)


def run_inner(settings: Settings, timeout: float) -> InnerRun:
    """Write the module, run pytest on it, read back the measurements."""
    runs = schedule(settings)
    with tempfile.TemporaryDirectory(prefix="bench_plugin_") as tmp:
        directory = Path(tmp)
        ini = directory / "pytest.ini"
        ini.write_text(INI)
        module = directory / "test_round_trip.py"
        module.write_text(module_source(runs, timeout))
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
        argv += ["-c", str(ini), "--rootdir", str(directory), str(module)]
        progress(f"running {len(runs)} measurements in one pytest run")
        try:
            proc = subprocess.run(
                argv,
                cwd=directory,
                env=child_env(directory),
                capture_output=True,
                text=True,
                # The inner run dumps its stacks and exits at ``timeout``.
                timeout=timeout + 30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"the inner pytest run did not finish within {timeout + 30:g} s"
            raise InnerRunFailed(msg) from exc
        results = directory / RESULTS_FILE
        text = results.read_text() if results.exists() else ""
        stacks = directory / STACKS_FILE
        dumped = stacks.read_text() if stacks.exists() else ""
    if proc.returncode != 0:
        limit = f" or hit the time limit of {timeout:g} s" if dumped else ""
        msg = (
            f"the inner pytest run failed{limit} (exit status {proc.returncode}); "
            f"command: {' '.join(argv)}\n"
            f"{_output(proc.stdout, proc.stderr, dumped)}\n"
            "If pytest_asgiref is in the middle of an edit, rerun once it "
            "imports again."
        )
        raise InnerRunFailed(msg)
    records = [json.loads(line) for line in text.splitlines()]
    got = [(r["subject"], r["rep"]) for r in records]
    wanted = [(s.name, rep) for s, rep, _ in runs]
    if got != wanted:
        msg = (
            "the inner run's measurements did not come back in the order "
            f"generated (is a plugin reordering tests?): got {got!r}, "
            f"expected {wanted!r}"
        )
        raise InnerRunFailed(msg)
    header = next(
        (ln for ln in proc.stdout.splitlines() if ln.startswith("asgiref: ")), ""
    )
    return InnerRun(records, header)


# --------------------------------------------------------------------------- #
# Results and the report.
# --------------------------------------------------------------------------- #


@dataclass
class HandOff:
    """What a sync test pays over an async one, against the bare thread hop."""

    sync_minus_async_ns: float  # median(sync plugin) - median(async plugin)
    range_ns: tuple[float, float]  # min, max of the per-repetition differences
    thread_hop_ns: float  # median of the reference
    in_hops: float  # sync_minus_async_ns / thread_hop_ns


@dataclass
class PluginReport(Report[WorkloadResult]):
    """Everything one run found; written out whole by ``--json``."""

    hand_off: HandOff | None = None
    plugin_header: str = ""  # the inner run's "asgiref: ..." header line


def workload_result(records: Sequence[dict[str, Any]]) -> WorkloadResult:
    """Per-subject samples in repetition order, medians and comparisons."""
    timed = [r for r in records if r["rep"] != WARM_UP]
    samples = {
        s.name: [r["ns_per_op"] for r in timed if r["subject"] == s.name]
        for s in SUBJECTS
    }
    for values in samples.values():
        if not values:
            msg = f"no measurements came back: {records!r}"
            raise InnerRunFailed(msg)
    subjects = [
        SubjectResult(
            s.name,
            next(r["n"] for r in timed if r["subject"] == s.name),
            s.reference,
            samples[s.name],
            statistics.median(samples[s.name]),
            statistics.median(
                [r["cycles_per_op"] for r in timed if r["subject"] == s.name]
            ),
        )
        for s in SUBJECTS
    ]
    comparisons = [compare(c, samples) for c in COMPARISONS]
    return WorkloadResult(WORKLOAD, subjects, comparisons)


def hand_off(workload: WorkloadResult) -> HandOff:
    by_name = {s.name: s for s in workload.subjects}
    sync, asynchronous, hop = by_name[SYNC], by_name[ASYNC], by_name[HOP]
    differences = [
        a - b for a, b in zip(sync.samples_ns, asynchronous.samples_ns, strict=True)
    ]
    extra = sync.median_ns - asynchronous.median_ns
    return HandOff(
        extra,
        (min(differences), max(differences)),
        hop.median_ns,
        extra / hop.median_ns,
    )


def fmt_signed(ns: float) -> str:
    """A duration that may be negative (a difference of two noisy times)."""
    return f"-{fmt_time(-ns)}" if ns < 0 else fmt_time(ns)


def print_hand_off(cost: HandOff, repeat: int) -> None:
    low, high = cost.range_ns
    rows = [
        [
            f"{SYNC} - {ASYNC}",
            fmt_signed(cost.sync_minus_async_ns),
            f"{fmt_signed(low)} to {fmt_signed(high)}",
        ],
        [HOP, fmt_time(cost.thread_hop_ns), ""],
        [
            f"({SYNC} - {ASYNC}) / thread hop",
            f"{cost.in_hops:.2f}x",
            "",
        ],
    ]
    print(f"Thread hand-off cost of a sync test, medians of {repeat} repetitions")
    print(
        "(the difference of the medians; range = min-max of the per-repetition "
        "differences; reported, not judged)"
    )
    print(table(["figure", "value", "range"], rows))


def validation_note(header: str) -> str:
    modes = [
        p.removeprefix("validate=") for p in header.split() if p.startswith("validate=")
    ]
    mode = modes[0] if modes else None
    if mode is None:
        return (
            "could not read the plugin's default validation mode from the inner "
            f"run's header (got {header!r})"
        )
    state = "off" if mode == "off" else "on"
    return (
        f"validation is {state} by default in the plugin (the inner run's header "
        f"says validate={mode}); '{SYNC}' and '{ASYNC}' run with it, as a "
        f"user's suite would, and '{SYNC_OFF}' is there for information"
    )


def versions() -> dict[str, str]:
    return {
        "pytest_asgiref": module_version(pytest_asgiref),
        "pytest": package_version("pytest"),
        "pytest-asyncio": package_version("pytest-asyncio"),
        "starlette": package_version("starlette"),
        "httpx": package_version("httpx"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(
        argv,
        description="Benchmark the plugin's request round trip (asgi_http in "
        "sync and async tests) against Starlette's TestClient.",
        hang="a deadlocked portal",
    )
    settings = Settings.from_args(args)
    # The inner run has its own time limit; this one is a backstop.
    with watchdog(args.timeout + 60):
        machine = machine_info(versions())
        try:
            inner = run_inner(settings, args.timeout)
        except InnerRunFailed as error:
            print(f"bench_plugin: {error}", file=sys.stderr)
            return 1
    workload = workload_result(inner.records)
    cost = hand_off(workload)
    notes = [
        validation_note(inner.header),
        "one pytest run in a subprocess; each measurement is one test, using "
        "the plugin's fixtures as a user's test does",
    ]
    print_header("bench_plugin", machine, settings, notes)
    report = PluginReport(machine, settings, notes, [workload], cost, inner.header)
    print_workloads(
        report.workloads,
        settings.repeat,
        unit="request",
        reading=", so above 1 means b is faster",
    )
    print()
    print_hand_off(cost, settings.repeat)
    save_json(report, args.json)
    return exit_status(missed_targets(report.workloads), args)


if __name__ == "__main__":
    sys.exit(main())
