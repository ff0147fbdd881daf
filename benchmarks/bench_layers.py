"""Side-by-side benchmark: asgiref_core's in-memory channel layer vs Django Channels'.

What is measured (every figure is wall-clock time per operation), on
``asgiref_core.inmemory.InMemoryChannelLayer`` and Django Channels 4's
``channels.layers.InMemoryChannelLayer``, both with their defaults (capacity
100, expiry 60 s), and a small flat message (``{"type": ..., "text": ...}``):

* **send+receive, empty layer.** One operation is
  ``await layer.send(c, msg); await layer.receive(c)`` on one channel of a
  layer holding nothing else. The message is already queued when ``receive``
  is called, so nothing waits.
* **send+receive, 2,000 other channels.** The same operation on a layer where
  2,000 other channels each hold one message, queued before the clock starts
  and left there. Channels' ``receive`` looks at every channel for expired
  messages, so its cost grows with them; ours should not.
* **asgiref_core vs other channels.** Ours alone, the same operation with 0,
  2,000 and 20,000 other channels each holding a message, to show that the
  cost stays flat.
* **group_send to 1,000 members.** A group of 1,000 channels, nobody
  receiving; one operation is ``await layer.group_send(group, msg)``, which
  queues one message on each member. Only the ``group_send`` calls are timed:
  at most 50 of them run back to back (a member then holds at most 50
  messages, under the capacity of 100), then, outside the clock, the layer is
  flushed and the 1,000 members are added again.
* **Cross-thread ping-pong.** Two event loops in two threads: loop A (the main
  thread) sends on ``bench.b``; an echo task on loop B (a second thread)
  receives it and sends it back on ``bench.a``; loop A receives it. One
  operation is the round trip. ``asgiref_core``'s layer against a bare
  hand-off doing the same ping-pong with no layer: one asyncio future per
  side, resolved from the other thread through ``loop.call_soon_threadsafe``.
  Channels' layer is not in this comparison: it keeps ``asyncio.Queue``
  objects, which belong to one event loop and are not thread-safe, so it
  cannot carry messages between loops. It runs twice: with both threads
  pinned to one CPU (on Linux), where a wake-up is a context switch and the
  figures show what the layer adds to the hand-off; and with the threads
  free, where the scheduler's placement of the two threads (same CPU or not)
  decides most of the time and changes every few seconds, so that row has no
  target.

Per-measurement set-up and tear-down (building the layer, filling the other
channels, adding group members, starting and stopping the second thread)
happen outside the clock. After each measurement the script checks what was
received and fails if a task is left pending.

Method, as in the other benchmarks here: everything runs in one process;
every subject gets its own long-lived event loop (an ``asyncio.Runner``); for
each workload every subject is warmed up, then the workload is repeated R
times (``--repeat``), each repetition measuring every subject once,
alternating the order. A measurement is N operations timed with
``time.perf_counter_ns``; the loop overhead is included and nothing is
subtracted. The cyclic garbage collector is off while timing and runs between
measurements; the objects it then frees are reported per operation.

Reported: the median time per operation of each subject; for each comparison
the ratio of the medians and the range of the per-repetition ratios; PASS/MISS
against the target where the comparison has one.

Run ``python benchmarks/bench_layers.py --help`` for the options; see
``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any

import channels.layers  # type: ignore[import-untyped]
from _harness import (
    Comparison,
    Measure,
    Report,
    Settings,
    Subject,
    Workload,
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
    import asgiref_core.inmemory
except ImportError as exc:  # fail loudly: this benchmark is pointless without it
    _msg = (
        f"cannot import asgiref_core.inmemory: {exc}. The benchmark needs it; "
        "from a checkout, install the project with "
        '.venv/bin/pip install -e ".[benchmark]"'
    )
    raise ImportError(_msg) from exc

Message = dict[str, Any]
#: Builds a fresh layer with its defaults. Channels' layer is untyped.
LayerFactory = Callable[[], Any]

CHANNELS_LAYER: LayerFactory = channels.layers.InMemoryChannelLayer
OURS_LAYER: LayerFactory = asgiref_core.inmemory.InMemoryChannelLayer

NOTES = (
    "Channels' InMemoryChannelLayer is built directly; it reads no Django "
    "setting, so Django settings are not configured",
    "cross-thread ping-pong: Channels' layer is not measured; its "
    "asyncio.Queue objects belong to one event loop and are not thread-safe",
)

MESSAGE: Message = {"type": "bench.message", "text": "hello"}
CHANNEL = "bench.target"
GROUP = "bench.group"
MEMBERS = 1_000
# group_sends between two drains: a member then holds at most this many
# messages, under the default capacity of 100.
GROUP_BATCH = 50
PING = "bench.b"  # loop A sends here, loop B receives
PONG = "bench.a"  # loop B sends here, loop A receives
BARE = "bare hand-off (reference)"

# --------------------------------------------------------------------------- #
# Helpers.
# --------------------------------------------------------------------------- #


async def _fill(layer: Any, others: int) -> None:
    """Queue one message on each of ``others`` channels besides ``CHANNEL``."""
    for i in range(others):
        await layer.send(f"bench.other.{i}", MESSAGE)


# --------------------------------------------------------------------------- #
# Workload bodies.
# --------------------------------------------------------------------------- #


def _send_receive(subject: str, make_layer: LayerFactory, others: int) -> Measure:
    """``send`` then ``receive`` on one channel, ``others`` channels holding one."""

    def measure(runner: asyncio.Runner, n: int) -> int:
        async def run() -> int:
            layer = make_layer()
            await _fill(layer, others)
            msg = MESSAGE
            await layer.send(CHANNEL, msg)
            expect(subject, await layer.receive(CHANNEL), msg)
            start = time.perf_counter_ns()
            for _ in range(n):
                await layer.send(CHANNEL, msg)
                got = await layer.receive(CHANNEL)
            elapsed = time.perf_counter_ns() - start
            expect(subject, got, msg)
            if others:  # the other channels still hold their message
                other = await asyncio.wait_for(layer.receive("bench.other.0"), 5)
                expect(subject, other, msg)
            await settle(subject)
            return elapsed

        return runner.run(run())

    return measure


def _group_send(subject: str, make_layer: LayerFactory) -> Measure:
    """``group_send`` to ``MEMBERS`` channels; only the group_sends are timed."""

    def measure(runner: asyncio.Runner, n: int) -> int:
        async def run() -> int:
            layer = make_layer()
            members = [f"bench.member.{i}" for i in range(MEMBERS)]
            msg = MESSAGE
            elapsed = 0
            done = 0
            while done < n:
                # Drain outside the clock: nothing queued, every member back.
                await layer.flush()
                for name in members:
                    await layer.group_add(GROUP, name)
                batch = min(GROUP_BATCH, n - done)
                start = time.perf_counter_ns()
                for _ in range(batch):
                    await layer.group_send(GROUP, msg)
                elapsed += time.perf_counter_ns() - start
                done += batch
            # The first and last members got every message of the last batch.
            for name in (members[0], members[-1]):
                for _ in range(batch):
                    got = await asyncio.wait_for(layer.receive(name), 5)
                    expect(subject, got, msg)
            await layer.flush()
            await settle(subject)
            return elapsed

        return runner.run(run())

    return measure


def _resolve(future: asyncio.Future[Message], message: Message) -> None:
    # Runs on the future's loop.
    if not future.done():
        future.set_result(message)


Echo = Callable[[Callable[[], None]], Coroutine[Any, Any, None]]


class _LoopThread:
    """A second event loop in its own thread, running one coroutine until exit.

    ``echo(ready)`` runs on that loop; it calls ``ready()`` once loop A may
    send to it. Leaving the ``with`` block cancels it and joins the thread,
    re-raising anything it raised.
    """

    def __init__(self, echo: Echo) -> None:
        self._echo = echo
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="bench-layers-loop-b", daemon=True
        )

    def _run(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            await self._echo(self._ready.set)

        try:
            with asyncio.Runner() as runner:
                runner.run(body())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the main thread
            self._error = exc
        finally:
            self._ready.set()  # never leave __enter__ waiting

    def __enter__(self) -> _LoopThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
        if self._thread.is_alive():
            msg = "the loop-B thread did not stop within 10 s after being cancelled"
            raise RuntimeError(msg)
        if self._error is not None:
            raise self._error


def cross_thread_layer(runner: asyncio.Runner, n: int) -> int:
    """The ping-pong through ``asgiref_core``'s layer."""
    subject = "asgiref_core cross-thread"

    async def run() -> int:
        layer = OURS_LAYER()

        async def echo(ready: Callable[[], None]) -> None:
            ready()  # messages queue until the receive below comes
            while True:
                message = await layer.receive(PING)
                await layer.send(PONG, message)

        msg = MESSAGE
        with _LoopThread(echo):
            await layer.send(PING, msg)
            expect(subject, await layer.receive(PONG), msg)
            start = time.perf_counter_ns()
            for _ in range(n):
                await layer.send(PING, msg)
                got = await layer.receive(PONG)
            elapsed = time.perf_counter_ns() - start
        expect(subject, got, msg)
        await settle(subject)
        return elapsed

    return runner.run(run())


