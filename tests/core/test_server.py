"""StatelessServer in asgiref_core.server, next to asgiref's where they can meet."""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asgiref_core.server import StatelessServer

pytestmark = pytest.mark.timeout(20)

Script = Callable[[Any], Awaitable[None]]


# --- servers and applications ---------------------------------------------------


def server_class(base: type) -> type:
    """A real subclass of ``base``: a script feeds it, outputs are collected.

    ``handle()`` runs the script given to the constructor; ``application_send``
    records ``(scope id, message)``; ``application_exception`` records its
    arguments before logging as the base class does.
    """

    class Server(base):  # type: ignore[misc, valid-type]
        application_checker_interval = 0.01

        def __init__(
            self, application: Any, script: Script | None = None, **kwargs: Any
        ) -> None:
            super().__init__(application, **kwargs)
            self.script = script
            self.sent: list[tuple[Any, dict[str, Any]]] = []
            self.reported: list[tuple[BaseException, dict[str, Any]]] = []

        async def handle(self) -> None:
            assert self.script is not None
            await self.script(self)

        async def application_send(self, scope: Any, message: Any) -> None:
            self.sent.append((scope["id"], message))

        async def application_exception(
            self, exception: BaseException, application_details: dict[str, Any]
        ) -> None:
            self.reported.append((exception, application_details))
            await super().application_exception(exception, application_details)

    return Server


Server = server_class(StatelessServer)


def scope(scope_id: str) -> dict[str, Any]:
    return {"type": "test", "id": scope_id}


