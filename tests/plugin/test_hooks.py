"""The pytest_asgiref_* hooks, implemented in an inner run's conftest.py."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sample_apps")]

USER_AND_COOKIE = """
def pytest_asgiref_scope(scope, request):
    scope["user"] = "hook-user:" + request.node.name
    scope["headers"] = [*scope["headers"], (b"cookie", b"session=abc")]
"""


# -- pytest_asgiref_scope ---------------------------------------------------------


def test_scope_hook_shapes_every_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(USER_AND_COOKIE)
    pytester.makepyfile(
        """
        import json
        import pytest

        pytestmark = pytest.mark.asgi_app("apps:echo")
        COOKIE = ["cookie", "session=abc"]

        def test_http(asgi_http):
            body = json.loads(asgi_http.get("/").body)
            assert body["user"] == "hook-user:test_http"
            assert COOKIE in body["headers"]

        def test_http_communicator(asgi_http):
            with asgi_http("POST", "/form", body=b"x") as communicator:
                assert communicator.scope["user"] == "hook-user:test_http_communicator"
                body = json.loads(communicator.get_response().body)
            assert (body["path"], body["user"]) == ("/form", communicator.scope["user"])

        def test_communicator(asgi_communicator):
            assert asgi_communicator.scope["user"] == "hook-user:test_communicator"
            assert [b"cookie", b"session=abc"] in [
                list(header) for header in asgi_communicator.scope["headers"]
            ]

        def test_websocket(asgi_websocket):
            with asgi_websocket("/ws") as socket:
                socket.connect()
                body = json.loads(socket.receive_from())
            assert body["user"] == "hook-user:test_websocket"
            assert COOKIE in body["headers"]

        @pytest.mark.asyncio
        async def test_async(asgi_http, asgi_websocket):
            body = json.loads((await asgi_http.get("/")).body)
            assert body["user"] == "hook-user:test_async"
            async with asgi_websocket("/ws") as socket:
                await socket.connect()
                body = json.loads(await socket.receive_from())
            assert body["user"] == "hook-user:test_async"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=5)