class _BarePingPong:
    """The same ping-pong with no layer: a future per side, resolved cross-thread.

    Strict alternation makes this safe: loop A makes its future before it
    sends, and loop B makes its next future before it answers.
    """

    def __init__(self, loop_a: asyncio.AbstractEventLoop) -> None:
        self.loop_a = loop_a
        self.to_a: asyncio.Future[Message] = loop_a.create_future()

    async def echo(self, ready: Callable[[], None]) -> None:
        """Loop B: answer every message with the same message."""
        loop_b = self.loop_b = asyncio.get_running_loop()
        self.to_b: asyncio.Future[Message] = loop_b.create_future()
        ready()
        while True:
            message = await self.to_b
            self.to_b = loop_b.create_future()
            self.loop_a.call_soon_threadsafe(_resolve, self.to_a, message)

    async def round_trip(self, message: Message) -> Message:
        """Loop A: send ``message`` to loop B, wait for the answer."""
        self.to_a = self.loop_a.create_future()
        self.loop_b.call_soon_threadsafe(_resolve, self.to_b, message)
        return await self.to_a


def cross_thread_bare(runner: asyncio.Runner, n: int) -> int:
    """The ping-pong with asyncio futures and ``call_soon_threadsafe`` alone."""

    async def run() -> int:
        pair = _BarePingPong(asyncio.get_running_loop())
        msg = MESSAGE
        with _LoopThread(pair.echo):
            expect(BARE, await pair.round_trip(msg), msg)
            start = time.perf_counter_ns()
            for _ in range(n):
                got = await pair.round_trip(msg)
            elapsed = time.perf_counter_ns() - start
        expect(BARE, got, msg)
        await settle(BARE)
        return elapsed

    return runner.run(run())


