"""Loading the application and telling ASGI from WSGI.

Every failure names the test, the value and where it came from (the marker
on some node, the --asgi-app option or the asgi_app ini key), and carries no
traceback.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sample_apps")]

SHAPES = (
    "an ASGI app is 'async def app(scope, receive, send)', a WSGI app is "
    "'def app(environ, start_response)'"
)

USES_APP = """
def test_it(asgi_app):
    pass
"""

FACTORIES = """
from apps import echo

NUMBER = 42
CALLS = []


def create_app():
    CALLS.append("create_app")
    return echo


def failing():
    raise ValueError("no settings")
"""


def load_failure(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the inner tests, which fail to load their application."""
    result = pytester.runpytest(*args)
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*_markers.py*")
    return result


# -- load failures, by source ------------------------------------------------------


@pytest.mark.parametrize("source", ["marker", "option", "ini key"])
def test_failure_names_its_source(
    pytester: pytest.Pytester, inner_ini: Callable[..., None], source: str
) -> None:
    where = {
        "marker": "@pytest.mark.asgi_app on test_failure_names_its_source.py",
        "option": "the --asgi-app option",
        "ini key": "the asgi_app ini key in tox.ini",
    }[source]
    args: list[str] = []
    if source == "marker":
        pytester.makepyfile(
            "import pytest\n"
            "pytestmark = pytest.mark.asgi_app('no_such_module:app')\n" + USES_APP
        )
    else:
        pytester.makepyfile(USES_APP)
        if source == "option":
            args.append("--asgi-app=no_such_module:app")
        else:
            inner_ini("asgi_app = no_such_module:app")
    result = load_failure(pytester, *args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"test_failure_names_its_source.py::test_it: {where}: "
            "'no_such_module:app': cannot import module 'no_such_module' (No module "
            "named 'no_such_module')"
        ]
    )


def test_failure_names_the_class_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:nothing")
        class TestClass:
            def test_it(self, asgi_http):
                pass
        """
    )
    result = load_failure(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_failure_names_the_class_marker.py::TestClass::test_it: "
            "@pytest.mark.asgi_app on test_failure_names_the_class_marker.py::"
            "TestClass: 'apps:nothing': 'apps' has no attribute 'nothing'"
        ]
    )


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("apps:nothing", "'apps:nothing': 'apps' has no attribute 'nothing'"),
        (
            "apps:echo.__wrapped__.app",
            "'apps:echo.__wrapped__.app': 'apps:echo' has no attribute '__wrapped__'",
        ),
        (
            "apps:EVENTS.nothing",
            "'apps:EVENTS.nothing': 'apps:EVENTS' has no attribute 'nothing'",
        ),
        (
            "apps.nothing:app",
            "'apps.nothing:app': cannot import module 'apps.nothing' (No module "
            "named 'apps.nothing'; 'apps' is not a package)",
        ),
        (
            "factories:failing()",
            "'factories:failing()': calling the factory raised ValueError: no settings",
        ),
        (
            "factories:NUMBER()",
            "'factories:NUMBER()': 'factories:NUMBER' is not callable, so it cannot "
            "be a factory",
        ),
        ("factories:NUMBER", f"'factories:NUMBER': 42 is not callable: {SHAPES}"),
        (
            "factories:failing.__name__",
            f"'factories:failing.__name__': 'failing' is not callable: {SHAPES}",
        ),
    ],
)
def test_load_failure(pytester: pytest.Pytester, path: str, problem: str) -> None:
    pytester.makepyfile(factories=FACTORIES)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.asgi_app({path!r})
        def test_it(asgi_http):
            pass
        """
    )
    result = load_failure(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_load_failure.py::test_it: @pytest.mark.asgi_app on "
            f"test_load_failure.py::test_it: {problem}"
        ]
    )


def test_import_raising(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(exploding="raise RuntimeError('boom at import')\n")
    pytester.makepyfile(USES_APP)
    result = load_failure(pytester, "--asgi-app=exploding:app")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_import_raising.py::test_it: the --asgi-app option: "
            "'exploding:app': importing module 'exploding' raised RuntimeError: "
            "boom at import"
        ]
    )