def feed(server: Any, scope_id: str, text: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = server.get_or_create_application_instance(
        scope_id, scope(scope_id)
    )
    queue.put_nowait({"type": "test.message", "text": text})
    return queue


async def echo(scope: Any, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": "test.echo", "text": message["text"]})


async def idle(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.Event().wait()


async def crash_on_first_message(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    raise ValueError(f"cannot handle {message['text']!r}")


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"timed out waiting until {what}")


async def within(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await asyncio.wait_for(awaitable, 5)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


async def cancel_leftovers() -> None:
    """Cancel and await what a server left running (asgiref leaves tasks)."""
    tasks = other_tasks()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def asyncio_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()
    return [r.getMessage() for r in caplog.records if r.name == "asyncio"]


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``time.time()`` advances by one second per call: no two stamps tie."""
    ticks = itertools.count(1_000_000)
    monkeypatch.setattr(time, "time", lambda: float(next(ticks)))


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``time.time()`` never moves: every stamp ties."""
    monkeypatch.setattr(time, "time", lambda: 1_000_000.0)


def asgiref_server_class() -> type:
    module = pytest.importorskip("asgiref.server")
    return server_class(module.StatelessServer)


# --- the API ---------------------------------------------------------------------


def test_public_api_matches_asgiref() -> None:
    theirs = pytest.importorskip("asgiref.server").StatelessServer
    names = [
        "__init__",
        "run",
        "arun",
        "handle",
        "application_send",
        "get_or_create_application_instance",
        "delete_oldest_application_instance",
        "delete_application_instance",
        "application_checker",
        "application_exception",
    ]
    for name in names:
        ours_method = getattr(StatelessServer, name)
        their_method = getattr(theirs, name)
        ours_params = [
            (p.name, p.kind, p.default)
            for p in inspect.signature(ours_method).parameters.values()
        ]
        their_params = [
            (p.name, p.kind, p.default)
            for p in inspect.signature(their_method).parameters.values()
        ]
        assert ours_params == their_params, name
        assert inspect.iscoroutinefunction(ours_method) == (
            inspect.iscoroutinefunction(their_method)
        ), name
    assert StatelessServer.application_checker_interval == 0.1
    assert theirs.application_checker_interval == 0.1


def test_constructor_sets_the_documented_attributes() -> None:
    server = StatelessServer(echo, max_applications=7)
    assert server.application is echo
    assert server.max_applications == 7
    assert server.application_instances == {}
    assert StatelessServer(echo).max_applications == 1000


@pytest.mark.parametrize("value", [0, -1])
def test_max_applications_below_one_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match=rf"max_applications={value}\).*at least 1"):
        StatelessServer(echo, max_applications=value)


@pytest.mark.parametrize("value", ["10", 2.5, True, None])
def test_max_applications_must_be_an_int(value: object) -> None:
    with pytest.raises(TypeError, match=r"max_applications must be an int"):
        StatelessServer(echo, max_applications=value)  # type: ignore[arg-type]


# --- serving ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_handle_feeds_instances_and_application_send_collects_output() -> None:
    started: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(scope["id"])
        await echo(scope, receive, send)

    async def script(server: Any) -> None:
        feed(server, "alice", "hi")
        feed(server, "bob", "hello")
        feed(server, "alice", "again")
        await wait_until(lambda: len(server.sent) == 3, "three echoes arrived")

    server = Server(app, script)
    await server.arun()

    assert started == ["alice", "bob"]
    assert sorted(server.sent, key=lambda item: item[0]) == [
        ("alice", {"type": "test.echo", "text": "hi"}),
        ("alice", {"type": "test.echo", "text": "again"}),
        ("bob", {"type": "test.echo", "text": "hello"}),
    ]
    assert server.reported == []


@pytest.mark.asyncio
async def test_an_instance_is_recorded_with_its_queue_future_scope_and_time(
    ticking_clock: None,
) -> None:
    async def script(server: Any) -> None:
        queue = server.get_or_create_application_instance("a", scope("a"))
        details = server.application_instances["a"]
        assert set(details) == {"input_queue", "future", "scope", "last_used"}
        assert details["input_queue"] is queue
        assert isinstance(queue, asyncio.Queue)
        assert isinstance(details["future"], asyncio.Future)
        assert details["scope"] == scope("a")
        assert isinstance(details["last_used"], float)

    await Server(idle, script).arun()


@pytest.mark.asyncio
async def test_reuse_returns_the_same_queue_and_updates_last_used(
    ticking_clock: None,
) -> None:
    async def script(server: Any) -> None:
        first = server.get_or_create_application_instance("a", scope("a"))
        created = server.application_instances["a"]["last_used"]
        again = server.get_or_create_application_instance("a", {"ignored": True})
        assert again is first
        assert server.application_instances["a"]["last_used"] > created
        # The scope given on reuse is ignored; the instance keeps its own.
        assert server.application_instances["a"]["scope"] == scope("a")
        assert len(server.application_instances) == 1

    await Server(idle, script).arun()


@pytest.mark.asyncio
async def test_asgi2_application_is_adapted() -> None:
    class Asgi2App:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            message = await receive()
            await send({"type": "test.echo", "text": message["text"].upper()})

    async def script(server: Any) -> None:
        feed(server, "a", "quiet")
        await wait_until(lambda: server.sent, "the ASGI 2 application answered")

    server = Server(Asgi2App, script)
    await server.arun()
    assert server.sent == [("a", {"type": "test.echo", "text": "QUIET"})]
    assert server.reported == []


@pytest.mark.asyncio
async def test_asgi3_instance_with_async_call_is_used_as_is() -> None:
    class Asgi3App:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await echo(scope, receive, send)

    async def script(server: Any) -> None:
        feed(server, "a", "x")
        await wait_until(lambda: server.sent, "the application answered")

    server = Server(Asgi3App(), script)
    await server.arun()
    assert server.sent == [("a", {"type": "test.echo", "text": "x"})]


# --- eviction --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_eviction_removes_the_least_recently_used(ticking_clock: None) -> None:
    async def script(server: Any) -> None:
        server.get_or_create_application_instance("a", scope("a"))
        server.get_or_create_application_instance("b", scope("b"))
        server.get_or_create_application_instance("a", scope("a"))  # a is fresher
        b_future = server.application_instances["b"]["future"]
        server.get_or_create_application_instance("c", scope("c"))
        assert list(server.application_instances) == ["a", "c"]
        assert b_future.cancelled() or b_future.cancelling()
        server.get_or_create_application_instance("d", scope("d"))
        assert list(server.application_instances) == ["c", "d"]

    await Server(idle, script, max_applications=2).arun()


@pytest.mark.asyncio
async def test_ties_in_last_used_fall_back_to_order_of_use(
    frozen_clock: None,
) -> None:
    async def script(server: Any) -> None:
        server.get_or_create_application_instance("a", scope("a"))
        server.get_or_create_application_instance("b", scope("b"))
        server.get_or_create_application_instance("a", scope("a"))
        server.get_or_create_application_instance("c", scope("c"))
        # Every timestamp is equal, yet b, not a, was used least recently.
        assert sorted(server.application_instances) == ["a", "c"]

    await Server(idle, script, max_applications=2).arun()


@pytest.mark.asyncio
async def test_count_never_exceeds_max_applications() -> None:
    counts: list[int] = []

    async def script(server: Any) -> None:
        for number in range(10):
            feed(server, f"s{number}", "x")
            counts.append(len(server.application_instances))

    await Server(idle, script, max_applications=3).arun()
    assert counts == [1, 2, 3, 3, 3, 3, 3, 3, 3, 3]


@pytest.mark.asyncio
async def test_asgiref_keeps_one_more_than_max_applications(
    ticking_clock: None,
) -> None:
    """The limit is where asgiref's own docstring puts it, not one above.

    asgiref makes room only once the count is already above the limit, so with
    ``n - 1`` it evicts exactly what this server evicts with ``n``.
    """
    theirs_class = asgiref_server_class()
    sequence = ["a", "b", "a", "c", "d", "b", "e"]

    def replay(server: Any) -> list[list[str]]:
        states = []
        for scope_id in sequence:
            server.get_or_create_application_instance(scope_id, scope(scope_id))
            states.append(sorted(server.application_instances))
        return states

    try:
        ours = replay(Server(idle, max_applications=2))
        theirs_same_limit = replay(theirs_class(idle, max_applications=2))
        theirs_one_less = replay(theirs_class(idle, max_applications=1))
    finally:
        await cancel_leftovers()

    assert max(len(state) for state in ours) == 2
    assert max(len(state) for state in theirs_same_limit) == 3
    assert ours == theirs_one_less


@pytest.mark.asyncio
async def test_reuse_never_evicts_the_instance_being_reused() -> None:
    async def script(server: Any) -> None:
        first = server.get_or_create_application_instance("a", scope("a"))
        future = server.application_instances["a"]["future"]
        for _ in range(3):
            assert server.get_or_create_application_instance("a", scope("a")) is first
        assert not future.cancelled()
        assert list(server.application_instances) == ["a"]
        server.get_or_create_application_instance("b", scope("b"))
        assert list(server.application_instances) == ["b"]

    await Server(idle, script, max_applications=1).arun()


@pytest.mark.asyncio
async def test_evicted_instance_is_cancelled_awaited_and_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []

    async def tidy(scope: Any, receive: Any, send: Any) -> None:
        try:
            await receive()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # clean-up that needs the loop
            events.append(f"{scope['id']} cleaned up")
            raise

    async def script(server: Any) -> None:
        feed(server, "a", "x")
        await asyncio.sleep(0)
        evicted = server.application_instances["a"]["future"]
        feed(server, "b", "y")
        assert "a" not in server.application_instances
        # The checker collects it while the server keeps running.
        await wait_until(evicted.done, "the evicted instance finished")
        await asyncio.sleep(server.application_checker_interval * 3)
        assert evicted.cancelled()
        assert events == ["a cleaned up"]

    with caplog.at_level(logging.DEBUG):
        server = Server(tidy, script, max_applications=1)
        await server.arun()
    assert events == ["a cleaned up", "b cleaned up"]
    assert server.reported == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.asyncio
async def test_delete_oldest_override_that_deletes_nothing_is_an_error() -> None:
    class Stubborn(Server):  # type: ignore[misc, valid-type]
        def delete_oldest_application_instance(self) -> None:
            pass

    async def script(server: Any) -> None:
        server.get_or_create_application_instance("a", scope("a"))
        with pytest.raises(RuntimeError, match=r"Stubborn\.delete_oldest.*removed no"):
            server.get_or_create_application_instance("b", scope("b"))

    await Stubborn(idle, script, max_applications=1).arun()


# --- deletion --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_delete_application_instance_is_synchronous_and_reaped_later() -> None:
    async def script(server: Any) -> None:
        server.get_or_create_application_instance("a", scope("a"))
        future = server.application_instances["a"]["future"]
        assert server.delete_application_instance("a") is None
        assert server.application_instances == {}
        assert not future.done()  # cancelled, but not yet run to its end
        await wait_until(future.done, "the deleted instance finished")
        assert future.cancelled()

    server = Server(idle, script)
    await server.arun()
    assert server.reported == []


@pytest.mark.asyncio
async def test_delete_unknown_scope_id_raises_key_error_like_asgiref() -> None:
    theirs_class = asgiref_server_class()
    with pytest.raises(KeyError):
        theirs_class(idle).delete_application_instance("nope")
    with pytest.raises(KeyError, match=r"no application instance with scope_id 'nope'"):
        Server(idle).delete_application_instance("nope")


def test_delete_oldest_with_no_instances_does_nothing() -> None:
    server = Server(idle)
    server.delete_oldest_application_instance()
    assert server.application_instances == {}


@pytest.mark.asyncio
async def test_deleted_instance_failing_on_cancellation_is_reported() -> None:
    async def fails_to_stop(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("clean-up failed") from None

    async def script(server: Any) -> None:
        server.get_or_create_application_instance("a", scope("a"))
        await asyncio.sleep(0)
        server.delete_application_instance("a")
        await wait_until(lambda: server.reported, "the failure was reported")

    server = Server(fails_to_stop, script)
    await server.arun()
    [(exception, details)] = server.reported
    assert isinstance(exception, RuntimeError)
    assert details["scope"] == scope("a")


# --- crashes ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_crashed_instance_is_reaped_reported_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(server: Any) -> None:
        feed(server, "a", "poison")
        await wait_until(lambda: "a" not in server.application_instances, "a reaped")
        # The server carries on: the same scope id gets a fresh instance.
        feed(server, "a", "poison again")
        await wait_until(lambda: len(server.reported) == 2, "both crashes reported")

    server = Server(crash_on_first_message, script)
    with caplog.at_level(logging.ERROR):
        await server.arun()

    assert [str(exception) for exception, _ in server.reported] == [
        "cannot handle 'poison'",
        "cannot handle 'poison again'",
    ]
    exception, details = server.reported[0]
    assert isinstance(exception, ValueError)
    assert set(details) == {"input_queue", "future", "scope", "last_used"}
    assert details["scope"] == scope("a")
    assert details["future"].exception() is exception

    [first, _] = [r for r in caplog.records if r.name == "asgiref_core.server"]
    assert first.levelno == logging.ERROR
    assert first.getMessage() == "Exception inside application: cannot handle 'poison'"
    assert first.exc_info is not None
    assert first.exc_info[1] is exception
    assert "crash_on_first_message" in caplog.text  # the traceback is logged


@pytest.mark.asyncio
async def test_application_exception_gets_what_asgiref_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    theirs_class = asgiref_server_class()

    async def script(server: Any) -> None:
        feed(server, "a", "poison")
        await wait_until(lambda: server.reported, "the crash was reported")

    ours = Server(crash_on_first_message, script)
    theirs = theirs_class(crash_on_first_message, script)
    with caplog.at_level(logging.ERROR):
        await ours.arun()
        try:
            await theirs.arun()
        finally:
            await cancel_leftovers()

    for server in (ours, theirs):
        [(exception, details)] = server.reported
        assert type(exception) is ValueError
        assert str(exception) == "cannot handle 'poison'"
        assert set(details) == {"input_queue", "future", "scope", "last_used"}
        assert details["scope"] == scope("a")
    messages = [r.getMessage() for r in caplog.records]
    assert (
        sum("Exception inside application: cannot handle" in m for m in messages) == 2
    )


@pytest.mark.asyncio
async def test_crash_just_before_shutdown_is_still_reported() -> None:
    async def script(server: Any) -> None:
        feed(server, "a", "late")
        future = server.application_instances["a"]["future"]
        await wait_until(future.done, "the instance crashed")

    server = Server(crash_on_first_message, script)
    server.application_checker_interval = 60  # the checker never gets a turn
    await server.arun()
    [(exception, _)] = server.reported
    assert str(exception) == "cannot handle 'late'"


@pytest.mark.asyncio
async def test_instance_cancelled_from_outside_is_reaped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(server: Any) -> None:
        feed(server, "a", "x")
        server.application_instances["a"]["future"].cancel()
        await wait_until(lambda: "a" not in server.application_instances, "a reaped")
        # The checker survived: a crash afterwards is still reported.
        feed(server, "b", "y")
        await wait_until(lambda: server.reported, "b's crash was reported")

    server = Server(crash_on_first_message, script)
    with caplog.at_level(logging.ERROR):
        await server.arun()
    assert [str(e) for e, _ in server.reported] == ["cannot handle 'y'"]


@pytest.mark.asyncio
async def test_failing_application_exception_stops_the_server() -> None:
    handle_cancelled = asyncio.Event()

    class Fragile(Server):  # type: ignore[misc, valid-type]
        async def application_exception(
            self, exception: BaseException, application_details: dict[str, Any]
        ) -> None:
            raise LookupError("reporting is down")

    async def script(server: Any) -> None:
        feed(server, "a", "poison")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handle_cancelled.set()
            raise

    with pytest.raises(LookupError, match="reporting is down"):
        await Fragile(crash_on_first_message, script).arun()
    assert handle_cancelled.is_set()
    assert other_tasks() == set()


# --- shutdown --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_shutdown_cancels_and_awaits_every_instance(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleaned: list[str] = []
    futures: list[asyncio.Future[Any]] = []

    async def tidy(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)
            cleaned.append(scope["id"])

    async def script(server: Any) -> None:
        for scope_id in ("a", "b", "c"):
            feed(server, scope_id, "x")
            futures.append(server.application_instances[scope_id]["future"])
        await asyncio.sleep(0)

    server = Server(tidy, script)
    await server.arun()

    assert sorted(cleaned) == ["a", "b", "c"]
    assert all(future.cancelled() for future in futures)
    assert server.application_instances == {}
    assert other_tasks() == set()
    assert asyncio_errors(caplog) == []
    assert server.reported == []


@pytest.mark.asyncio
async def test_instance_started_during_shutdown_is_stopped_too() -> None:
    servers: list[Any] = []
    successors: list[asyncio.Future[Any]] = []

    async def hands_over(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            if scope["id"] == "a":
                server = servers[0]
                server.get_or_create_application_instance("b", {"id": "b"})
                successors.append(server.application_instances["b"]["future"])

    async def script(server: Any) -> None:
        feed(server, "a", "x")
        await asyncio.sleep(0)

    server = Server(hands_over, script)
    servers.append(server)
    await server.arun()
    [successor] = successors
    assert successor.cancelled()
    assert server.application_instances == {}
    assert other_tasks() == set()


@pytest.mark.asyncio
async def test_asgiref_leaves_tasks_pending_where_this_server_does_not() -> None:
    theirs_class = asgiref_server_class()

    async def script(server: Any) -> None:
        feed(server, "a", "x")

    await Server(idle, script).arun()
    assert other_tasks() == set()

    theirs = theirs_class(idle, script)
    try:
        await theirs.arun()
        # The checker and the instance are still running.
        assert len(other_tasks()) == 2
    finally:
        await cancel_leftovers()


@pytest.mark.asyncio
async def test_handle_raising_propagates_after_shutdown() -> None:
    async def script(server: Any) -> None:
        feed(server, "a", "x")
        raise OSError("the broker went away")

    server = Server(idle, script)
    with pytest.raises(OSError, match="the broker went away"):
        await server.arun()
    assert server.application_instances == {}
    assert other_tasks() == set()


@pytest.mark.asyncio
async def test_cancelling_arun_propagates_and_leaves_nothing_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = asyncio.Event()
    handle_cancelled = asyncio.Event()
    futures: list[asyncio.Future[Any]] = []

    async def script(server: Any) -> None:
        for scope_id in ("a", "b"):
            feed(server, scope_id, "x")
            futures.append(server.application_instances[scope_id]["future"])
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handle_cancelled.set()
            raise

    server = Server(echo, script)
    task = asyncio.ensure_future(server.arun())
    await within(running.wait(), "the instances are running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(task, "arun finished")

    assert task.cancelled()
    assert handle_cancelled.is_set()
    assert all(future.done() for future in futures)
    assert server.application_instances == {}
    assert other_tasks() == set()
    assert asyncio_errors(caplog) == []


@pytest.mark.asyncio
async def test_cancelling_again_during_shutdown_cancels_slow_clean_up() -> None:
    cleaning = asyncio.Event()
    running = asyncio.Event()
    futures: list[asyncio.Future[Any]] = []

    async def slow_to_stop(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cleaning.set()
            await asyncio.Event().wait()  # only a second cancellation ends this

    async def script(server: Any) -> None:
        feed(server, "a", "x")
        futures.append(server.application_instances["a"]["future"])
        running.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(Server(slow_to_stop, script).arun())
    try:
        await within(running.wait(), "the instance is running")
        await asyncio.sleep(0)
        task.cancel()
        await within(cleaning.wait(), "the instance's clean-up started")
        assert not task.done()  # shutdown waits for the instance's clean-up
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await within(task, "arun finished")
    finally:
        for future in futures:
            future.cancel()  # should it still run, let it end with the test
    assert futures[0].cancelled()
    assert other_tasks() == set()


@pytest.mark.asyncio
async def test_cancelling_arun_during_shutdown_still_raises_cancelled_error() -> None:
    cleaning = asyncio.Event()
    release = asyncio.Event()

    async def slow_to_stop(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await release.wait()

    async def script(server: Any) -> None:
        feed(server, "a", "x")
        await asyncio.sleep(0)

    server = Server(slow_to_stop, script)
    task = asyncio.ensure_future(server.arun())
    try:
        # handle() returned; the shutdown is waiting for the instance.
        await within(cleaning.wait(), "the shutdown began")
        task.cancel()
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await within(task, "arun finished")
    finally:
        release.set()
    assert server.application_instances == {}
    assert other_tasks() == set()


@pytest.mark.asyncio
async def test_handle_failing_on_cancellation_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = asyncio.Event()

    async def script(server: Any) -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise OSError("could not close the socket") from None

    task = asyncio.ensure_future(Server(idle, script).arun())
    await within(running.wait(), "handle() is running")
    task.cancel()
    with caplog.at_level(logging.ERROR), pytest.raises(asyncio.CancelledError):
        await within(task, "arun finished")
    [record] = [r for r in caplog.records if r.name == "asgiref_core.server"]
    assert record.getMessage() == (
        "Server.handle() raised while the server was shutting down"
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "could not close the socket"


# --- methods a subclass must provide ------------------------------------------


@pytest.mark.asyncio
async def test_handle_not_overridden_names_the_class() -> None:
    class Incomplete(StatelessServer):
        pass

    with pytest.raises(
        NotImplementedError, match=r"Incomplete\.handle\(\) is not implemented"
    ):
        await Incomplete(echo).arun()
    assert other_tasks() == set()

    theirs = pytest.importorskip("asgiref.server").StatelessServer
    with pytest.raises(NotImplementedError):
        await theirs(echo).handle()


@pytest.mark.asyncio
async def test_application_send_not_overridden_names_the_class_and_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NoSend(StatelessServer):
        application_checker_interval = 0.01

        async def handle(self) -> None:
            self.get_or_create_application_instance("a", scope("a")).put_nowait(
                {"type": "test.message", "text": "x"}
            )
            await wait_until(lambda: not self.application_instances, "a reaped")

    with caplog.at_level(logging.ERROR):
        await NoSend(echo).arun()
    [record] = [r for r in caplog.records if r.name == "asgiref_core.server"]
    assert record.exc_info is not None
    exception = record.exc_info[1]
    assert isinstance(exception, NotImplementedError)
    assert "NoSend.application_send() is not implemented" in str(exception)
    assert "'test.echo' message" in str(exception)

    with pytest.raises(NotImplementedError, match=r"StatelessServer\.application_send"):
        await StatelessServer(echo).application_send(scope("a"), {"type": "t"})


# --- run() from sync code ---------------------------------------------------------


def test_run_from_sync_code(caplog: pytest.LogCaptureFixture) -> None:
    async def script(server: Any) -> None:
        feed(server, "a", "hi")
        await wait_until(lambda: server.sent, "the echo arrived")

    server = Server(echo, script)
    assert server.run() is None
    assert server.sent == [("a", {"type": "test.echo", "text": "hi"})]
    assert server.application_instances == {}
    assert asyncio_errors(caplog) == []


def test_run_swallows_keyboard_interrupt_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(server: Any) -> None:
        feed(server, "a", "x")
        raise KeyboardInterrupt

    server = Server(idle, script)
    with caplog.at_level(logging.INFO, logger="asgiref_core.server"):
        server.run()
    messages = [
        r.getMessage() for r in caplog.records if r.name == "asgiref_core.server"
    ]
    assert messages == ["Exiting due to Ctrl-C/interrupt"]
    assert server.application_instances == {}
    assert asyncio_errors(caplog) == []


@pytest.mark.skipif(
    signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs Python's own SIGINT handler",
)
def test_run_shuts_down_cleanly_on_sigint(caplog: pytest.LogCaptureFixture) -> None:
    cleaned: list[str] = []

    async def tidy(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(scope["id"])

    async def script(server: Any) -> None:
        feed(server, "a", "x")
        await asyncio.sleep(0)
        signal.raise_signal(signal.SIGINT)
        await asyncio.Event().wait()

    server = Server(tidy, script)
    with caplog.at_level(logging.INFO, logger="asgiref_core.server"):
        server.run()
    assert cleaned == ["a"]
    assert "Exiting due to Ctrl-C/interrupt" in caplog.text
    assert asyncio_errors(caplog) == []
