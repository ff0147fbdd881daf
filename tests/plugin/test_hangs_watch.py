"""The watchdog behind --asgi-timeout: how it ends a hang and what it leaves
alone afterwards.

A hung teardown must not cost the test its other fixtures' teardowns; a
failing report must not keep the hang from being ended; a signal sent late
must not reach the next test; a debugger is no hang. Every inner run is a
subprocess (threads, signals and timeouts), with pytest-timeout's
``--timeout 25`` as a backstop, so that a report from pytest-asgiref proves
it ended the test well before that.
"""

from __future__ import annotations

from textwrap import dedent

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("inner_ini")]

BACKSTOP = "--timeout=25"

# A fixture whose teardown must run whatever happens to the ones torn down
# before it; test_after, run next, checks that it did.
DATABASE = """
import pytest

CLOSED = []


@pytest.fixture
def database():
    yield
    CLOSED.append("database")
"""

AFTER = """


def test_after():
    assert CLOSED == ["database"]
"""


def _hung_teardown(pytester: pytest.Pytester, hung: str) -> pytest.RunResult:
    """Run test_it (database first, then the hung fixture) and test_after."""
    pytester.makepyfile(test_teardown=DATABASE + dedent(hung) + AFTER)
    return pytester.runpytest_subprocess("--asgi-timeout=0.5", BACKSTOP)


# -- a hung teardown ends, the other teardowns still run -----------------------


def test_sync_finalizer_after_a_hung_one_still_runs(
    pytester: pytest.Pytester,
) -> None:
    result = _hung_teardown(
        pytester,
        """
        import threading


        @pytest.fixture
        def hung():
            yield
            threading.Event().wait()


        def test_it(database, hung):
            pass
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "test_teardown.py::test_it: the test's teardown ran longer than 0.5s "
            "(the limit set by the --asgi-timeout option), so pytest-asgiref "
            "ended it. *",
            "  the test's thread 'MainThread': waits in nothing that can be cancelled",
            "The test did not end when cancelled; its thread was interrupted "
            "with signal SIGUSR2.",
        ]
    )
    result.stdout.no_fnmatch_line("*from pytest-timeout*")


def test_sync_fixture_after_a_hung_async_fixture_still_runs(
    pytester: pytest.Pytester,
) -> None:
    result = _hung_teardown(
        pytester,
        """
        import asyncio

        import pytest_asyncio


        @pytest_asyncio.fixture
        async def hung():
            yield
            await asyncio.Event().wait()


        @pytest.mark.asyncio
        async def test_it(database, hung):
            pass
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_teardown.py::test_it: the test's teardown ran longer than 0.5s *",
            "  task 'Task-*' running *async_finalizer:",
            "      await asyncio.Event().wait()",
            "  the test's thread 'MainThread': raised HangTimeout in task "
            "'Task-*' (at the await it is stuck in) on its event loop",
        ]
    )
    result.stdout.no_fnmatch_line("*interrupted with signal*")


def test_teardown_after_one_stuck_in_async_to_sync_still_runs(
    pytester: pytest.Pytester,
) -> None:
    """The database's own clean-up crosses a bridge and takes a while, past
    the time the watchdog would cancel again and signal: it must leave that
    clean-up alone, since the hung fixture's wait has ended."""
    pytester.makepyfile(
        test_teardown=dedent(
            """
            import asyncio

            import pytest

            from asgiref_core.sync import async_to_sync

            CLOSED = []


            @pytest.fixture
            def database():
                yield
                async_to_sync(asyncio.sleep)(0.7)
                CLOSED.append("database")


            async def never():
                await asyncio.Event().wait()


            @pytest.fixture
            def hung():
                yield
                async_to_sync(never)()


            def test_it(database, hung):
                pass
            """
        )
        + AFTER
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=1", BACKSTOP)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_teardown.py::test_it: the test's teardown ran longer than 1s *",
            "  thread 'MainThread' waits in async_to_sync for task 'Task-*' *, "
            'called at File "*test_teardown.py", line *, in hung',
            "  the test's thread 'MainThread': raised HangTimeout in task "
            "'Task-*' (at the await it is stuck in), which its async_to_sync "
            "call awaited",
        ]
    )
    result.stdout.no_fnmatch_line("*interrupted with signal*")
    result.stdout.no_fnmatch_line("*after the hang above was ended*")