def _one_cpu() -> int | None:
    """The CPU for the one-CPU ping-pong; ``None`` where threads cannot be pinned."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    return min(os.sched_getaffinity(0))


ONE_CPU = _one_cpu()


def _on_one_cpu(measure: Measure) -> Measure:
    """``measure`` with the main thread, and so loop B's thread, on one CPU.

    A thread starts with its creator's CPU affinity, so loop B's thread,
    started during the measurement, shares the main thread's CPU. The main
    thread's affinity is restored afterwards.
    """

    def pinned(runner: asyncio.Runner, n: int) -> int:
        if ONE_CPU is None:
            return measure(runner, n)
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {ONE_CPU})
        try:
            return measure(runner, n)
        finally:
            os.sched_setaffinity(0, allowed)

    return pinned


# --------------------------------------------------------------------------- #
# Workload table.
# --------------------------------------------------------------------------- #


# A reference subject uses no channel layer: it is there for context only.
WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "send+receive, empty layer",
        20_000,
        (
            Subject("channels", _send_receive("channels", CHANNELS_LAYER, 0)),
            Subject("asgiref_core", _send_receive("asgiref_core", OURS_LAYER, 0)),
        ),
        (Comparison("channels", "asgiref_core", 1.0),),
    ),
    Workload(
        "send+receive, 2,000 other channels",
        20_000,
        (
            # About 50 times slower than ours: a hundredth of the N.
            Subject(
                "channels",
                _send_receive("channels", CHANNELS_LAYER, 2_000),
                n_factor=0.01,
            ),
            Subject("asgiref_core", _send_receive("asgiref_core", OURS_LAYER, 2_000)),
        ),
        (Comparison("channels", "asgiref_core", 20.0),),
    ),
    Workload(
        "asgiref_core send+receive vs other channels",
        # Enough operations for the 20,000-channel layer to compact its
        # deadline queue (every ~21,000 operations) about three times.
        60_000,
        (
            Subject("0 others", _send_receive("0 others", OURS_LAYER, 0)),
            Subject("2,000 others", _send_receive("2,000 others", OURS_LAYER, 2_000)),
            Subject(
                "20,000 others", _send_receive("20,000 others", OURS_LAYER, 20_000)
            ),
        ),
        (
            Comparison("2,000 others", "0 others", 1.25, at_most=True),
            Comparison("20,000 others", "0 others", 1.25, at_most=True),
        ),
    ),
    Workload(
        f"group_send to {MEMBERS:,} members",
        500,
        (
            # About 30 times slower than ours.
            Subject("channels", _group_send("channels", CHANNELS_LAYER), 0.05),
            Subject("asgiref_core", _group_send("asgiref_core", OURS_LAYER)),
        ),
        (Comparison("channels", "asgiref_core", 10.0),),
    ),
    Workload(
        "cross-thread ping-pong, one CPU",
        2_000,
        (
            Subject("asgiref_core", _on_one_cpu(cross_thread_layer)),
            Subject(BARE, _on_one_cpu(cross_thread_bare), reference=True),
        ),
        (Comparison("asgiref_core", BARE, 2.0, at_most=True),),
    ),
    Workload(
        # No target: where the scheduler puts the two threads decides most of
        # the time (see benchmarks/README.md).
        "cross-thread ping-pong, threads free",
        2_000,
        (
            Subject("asgiref_core", cross_thread_layer),
            Subject(BARE, cross_thread_bare, reference=True),
        ),
        (Comparison("asgiref_core", BARE),),
    ),
)

# --------------------------------------------------------------------------- #
# Entry point.
# --------------------------------------------------------------------------- #


def versions() -> dict[str, str]:
    return {
        "asgiref_core": module_version(asgiref_core),
        "channels": package_version("channels"),
        "django": package_version("django"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(
        argv,
        description="Benchmark asgiref_core's in-memory channel layer against "
        "Django Channels' InMemoryChannelLayer.",
        hang="a deadlocked cross-thread hand-off",
    )
    settings = Settings.from_args(args)
    with watchdog(args.timeout):
        machine = machine_info(versions())
        notes = [
            *NOTES,
            "cross-thread ping-pong, one CPU: "
            + (
                f"both threads pinned to CPU {ONE_CPU} while measuring"
                if ONE_CPU is not None
                else "threads cannot be pinned on this platform, so they are free"
            ),
        ]
        print_header("bench_layers", machine, settings, notes)
        report = Report(machine, settings, notes, run_workloads(WORKLOADS, settings))

    print_workloads(report.workloads, settings.repeat)
    save_json(report, args.json)
    return exit_status(missed_targets(report.workloads), args)


if __name__ == "__main__":
    sys.exit(main())
