"""The ``asgi_server`` fixture: StatelessServer subclasses run under test."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

# Shared by the inner test files: an echo application and small servers.
SERVERS = '''
import asyncio

from asgiref_core.server import StatelessServer


async def echo(scope, receive, send):
    """Replies to each message with the scope's user and the text; fails on 'boom'."""
    while True:
        message = await receive()
        if message.get("text") == "boom":
            raise ValueError(f"boom for {scope['user']}")
        text = f"{scope['user']}: {message['text']}"
        await send({"type": "chat.reply", "text": text})


async def shout(scope, receive, send):
    message = await receive()
    await send({"type": "chat.reply", "text": message["text"].upper()})


class EchoServer(StatelessServer):
    """Implements neither handle() nor application_send()."""


def chat(user):
    return {"type": "chat", "user": user}


def said(text):
    return {"type": "chat.message", "text": text}
'''


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        """
    )
    pytester.makepyfile(servers=SERVERS)
    return pytester


def run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_sync_and_async_tests_feed_two_scope_ids(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import pytest
        from servers import EchoServer, chat, echo, said

        pytestmark = pytest.mark.asgi_app(app=echo)

        def test_sync(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("hi"))
            server.send("bob", chat("bob"), said("hello"))
            assert server.receive("bob") == {"type": "chat.reply", "text": "bob: hello"}
            assert server.receive("alice")["text"] == "alice: hi"
            # Later messages reuse the running instance and its scope.
            server.send("alice", message=said("again"))
            assert server.receive("alice")["text"] == "alice: again"
            assert server.receive_nothing("alice")
            assert server.receive_nothing("bob")
            texts = [message["text"] for message in server.sent("alice")]
            assert texts == ["alice: hi", "alice: again"]
            assert sorted(server.server.application_instances) == ["alice", "bob"]
            assert server.running

        @pytest.mark.asyncio
        async def test_async(asgi_server):
            server = asgi_server(EchoServer)
            await server.send("alice", chat("alice"), said("hi"))
            await server.send("bob", chat("bob"), said("hello"))
            assert (await server.receive("bob"))["text"] == "bob: hello"
            assert (await server.receive("alice"))["text"] == "alice: hi"
            await server.send("bob", message=said("more"))
            assert (await server.receive("bob"))["text"] == "bob: more"
            assert await server.receive_nothing("alice")
        """,
    )
    result.assert_outcomes(passed=2)


def test_subclass_handle_and_application_send_keep_working(
    inner: pytest.Pytester,
) -> None:
    result = run(
        inner,
        """
        import asyncio
        import pytest
        from asgiref_core.server import StatelessServer
        from servers import EchoServer, chat, echo, said

        pytestmark = pytest.mark.asgi_app(app=echo)

        class QueueServer(StatelessServer):
            # Reads its work from a queue, delivers to a list: a real protocol.
            def __init__(self, application, max_applications=1000, *, delivered):
                super().__init__(application, max_applications)
                self.incoming = asyncio.Queue()
                self.delivered = delivered

            async def handle(self):
                while True:
                    user, text = await self.incoming.get()
                    queue = self.get_or_create_application_instance(user, chat(user))
                    queue.put_nowait(said(text))

            async def application_send(self, scope, message):
                self.delivered.append((scope["user"], message["text"]))

        class SuperSender(EchoServer):
            async def application_send(self, scope, message):
                await super().application_send(scope, message)

        @pytest.mark.asyncio
        async def test_handle_driven(asgi_server):
            delivered = []
            server = asgi_server(QueueServer, delivered=delivered)
            server.server.incoming.put_nowait(("carol", "from the wire"))
            server.server.incoming.put_nowait(("dave", "also"))
            assert (await server.receive("carol"))["text"] == "carol: from the wire"
            assert (await server.receive("dave"))["text"] == "dave: also"
            # The subclass's own delivery ran as well.
            assert sorted(delivered) == [
                ("carol", "carol: from the wire"),
                ("dave", "dave: also"),
            ]

        def test_not_implemented_delivery_is_skipped(asgi_server):
            server = asgi_server(SuperSender)
            server.send("erin", chat("erin"), said("one"))
            server.send("erin", message=said("two"))
            assert server.receive("erin")["text"] == "erin: one"
            assert server.receive("erin")["text"] == "erin: two"
        """,
    )
    result.assert_outcomes(passed=2)


def test_receive_timeout_names_scope_id_timeout_and_messages(
    inner: pytest.Pytester,
) -> None:
    result = run(
        inner,
        """
        import pytest
        from servers import EchoServer, chat, echo, said

        pytestmark = pytest.mark.asgi_app(app=echo)

        def test_silent(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("hi"))
            assert server.receive("alice")["text"] == "alice: hi"
            server.receive("alice", timeout=0.2)

        @pytest.mark.asyncio
        async def test_unknown(asgi_server):
            server = asgi_server(EchoServer)
            await server.send("alice", chat("alice"), said("hi"))
            await server.receive("nobody", timeout=0.1)

        def test_no_scope(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", message=said("hi"))

        def test_after_stop(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("hi"))
            server.stop()
            assert server.receive("alice")["text"] == "alice: hi"
            server.receive("alice", timeout=30)
        """,
    )
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "E *TimeoutError: asgi_server: waited 0.2s for a message from the "
            "application instance for scope id 'alice' of EchoServer, but none "
            "came; its instance is still running. It had sent 1 message(s), all "
            "already received; the conversation so far:",
            "E * to app *{'type': 'chat.message', 'text': 'hi'}",
            "E * from app *{'type': 'chat.reply', 'text': 'alice: hi'}",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E *TimeoutError: asgi_server: waited 0.1s for a message from the "
            "application instance for scope id 'nobody' of EchoServer, but none "
            "came; no instance was ever started for it (scope ids with "
            "instances: 'alice')*",
            "E *(no messages yet)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E *ValueError: asgi_server: no application instance runs for scope "
            "id 'alice', and no scope was given to start one; pass the scope: "
            "send('alice', scope, message)"
        ]
    )
    # Nothing can come from a stopped server: no waiting out the timeout.
    result.stdout.fnmatch_lines(
        [
            "E *TimeoutError: asgi_server: asked for a message from the "
            "application instance for scope id 'alice' of EchoServer, but none "
            "came; its instance was cancelled (evicted, or the server stopped); "
            "EchoServer is not running any more. It had sent 1 message(s), all "
            "already received; the conversation so far:",
        ]
    )
    result.stdout.fnmatch_lines(["*4 failed in [0-9].*s*"])


def test_application_error_surfaces(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import pytest
        from servers import EchoServer, chat, echo, said

        pytestmark = pytest.mark.asgi_app(app=echo)

        def test_on_receive(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("boom"))
            server.send("bob", chat("bob"), said("fine"))
            with pytest.raises(ValueError, match="boom for alice"):
                server.receive("alice")
            assert server.receive("bob")["text"] == "bob: fine"

        @pytest.mark.asyncio
        async def test_on_wait(asgi_server):
            server = asgi_server(EchoServer)
            await server.send("alice", chat("alice"), said("boom"))
            with pytest.raises(ValueError, match="boom for alice"):
                await server.wait("alice")

        def test_on_next_send(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("boom"))
            assert server.receive_nothing("bob", timeout=0.2)
            with pytest.raises(ValueError, match="boom for alice"):
                server.send("alice", message=said("anyone there?"))

        def test_unseen(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("hi"))
            server.send("bob", chat("bob"), said("boom"))
            assert server.receive("alice")["text"] == "alice: hi"
        """,
    )
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unseen*",
            "test_inner.py::test_unseen: asgi_server: the application instance "
            "for scope id 'bob' of EchoServer raised, and the test never "
            "received the error:",
            "Traceback (most recent call last):",
            "*ValueError: boom for bob",
        ]
    )


def test_running_instances_are_cancelled_by_the_server_at_teardown(
    inner: pytest.Pytester,
) -> None:
    result = run(
        inner,
        """
        import asyncio
        import pytest
        from servers import EchoServer, chat, said

        ended = []

        async def stubborn(scope, receive, send):
            try:
                while True:
                    await receive()
            except asyncio.CancelledError:
                ended.append(scope["user"])
                raise

        @pytest.fixture
        def check_cancelled():
            yield
            # Torn down after asgi_server, which the test requested later.
            assert sorted(ended) == ["alice", "bob"]

        @pytest.mark.asgi_app(app=stubborn)
        def test_sync(check_cancelled, asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("hi"))
            server.send("bob", chat("bob"), said("hi"))
            assert server.receive_nothing("alice")

        @pytest.mark.asgi_app(app=stubborn)
        @pytest.mark.asyncio
        async def test_async(asgi_server):
            ended.clear()
            server = asgi_server(EchoServer)
            await server.send("carol", chat("carol"), said("hi"))
            await server.stop()
            assert ended == ["carol"]
            assert server.server.application_instances == {}
            assert not server.running
            with pytest.raises(RuntimeError, match="its arun\\\\(\\\\) was stopped"):
                await server.send("carol", message=said("late"))
        """,
    )
    result.assert_outcomes(passed=2)


def test_a_server_that_does_not_clean_up_fails_the_test(
    inner: pytest.Pytester,
) -> None:
    result = run(
        inner,
        """
        import asyncio
        import pytest
        from servers import EchoServer, chat, said

        cancelled = []

        async def stubborn(scope, receive, send):
            try:
                while True:
                    await receive()
            except asyncio.CancelledError:
                cancelled.append(scope["user"])
                raise

        class LeakyServer(EchoServer):
            # Its own arun() forgets to shut its instances down.
            async def arun(self):
                await asyncio.Event().wait()

        pytestmark = pytest.mark.asgi_app(app=stubborn)

        def test_teardown(asgi_server):
            server = asgi_server(LeakyServer)
            server.send("alice", chat("alice"), said("hi"))
            server.send("bob", chat("bob"), said("hi"))

        @pytest.mark.asyncio
        async def test_explicit_stop(asgi_server):
            server = asgi_server(LeakyServer)
            await server.send("carol", chat("carol"), said("hi"))
            await server.stop()

        def test_harness_cancelled_them_anyway():
            assert sorted(cancelled) == ["alice", "bob", "carol"]
        """,
    )
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_teardown*",
            "test_inner.py::test_teardown: asgi_server: LeakyServer did not clean "
            "up its application instances when it stopped: scope ids still in "
            "application_instances: 'alice', 'bob'; still running: 'alice', "
            "'bob'. Its arun() must cancel and await every instance and empty "
            "application_instances, as StatelessServer.arun() does",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_inner.py::test_explicit_stop: asgi_server: LeakyServer did not "
            "clean up * still in application_instances: 'carol'; still "
            "running: 'carol'.*",
        ]
    )


def test_a_failing_handle_is_reported(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import pytest
        from servers import EchoServer, chat, echo, said

        class BrokenServer(EchoServer):
            async def handle(self):
                raise OSError("the socket went away")

        pytestmark = pytest.mark.asgi_app(app=echo)

        def test_seen(asgi_server):
            server = asgi_server(BrokenServer)
            assert server.receive_nothing("alice")
            expected = "BrokenServer.arun\\\\(\\\\) ended with an error"
            with pytest.raises(RuntimeError, match=expected) as info:
                server.send("alice", chat("alice"), said("hi"))
            assert isinstance(info.value.__cause__, OSError)

        def test_unseen(asgi_server):
            asgi_server(BrokenServer)
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_inner.py::test_unseen: asgi_server: BrokenServer.arun() raised:",
            "Traceback (most recent call last):",
            "*OSError: the socket went away",
        ]
    )


def test_the_application_and_its_options(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        import pytest
        from servers import EchoServer, chat, echo, said, shout

        pytestmark = pytest.mark.asgi_app(app=echo)

        def test_marker_app(asgi_server):
            server = asgi_server(EchoServer)
            assert server.server.application is echo

        @pytest.mark.asgi_app(app=shout)
        def test_closest_marker_wins(asgi_server):
            server = asgi_server(EchoServer)
            server.send("alice", chat("alice"), said("hi"))
            assert server.receive("alice")["text"] == "HI"

        def test_explicit_app(asgi_server):
            server = asgi_server(EchoServer, application=shout)
            assert server.server.application is shout

        @pytest.mark.asyncio
        async def test_max_applications_evicts(asgi_server):
            server = asgi_server(EchoServer, max_applications=1)
            assert server.server.max_applications == 1
            await server.send("alice", chat("alice"), said("hi"))
            assert (await server.receive("alice"))["text"] == "alice: hi"
            await server.send("bob", chat("bob"), said("hi"))
            assert list(server.server.application_instances) == ["bob"]
            with pytest.raises(TimeoutError, match="its instance was cancelled"):
                await server.receive("alice", timeout=0.1)

        def test_server_built_already(asgi_server):
            built = EchoServer(shout)
            server = asgi_server(built)
            assert server.server is built
            server.send("alice", chat("alice"), said("hi"))
            assert server.receive("alice")["text"] == "HI"

        def test_not_a_server(asgi_server):
            asgi_server(42)
        """,
    )
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_inner.py::test_not_a_server: asgi_server(42): expected a "
            "StatelessServer subclass (or one built already), such as "
            "asgi_server(MyServer)"
        ]
    )


def test_no_application_at_all(inner: pytest.Pytester) -> None:
    result = run(
        inner,
        """
        from servers import EchoServer, shout

        def test_needs_one(asgi_server):
            asgi_server(EchoServer)

        def test_explicit_needs_none(asgi_server):
            server = asgi_server(EchoServer, application=shout)
            server.send("alice", {"type": "chat"}, {"text": "hi"})
            assert server.receive("alice")["text"] == "HI"
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_inner.py::test_needs_one: no application to test: mark the test*"]
    )