def test_import_of_a_missing_dependency(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(needy="import not_installed_anywhere\napp = None\n")
    pytester.makepyfile(USES_APP)
    result = load_failure(pytester, "--asgi-app=needy:app")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_import_of_a_missing_dependency.py::test_it: the --asgi-app option: "
            "'needy:app': cannot import module 'needy' (No module named "
            "'not_installed_anywhere')"
        ]
    )


@pytest.mark.parametrize(
    ("app", "shape"),
    [
        ("lambda a, b, c, d: None", "4"),
        ("lambda: None", "0"),
        ("lambda *args: None", "an unknown number of"),
    ],
)
def test_neither_asgi_nor_wsgi(pytester: pytest.Pytester, app: str, shape: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.asgi_app(app={app})
        def test_it(asgi_app):
            pass
        """
    )
    result = load_failure(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_neither_asgi_nor_wsgi.py::test_it: @pytest.mark.asgi_app on "
            "test_neither_asgi_nor_wsgi.py::test_it: <function <lambda> at 0x*> is "
            f"neither an ASGI nor a WSGI application: it takes {shape} positional "
            f"arguments; {SHAPES}. If it is one of them, say which with the marker "
            "option kind='asgi' or kind='wsgi'"
        ]
    )


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_forced_kind_still_needs_a_callable(
    pytester: pytest.Pytester, kind: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.asgi_app(app=42, kind={kind!r})
        def test_it(asgi_app):
            pass
        """
    )
    result = load_failure(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_forced_kind_still_needs_a_callable.py::test_it: "
            "@pytest.mark.asgi_app on test_forced_kind_still_needs_a_callable.py::"
            f"test_it: 42 is not callable: {SHAPES}"
        ]
    )


def test_no_application_at_all(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_it(asgi_http):
            pass

        @pytest.mark.asgi_app(lifespan="off")
        def test_options_only(asgi_app):
            pass
        """
    )
    result = load_failure(pytester)
    result.assert_outcomes(errors=2)
    message = (
        ": no application to test: mark the test, its class or its module with "
        "@pytest.mark.asgi_app(app) (an object or 'package.module:attribute'), pass "
        "--asgi-app package.module:attribute, set the asgi_app ini key, or "
        "implement the pytest_asgiref_app hook"
    )
    result.stdout.fnmatch_lines(
        [
            f"test_no_application_at_all.py::test_it{message}",
            f"test_no_application_at_all.py::test_options_only{message}",
        ]
    )


def test_a_failed_load_is_reported_to_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_one(asgi_app):
            pass

        def test_two(asgi_http):
            pass
        """
    )
    result = load_failure(pytester, "--asgi-app=apps:nothing")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*::test_one: the --asgi-app option: 'apps:nothing': *",
            "*::test_two: the --asgi-app option: 'apps:nothing': *",
        ]
    )


# -- loading that works ---------------------------------------------------------------


def test_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(factories=FACTORIES)
    pytester.makepyfile(
        """
        import json
        import pytest
        import apps

        def test_it(asgi_app, asgi_http):
            assert asgi_app is apps.echo
            assert json.loads(asgi_http.get("/made").body)["path"] == "/made"
        """
    )
    result = pytester.runpytest_subprocess("--asgi-app=factories:create_app()")
    result.assert_outcomes(passed=1)


def test_wsgi_function_is_detected_and_wrapped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import apps
        from asgiref_core.wsgi import WsgiToAsgi

        pytestmark = pytest.mark.asgi_app("apps:wsgi")

        def test_fixture_is_wrapped(asgi_app):
            assert isinstance(asgi_app, WsgiToAsgi)

        def test_sync(asgi_http):
            response = asgi_http.get("/page")
            assert response.status == 200
            assert response.header("content-type") == "text/plain"
            assert response.body == b"wsgi saw /page"

        @pytest.mark.asyncio
        async def test_async(asgi_http):
            response = await asgi_http.get("/async")
            assert response.body == b"wsgi saw /async"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)


def test_flask_app(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        flask_app="""
        from flask import Flask, request

        app = Flask(__name__)

        @app.get("/hello/<name>")
        def hello(name):
            return {"hello": name}

        @app.post("/echo")
        def echo():
            return request.get_data(), 201
        """
    )
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.asgi_app("flask_app:app")

        def test_get(asgi_http):
            response = asgi_http.get("/hello/world")
            assert response.status == 200
            assert response.json() == {"hello": "world"}

        def test_post(asgi_http):
            response = asgi_http.post("/echo", body=b"payload")
            assert (response.status, response.body) == (201, b"payload")

        def test_missing(asgi_http):
            assert asgi_http.get("/nowhere").status == 404
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)