def test_second_hung_teardown_gets_a_limit_of_its_own(
    pytester: pytest.Pytester,
) -> None:
    result = _hung_teardown(
        pytester,
        """
        import threading


        @pytest.fixture
        def first():
            yield
            threading.Event().wait()


        @pytest.fixture
        def second():
            yield
            threading.Event().wait()


        def test_it(database, first, second):
            pass
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_teardown.py::test_it: the test's teardown ran longer than 0.5s *",
            '  File "*test_teardown.py", line *, in second',
            "The test did not end when cancelled; its thread was interrupted "
            "with signal SIGUSR2.",
            "test_teardown.py::test_it: after the hang above was ended, the rest "
            "of the test's teardown ran longer than 0.5s too, so pytest-asgiref "
            "ended it. What it was waiting for:",
            '  File "*test_teardown.py", line *, in first',
            "The test did not end when cancelled; its thread was interrupted "
            "with signal SIGUSR2.",
        ]
    )


# -- the report fails, the hang ends anyway ------------------------------------


def test_failing_report_still_ends_the_hang(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest_asgiref._hangs_report as report


        def broken(*args, **kwargs):
            raise KeyError("a frame went away")


        report.hang_report = broken
        """
    )
    pytester.makepyfile(
        test_hung="""
        import asyncio

        from asgiref_core.sync import async_to_sync


        async def never():
            await asyncio.Event().wait()


        def test_hung():
            async_to_sync(never)()


        def test_next():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=0.5", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_hung.py::test_hung: the test's call ran longer than 0.5s *",
            "(the report failed: KeyError: 'a frame went away')",
            "what pytest-asgiref did to end the test:",
            "  the test's thread 'MainThread': raised HangTimeout in task "
            "'Task-*' (at the await it is stuck in), which its async_to_sync "
            "call awaited",
        ]
    )
    result.stdout.no_fnmatch_line("*from pytest-timeout*")


# -- what comes after a hang ----------------------------------------------------


def test_unmarked_test_after_a_fired_one_is_left_alone(
    pytester: pytest.Pytester,
) -> None:
    """A signal that arrives just as the ended phase is being disarmed must
    be dropped there, and the next test, which has no limit, must not be
    watched at all. The conftest plays the watchdog's late signal, sent as
    the test's thread enters ``disarm()`` at the end of the hung teardown,
    the last phase that had a limit."""
    pytester.makeconftest(
        """
        import signal
        import sys
        import threading

        SENT = []


        def late_signal(frame, event, arg):
            if event != "call" or SENT or frame.f_code.co_name != "disarm":
                return
            if getattr(frame.f_locals.get("watch"), "message", ""):
                SENT.append(True)
                main = threading.main_thread().ident
                signal.pthread_kill(main, signal.SIGUSR2)


        sys.setprofile(late_signal)
        """
    )
    pytester.makepyfile(
        test_after_fire="""
        import asyncio
        import time

        import pytest

        from asgiref_core.sync import async_to_sync


        async def never():
            await asyncio.Event().wait()


        @pytest.fixture
        def hung():
            yield
            async_to_sync(never)()


        @pytest.mark.asgi_timeout(0.5)
        def test_marked(hung):
            pass


        def test_unmarked():
            for _ in range(30):
                time.sleep(0.1)
        """
    )
    result = pytester.runpytest_subprocess(BACKSTOP)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_after_fire.py::test_marked: the test's teardown ran longer than "
            "0.5s (the limit set by @pytest.mark.asgi_timeout(0.5)), *",
            "what pytest-asgiref did to end the test:",
        ]
    )
    result.stdout.no_fnmatch_line("*HangInterrupt*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_debugger_keeps_the_limit_from_firing(pytester: pytest.Pytester) -> None:
    """A trace function of a known debugger's module, as pytest-timeout
    recognises one: a test stopped at a breakpoint is not hung."""
    pytester.makepyfile(
        pydevd_stand_in="""
        def trace(frame, event, arg):
            return None
        """
    )
    pytester.makeconftest(
        """
        import threading

        import pydevd_stand_in

        threading.settrace(pydevd_stand_in.trace)
        """
    )
    pytester.makepyfile(
        test_debugged="""
        import time


        def test_at_a_breakpoint():
            time.sleep(1.5)
        """
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=0.5", BACKSTOP)
    result.assert_outcomes(passed=1)


# -- where the limit comes from -------------------------------------------------


def test_class_and_module_markers_set_the_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_placed="""
        import threading

        import pytest

        pytestmark = pytest.mark.asgi_timeout(0.5)


        def test_module_wide():
            threading.Event().wait(30)


        @pytest.mark.asgi_timeout(0.7)
        class TestSlow:
            def test_in_class(self):
                threading.Event().wait(30)

            @pytest.mark.asgi_timeout(0)
            def test_exempt(self):
                threading.Event().wait(1)
        """
    )
    result = pytester.runpytest_subprocess(BACKSTOP)
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines_random(
        [
            "test_placed.py::test_module_wide: the test's call ran longer than "
            "0.5s (the limit set by @pytest.mark.asgi_timeout(0.5) on module "
            "test_placed.py), so pytest-asgiref ended it. *",
            "test_placed.py::TestSlow::test_in_class: the test's call ran longer "
            "than 0.7s (the limit set by @pytest.mark.asgi_timeout(0.7) on class "
            "TestSlow), so pytest-asgiref ended it. *",
        ]
    )


def test_override_ini_is_named_as_the_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_hung="""
        import threading


        def test_hung():
            threading.Event().wait(30)
        """
    )
    result = pytester.runpytest_subprocess("-o", "asgi_timeout=0.5", BACKSTOP)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_hung.py::test_hung: the test's call ran longer than 0.5s (the "
            "limit set by the -o asgi_timeout option), so pytest-asgiref ended "
            "it. If it needs longer, raise the limit with "
            "@pytest.mark.asgi_timeout(N) or --asgi-timeout N (0 turns it off). "
            "What it was waiting for:",
        ]
    )
    result.stdout.no_fnmatch_line("*in the ini file*")


def test_bad_marker_on_a_skipped_test_is_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest


        @pytest.mark.skip(reason="not today")
        @pytest.mark.asgi_timeout("soon")
        def test_skipped():
            pass


        @pytest.mark.asgi_timeout("soon")
        def test_run():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-rs", BACKSTOP)
    result.assert_outcomes(skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_bad.py::test_run: @pytest.mark.asgi_timeout: 'soon' is not a "
            "valid time limit; *",
            "SKIPPED [[]1[]] test_bad.py:*: not today",
        ]
    )


# -- pytest-timeout --------------------------------------------------------------


def test_pytest_timeout_off_the_main_thread_names_the_thread_method(
    pytester: pytest.Pytester,
) -> None:
    """Off the main thread the signal method cannot work: the timer thread
    takes over, and the report's headline says so."""
    pytester.makepyfile(
        test_off_main="""
        import threading
        import time

        import pytest_timeout


        def test_timer_set_off_the_main_thread(request):
            reports = request.config.pluginmanager.get_plugin(
                "asgiref-timeout-reports"
            )
            settings = pytest_timeout.Settings(0.5, "signal", False, False)
            thread = threading.Thread(
                target=reports.pytest_timeout_set_timer,
                args=(request.node, settings),
            )
            thread.start()
            thread.join()
            time.sleep(20)
        """
    )
    result = pytester.runpytest_subprocess()
    # The thread method ends the process; the report comes before its dump.
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*+ asgiref hang report +*",
            "test_off_main.py::test_timer_set_off_the_main_thread: pytest-timeout "
            "fired after 0.5s (thread method, since the signal method needs the "
            "main thread). What the test was waiting for:",
            "*+ Timeout +*",
        ]
    )


def test_the_test_can_catch_hang_timeout_by_its_public_name(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_caught="""
        import asyncio

        import pytest

        from pytest_asgiref import HangTimeout

        SEEN = []


        @pytest.mark.asyncio
        async def test_waits():
            try:
                await asyncio.Event().wait()
            except HangTimeout as error:
                SEEN.append(type(error).__module__ + "." + type(error).__name__)
                raise


        def test_after():
            assert SEEN == ["pytest_asgiref.HangTimeout"]
        """
    )
    result = pytester.runpytest_subprocess("--asgi-timeout=0.5", BACKSTOP)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*test_waits: the test's call ran longer than 0.5s*"])
