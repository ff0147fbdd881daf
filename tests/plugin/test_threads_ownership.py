"""The leak check: who a thread or task belongs to, and reporting it once.

Pooled library threads are judged by who holds them, not by who first started
them; what a wider fixture started is checked when it ends, even if its setup
failed; a task is reported by the test that left it, once; a warning a filter
ignores stays out of the summary. Every inner run is a subprocess.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("inner_ini")]

Ini = Callable[..., None]

SUMMARY = "*= pytest-asgiref: threads and tasks left behind =*"


def strict_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asgi-strict-threads", *args
    )


def test_a_pooled_thread_a_module_fixture_holds_is_no_leak_of_its_tests(
    pytester: pytest.Pytester,
) -> None:
    # The first module returns the context thread to the pool; the second
    # module's fixture takes that same thread and holds it for the module.
    pytester.makepyfile(
        test_a_first="""
        import pytest
        from asgiref_core.sync import ThreadSensitiveContext, sync_to_async


        @pytest.mark.asyncio
        async def test_warm_the_pool():
            async with ThreadSensitiveContext():
                await sync_to_async(lambda: 1)()
        """,
        test_b_module="""
        import pytest
        import pytest_asyncio
        from asgiref_core.sync import ThreadSensitiveContext, sync_to_async


        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def request_context():
            async with ThreadSensitiveContext():
                await sync_to_async(lambda: 1)()
                yield


        @pytest.mark.asyncio(loop_scope="module")
        async def test_one(request_context):
            pass


        @pytest.mark.asyncio(loop_scope="module")
        async def test_two(request_context):
            pass
        """,
    )
    result = strict_run(pytester)
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line(SUMMARY)


def test_a_pooled_thread_a_session_fixture_started_is_still_watched(
    pytester: pytest.Pytester,
) -> None:
    # The session fixture starts the process-wide executor; a later test
    # leaves a call running on it.
    pytester.makepyfile(
        test_pool="""
        import asyncio
        import threading

        import pytest
        from asgiref_core.sync import sync_to_async

        RELEASE = threading.Event()


        def stuck():
            RELEASE.wait(3)


        @pytest.fixture(scope="session")
        def warm():
            asyncio.run(sync_to_async(lambda: 1)())
            yield


        def test_warm(warm):
            pass


        @pytest.mark.asyncio
        async def test_call_still_running():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sync_to_async(stuck)(), 0.05)


        def test_last():
            RELEASE.set()
        """
    )
    result = strict_run(pytester)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_call_still_running*",
            "thread 'asgiref_core-thread-sensitive-*' (daemon) is still running",
            "  belongs to: asgiref_core's process-wide thread-sensitive executor, "
            "still running test_pool.stuck*",
        ]
    )


def test_a_task_on_a_wider_loop_is_reported_once_by_its_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_mod="""
        import asyncio

        import pytest


        async def forever():
            await asyncio.sleep(3600)


        @pytest.mark.asyncio(loop_scope="module")
        async def test_a():
            asyncio.get_running_loop().create_task(forever(), name="forgotten")


        def test_b():
            pass
        """
    )
    result = strict_run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a*"])
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_b*")
    result.stdout.fnmatch_lines(
        [
            SUMMARY,
            "test_mod.py::test_a (error, shown above): left 1 task pending",
            "  task 'forgotten' (forever) is still pending",
        ]
    )


def test_what_a_wider_fixture_started_before_its_setup_failed_is_checked(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_failsetup="""
        import threading

        import pytest

        STOP = threading.Event()


        @pytest.fixture(scope="module")
        def server():
            threading.Thread(target=STOP.wait, args=(3,), name="server").start()
            raise RuntimeError("port in use")


        def test_uses_server(server):
            pass


        def test_last():
            pass
        """
    )
    result = strict_run(pytester)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_last*",
            "thread 'server' (non-daemon) is still running",
            "  belongs to: the setup of fixture 'server' (module scope)",
        ]
    )


def test_an_allowed_threads_hook_returning_a_string_is_an_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_allowed_threads(config):
            return "metrics-*"
        """
    )
    pytester.makepyfile(
        test_x="""
        import threading

        STOP = threading.Event()


        def test_leak():
            threading.Thread(
                target=STOP.wait, args=(3,), name="anything", daemon=True
            ).start()
        """
    )
    result = strict_run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "the pytest_asgiref_allowed_threads hook returned 'metrics-*'; return "
            "a list of fnmatch patterns of thread names, such as ['metrics-*'], "
            "or None",
        ]
    )


def test_an_ignored_warning_stays_out_of_the_summary(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("filterwarnings = ignore::pytest_asgiref.PytestAsgiThreadLeakWarning")
    pytester.makepyfile(
        test_x="""
        import threading

        STOP = threading.Event()


        def test_known_leak():
            threading.Thread(
                target=STOP.wait, args=(3,), name="known", daemon=True
            ).start()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line(SUMMARY)
    result.stdout.no_fnmatch_line("*known*")


def test_leaks_in_xdist_workers_reach_the_controllers_summary(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_x="""
        import threading

        STOP = threading.Event()


        def test_leak_one():
            threading.Thread(
                target=STOP.wait, args=(3,), name="one", daemon=True
            ).start()


        def test_leak_two():
            threading.Thread(
                target=STOP.wait, args=(3,), name="two", daemon=True
            ).start()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines([SUMMARY])
    result.stdout.fnmatch_lines_random(
        [
            "test_x.py::test_leak_one (warning): left 1 thread running",
            "test_x.py::test_leak_two (warning): left 1 thread running",
        ]
    )