def test_scope_hook_runs_after_the_marker_and_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_scope(scope, request):
            scope["user"] = f"{scope.get('user')}+hook"
        """
    )
    pytester.makepyfile(
        """
        import json
        import pytest

        pytestmark = pytest.mark.asgi_app("apps:echo", scope={"user": "marker"})

        def test_marker(asgi_http):
            assert json.loads(asgi_http.get("/").body)["user"] == "marker+hook"

        def test_passed(asgi_http):
            body = asgi_http.get("/", scope={"user": "passed"}).body
            assert json.loads(body)["user"] == "passed+hook"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_scope_hook_sees_the_protocol(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_scope(scope, request):
            if scope["type"] == "websocket":
                scope["user"] = "socket-user"
        """
    )
    pytester.makepyfile(
        """
        import json
        import pytest

        pytestmark = pytest.mark.asgi_app("apps:echo")

        def test_both(asgi_http, asgi_websocket):
            assert json.loads(asgi_http.get("/").body)["user"] is None
            with asgi_websocket() as socket:
                socket.connect()
                assert json.loads(socket.receive_from())["user"] == "socket-user"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_every_scope_hook_is_called(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        pytest_plugins = ["extra_plugin"]

        def pytest_asgiref_scope(scope, request):
            scope["headers"] = [*scope["headers"], (b"x-from", b"conftest")]
        """
    )
    pytester.makepyfile(
        extra_plugin="""
        def pytest_asgiref_scope(scope, request):
            scope["headers"] = [*scope["headers"], (b"x-from", b"plugin")]
        """
    )
    pytester.makepyfile(
        """
        import json
        import pytest

        @pytest.mark.asgi_app("apps:echo")
        def test_both(asgi_http):
            headers = json.loads(asgi_http.get("/").body)["headers"]
            assert sorted(value for name, value in headers if name == "x-from") == [
                "conftest", "plugin"
            ]
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_a_scope_the_hook_breaks_is_still_validated(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_scope(scope, request):
            scope["path"] = b"/not-a-str"
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:echo", lifespan="off")
        def test_it(asgi_http):
            asgi_http.get("/")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ASGIProtocolError: *'path'*"])


# -- pytest_asgiref_app -------------------------------------------------------------

APP_HOOK = """
import apps

CALLS = []

def pytest_asgiref_app(request):
    CALLS.append(request.node.name)
    return apps.wsgi if request.node.get_closest_marker("wsgi") else apps.echo

def pytest_configure(config):
    config.addinivalue_line("markers", "wsgi: the hook supplies the WSGI app")
"""


def test_app_hook_supplies_the_app(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(APP_HOOK)
    pytester.makepyfile(
        """
        import json
        import pytest

        def test_hooked(asgi_http):
            assert json.loads(asgi_http.get("/").body)["path"] == "/"

        @pytest.mark.wsgi
        def test_hooked_per_test(asgi_http):
            assert asgi_http.get("/").body == b"wsgi saw /"

        @pytest.mark.asgi_app(lifespan="off")
        def test_marker_with_options_only(asgi_http):
            assert json.loads(asgi_http.get("/").body)["path"] == "/"

        @pytest.mark.asgi_app("apps:broken", validate="off")
        def test_marker_with_an_app(asgi_http):
            assert asgi_http.get("/").body == b"broken"

        def test_calls(asgi_app):
            import conftest
            assert conftest.CALLS == [
                "test_hooked", "test_hooked_per_test",
                "test_marker_with_options_only", "test_calls",
            ]
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=5)


def test_app_hook_is_not_called_with_an_app_option(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_app(request):
            raise AssertionError("the hook should not be called")
        """
    )
    pytester.makepyfile(
        """
        def test_it(asgi_http):
            assert asgi_http.get("/").body == b"wsgi saw /"
        """
    )
    result = pytester.runpytest_subprocess("--asgi-app=apps:wsgi")
    result.assert_outcomes(passed=1)


def test_app_hook_first_result_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        plugin_none="""
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_asgiref_app(request):
            return None
        """,
        plugin_wsgi="""
        import apps

        def pytest_asgiref_app(request):
            return apps.wsgi
        """,
        plugin_never="""
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_asgiref_app(request):
            raise AssertionError("a later implementation was called")
        """,
    )
    pytester.makeconftest(
        'pytest_plugins = ["plugin_none", "plugin_wsgi", "plugin_never"]'
    )
    pytester.makepyfile(
        """
        def test_it(asgi_http):
            assert asgi_http.get("/").body == b"wsgi saw /"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_app_hook_returning_none_everywhere(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_app(request):
            return None
        """
    )
    pytester.makepyfile(
        """
        def test_it(asgi_app):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_app_hook_returning_none_everywhere.py::test_it: no application "
            "to test: *"
        ]
    )


def test_app_hook_answer_is_checked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_app(request):
            return "not an app"
        """
    )
    pytester.makepyfile(
        """
        def test_it(asgi_app):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_app_hook_answer_is_checked.py::test_it: the pytest_asgiref_app "
            "hook: 'not an app' is not an application path; write it as "
            "'package.module:attribute', for example 'myproject.asgi:application'"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


# -- conftest hooks apply to their own directory ------------------------------------

SCOPED_CONFTEST = """
def pytest_asgiref_scope(scope, request):
    scope["user"] = "{name}"

def pytest_asgiref_app(request):
    import apps
    return apps.echo
"""


def test_conftest_hooks_apply_to_their_directory(pytester: pytest.Pytester) -> None:
    for name in ("first", "second"):
        pytester.mkpydir(name)
        pytester.path.joinpath(name, "conftest.py").write_text(
            SCOPED_CONFTEST.format(name=name)
        )
        pytester.path.joinpath(name, f"test_{name}.py").write_text(
            "import json\n\n"
            "def test_user(asgi_http):\n"
            f"    assert json.loads(asgi_http.get('/').body)['user'] == {name!r}\n"
        )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


# -- the hook specifications are registered ----------------------------------------


def test_misspelled_hook_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_scop(scope, request):
            pass
        """
    )
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        [
            "INTERNALERROR> *PluginValidationError: unknown hook "
            "'pytest_asgiref_scop' in plugin <module 'conftest' from '*conftest.py'>"
        ]
    )


def test_hook_with_an_unknown_argument_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_asgiref_app(request, app_name):
            pass
        """
    )
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stderr.fnmatch_lines(
        [
            "*PluginValidationError: Plugin '*conftest.py' for hook "
            "'pytest_asgiref_app'",
            "hookimpl definition: pytest_asgiref_app(request, app_name)",
            "Argument(s) {'app_name'} are declared in the hookimpl but can not be "
            "found in the hookspec",
        ]
    )


@pytest.mark.parametrize(
    "hook",
    ["pytest_asgiref_app", "pytest_asgiref_scope", "pytest_asgiref_channel_layer"],
)
def test_correct_hooks_are_accepted(pytester: pytest.Pytester, hook: str) -> None:
    pytester.makeconftest(f"def {hook}(request):\n    return None\n")
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:asgiref")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines([f"INTERNALERROR> *unknown hook '{hook}' in plugin*"])