def test_kind_forces_the_protocol(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import apps

        def asgi_with_extra(scope, receive, send, extra=None):
            # Not async def, and four parameters: only kind='asgi' can tell.
            return apps.echo(scope, receive, send)

        class VarargsWsgi:
            def __call__(self, *args):
                environ, start_response = args
                start_response("204 No Content", [])
                return []

        @pytest.mark.asgi_app(app=asgi_with_extra, kind="asgi")
        def test_forced_asgi(asgi_http):
            assert asgi_http.get("/").status == 200

        @pytest.mark.asgi_app(VarargsWsgi(), kind="wsgi")
        def test_forced_wsgi(asgi_http):
            assert asgi_http.get("/").status == 204

        @pytest.mark.asgi_app(app=asgi_with_extra)
        def test_undetectable(asgi_app):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_undetectable: @pytest.mark.asgi_app on *::test_undetectable: "
            "<function asgi_with_extra at 0x*> is neither an ASGI nor a WSGI "
            "application: it takes 4 positional arguments; *kind='asgi' or "
            "kind='wsgi'"
        ]
    )


def test_kind_applies_to_a_path_from_the_option(pytester: pytest.Pytester) -> None:
    # apps:echo is ASGI; forced to WSGI, it is called as WSGI and fails.
    pytester.makepyfile(
        """
        import pytest
        from asgiref_core.wsgi import WsgiToAsgi

        @pytest.mark.asgi_app(kind="wsgi")
        def test_it(asgi_app):
            assert isinstance(asgi_app, WsgiToAsgi)
        """
    )
    result = pytester.runpytest_subprocess("--asgi-app=apps:echo")
    result.assert_outcomes(passed=1)


def test_asgi_shapes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import functools
        import pytest
        import apps

        class Asgi2:
            # ASGI 2: called with the scope, returns the coroutine callable.
            def __init__(self, scope):
                self.scope = scope

            async def __call__(self, receive, send):
                await receive()
                await send({"type": "http.response.start", "status": 202,
                            "headers": []})
                await send({"type": "http.response.body", "body": b"asgi2"})

        class Asgi3Instance:
            async def __call__(self, scope, receive, send):
                await apps.echo(scope, receive, send)

        async def tagged(tag, scope, receive, send):
            await apps.echo(scope, receive, send)

        def asgi2_function(scope):
            async def instance(receive, send):
                await apps.echo(scope, receive, send)
            return instance

        def returns_awaitable(scope, receive, send):
            # ASGI 3 without async def: asgiref would call it as ASGI 2.
            return apps.echo(scope, receive, send)

        @pytest.mark.asgi_app(app=Asgi2, lifespan="off")
        def test_asgi2_class(asgi_app, asgi_http):
            assert asgi_app is Asgi2
            response = asgi_http.get("/")
            assert (response.status, response.body) == (202, b"asgi2")

        @pytest.mark.asgi_app(app=Asgi3Instance(), lifespan="on")
        def test_asgi3_instance(asgi_http):
            assert asgi_http.get("/").status == 200

        @pytest.mark.asgi_app(app=functools.partial(tagged, "x"), lifespan="on")
        def test_partial(asgi_http):
            assert asgi_http.get("/").status == 200

        @pytest.mark.asgi_app(app=asgi2_function, lifespan="on")
        def test_asgi2_function(asgi_http):
            assert asgi_http.get("/").status == 200

        @pytest.mark.asgi_app(app=returns_awaitable, lifespan="on")
        def test_sync_function_returning_an_awaitable(asgi_http):
            assert asgi_http.get("/").status == 200

        @pytest.mark.asgi_app(app=returns_awaitable, lifespan="on")
        @pytest.mark.asyncio
        async def test_sync_function_returning_an_awaitable_async(asgi_http):
            assert (await asgi_http.get("/")).status == 200
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=6)


def test_string_path_is_loaded_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(factories=FACTORIES)
    pytester.makepyfile(
        """
        import pytest
        import factories

        pytestmark = pytest.mark.asgi_app("factories:create_app()")

        def test_one(asgi_app):
            pass

        def test_two(asgi_app):
            assert factories.CALLS == ["create_app"]
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
