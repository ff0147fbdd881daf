"""The asgi_app marker: where it goes, how its options combine, its misuse.

A misused marker fails the test that uses it with ``pytest.fail(...,
pytrace=False)``: one message naming the test and the marker, no traceback.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sample_apps")]

VALID_OPTIONS = "app, kind, lifespan, lifespan_scope, validate, scope"


def no_traceback(result: pytest.RunResult) -> None:
    """The run reported a failure message alone, with no Python traceback."""
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*_markers.py*")
    result.stdout.no_fnmatch_line("*def test_*")
    result.stdout.no_fnmatch_line("E   *")


# -- where the marker goes -------------------------------------------------------


def test_marker_on_test_class_and_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import pytest
        import apps

        pytestmark = pytest.mark.asgi_app("apps:echo")

        def test_module_level(asgi_http):
            assert json.loads(asgi_http.get("/m").body)["path"] == "/m"

        @pytest.mark.asgi_app("apps:wsgi")
        class TestClass:
            def test_class_level(self, asgi_http):
                assert asgi_http.get("/c").body == b"wsgi saw /c"

            @pytest.mark.asgi_app(app=apps.broken, validate="off")
            def test_test_level(self, asgi_http):
                assert asgi_http.get("/").body == b"broken"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)


def test_options_merge_across_levels_closest_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import pytest
        from apps import new_events

        pytestmark = pytest.mark.asgi_app(
            validate="off", scope={"user": "module-user"}, lifespan="off"
        )

        @pytest.mark.asgi_app("apps:echo", lifespan="on")
        class TestMerge:
            def test_class_options(self, new_events, asgi_http):
                body = json.loads(asgi_http.get("/").body)
                assert body["user"] == "module-user"
                assert new_events() == ["lifespan", "http"]

            @pytest.mark.asgi_app(scope={"user": "test-user"}, lifespan="off")
            def test_test_options(self, new_events, asgi_http):
                body = json.loads(asgi_http.get("/").body)
                assert body["user"] == "test-user"
                assert new_events() == ["http"]

            @pytest.mark.asgi_app("apps:broken")
            def test_app_from_the_test_validate_from_the_module(self, asgi_http):
                assert asgi_http.get("/").body == b"broken"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize("where", ["option", "ini key"])
def test_marker_beats_the_option_and_the_ini_key(
    pytester: pytest.Pytester, inner_ini: Callable[..., None], where: str
) -> None:
    pytester.makepyfile(
        """
        import json
        import pytest

        @pytest.mark.asgi_app("apps:echo")
        def test_marked(asgi_http):
            assert json.loads(asgi_http.get("/").body)["path"] == "/"

        def test_unmarked(asgi_http):
            assert asgi_http.get("/").body == b"wsgi saw /"

        @pytest.mark.asgi_app(validate="off")
        def test_options_only(asgi_http):
            # The app comes from the option or ini key, the options from here.
            assert asgi_http.get("/").body == b"wsgi saw /"
        """
    )
    if where == "option":
        result = pytester.runpytest_subprocess("--asgi-app=apps:wsgi")
    else:
        inner_ini("asgi_app = apps:wsgi")
        result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)


def test_marker_options_beat_the_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from apps import new_events

        @pytest.mark.asgi_app(validate="off", lifespan="off")
        def test_broken(new_events, asgi_http):
            assert asgi_http.get("/").body == b"broken"
            assert new_events() == []
        """
    )
    result = pytester.runpytest_subprocess(
        "--asgi-app=apps:broken", "--asgi-validate=raise", "--asgi-lifespan=on"
    )
    result.assert_outcomes(passed=1)


# -- how the application is given -------------------------------------------------


def test_positional_and_keyword_application(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import pytest
        import apps

        @pytest.mark.asgi_app("apps:echo")
        def test_positional_path(asgi_http):
            assert json.loads(asgi_http.get("/").body)["path"] == "/"

        @pytest.mark.asgi_app(app="apps:echo")
        def test_keyword_path(asgi_http):
            assert json.loads(asgi_http.get("/").body)["path"] == "/"

        @pytest.mark.asgi_app(app=apps.echo)
        def test_keyword_object(asgi_http):
            assert json.loads(asgi_http.get("/").body)["path"] == "/"

        # A lone function passed positionally would be taken by pytest as the
        # thing to decorate; with an option beside it, it is an argument.
        @pytest.mark.asgi_app(apps.wsgi, lifespan="off")
        def test_positional_object_with_an_option(asgi_http):
            assert asgi_http.get("/").body == b"wsgi saw /"

        @pytest.mark.asgi_app(app=apps.echo)
        def test_asgi_app_fixture_is_the_object(asgi_app):
            assert asgi_app is apps.echo
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=5)


# -- each option -------------------------------------------------------------------


def test_lifespan_and_validate_take_booleans(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from apps import new_events

        @pytest.mark.asgi_app("apps:echo", lifespan=True)
        def test_lifespan_true(new_events, asgi_http):
            asgi_http.get("/")
            assert new_events() == ["lifespan", "http"]

        @pytest.mark.asgi_app("apps:echo", lifespan=False)
        def test_lifespan_false(new_events, asgi_http):
            asgi_http.get("/")
            assert new_events() == ["http"]

        @pytest.mark.asgi_app("apps:broken", validate=False)
        def test_validate_false(asgi_http):
            assert asgi_http.get("/").body == b"broken"

        @pytest.mark.asgi_app("apps:broken", validate=True)
        def test_validate_true(asgi_http):
            asgi_http.get("/")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED *::test_validate_true - *ASGIProtocolError*"])


def test_validate_warn_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:broken", validate="warn")
        def test_warn(asgi_http):
            assert asgi_http.get("/").body == b"broken"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*ASGIProtocolWarning: sent 'http.response.start'*"])


def test_lifespan_scope_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import apps

        pytestmark = pytest.mark.asgi_app("apps:echo", lifespan_scope="module")

        def test_one(asgi_http):
            asgi_http.get("/")

        def test_two(asgi_http):
            asgi_http.get("/")
            assert apps.EVENTS == ["lifespan", "http", "http"]
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_kind_marker_forces_wsgi(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def varargs_wsgi(*args):
            environ, start_response = args
            start_response("200 OK", [])
            return [b"forced " + environ["REQUEST_METHOD"].encode()]

        @pytest.mark.asgi_app(app=varargs_wsgi, kind="wsgi")
        def test_forced(asgi_http):
            assert asgi_http.get("/").body == b"forced GET"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_documented_defaults_may_be_given(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import pytest

        @pytest.mark.asgi_app(
            "apps:echo", kind=None, lifespan="auto", lifespan_scope="function",
            validate="raise", scope=None,
        )
        def test_defaults(asgi_http):
            assert json.loads(asgi_http.get("/").body)["user"] is None
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_scope_marker_shapes_every_scope(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import pytest

        pytestmark = pytest.mark.asgi_app(
            "apps:echo", scope={"user": "alice", "headers": [(b"cookie", b"a=1")]}
        )

        def test_http(asgi_http):
            body = json.loads(asgi_http.get("/x").body)
            assert body["user"] == "alice"
            assert body["headers"] == [["cookie", "a=1"]]

        def test_communicator(asgi_communicator):
            assert asgi_communicator.scope["user"] == "alice"

        def test_websocket(asgi_websocket):
            with asgi_websocket("/ws") as socket:
                socket.connect()
                assert json.loads(socket.receive_from())["user"] == "alice"

        def test_what_the_test_passes_wins(asgi_http):
            body = json.loads(asgi_http.get("/", scope={"user": "bob"}).body)
            assert body["user"] == "bob"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=4)


# -- misuse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ("kind='asgi3'", "kind='asgi3' is not valid (choose 'asgi', 'wsgi')"),
        ("lifespan='yes'", "lifespan='yes' is not valid (choose 'auto', 'on', 'off')"),
        (
            "lifespan_scope='test'",
            "lifespan_scope='test' is not valid (choose 'function', 'class', "
            "'module', 'package', 'session')",
        ),
        (
            "validate='strict'",
            "validate='strict' is not valid (choose 'raise', 'warn', 'off')",
        ),
        ("validate=None", "validate=None is not valid (choose 'raise', 'warn', 'off')"),
        (
            "scope='user=alice'",
            "scope='user=alice' must be a mapping of scope keys to override, such "
            "as scope={'user': 'alice'}",
        ),
        (
            "scope=[('user', 'alice')]",
            "scope=[('user', 'alice')] must be a mapping of scope keys to override, "
            "such as scope={'user': 'alice'}",
        ),
        (
            "lifespan_scop='module', port=80",
            f"unknown option(s) lifespan_scop, port (valid: {VALID_OPTIONS})",
        ),
    ],
)
def test_bad_marker_option(pytester: pytest.Pytester, options: str, shown: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.asgi_app("apps:echo", {options})
        def test_it(asgi_http):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_it _*",
            "test_bad_marker_option.py::test_it: @pytest.mark.asgi_app on "
            f"test_bad_marker_option.py::test_it: {shown}",
        ]
    )
    no_traceback(result)


def test_two_positional_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:echo", "off")
        def test_it(asgi_app):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_two_positional_arguments.py::test_it: @pytest.mark.asgi_app on "
            "test_two_positional_arguments.py::test_it: takes one application, got "
            "2 positional arguments ('apps:echo', 'off'); pass the options by "
            "keyword, such as lifespan='off'",
        ]
    )
    no_traceback(result)


def test_application_given_twice(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:echo", app="apps:wsgi")
        def test_it(asgi_app):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_application_given_twice.py::test_it: @pytest.mark.asgi_app on "
            "test_application_given_twice.py::test_it: the application is given "
            "twice, as 'apps:echo' and as app='apps:wsgi'; pass it once",
        ]
    )
    no_traceback(result)


def test_misuse_names_the_marked_node(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.asgi_app("apps:echo", validate="loud")

        def test_module_marker(asgi_app):
            pass

        @pytest.mark.asgi_app(lifespan="always")
        class TestClass:
            def test_class_marker(self, asgi_app):
                pass

            @pytest.mark.asgi_app(lifespan="off", validate="off")
            def test_closer_values_win(self, asgi_app):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2, passed=1)
    result.stdout.fnmatch_lines(
        [
            "test_misuse_names_the_marked_node.py::test_module_marker: "
            "@pytest.mark.asgi_app on test_misuse_names_the_marked_node.py: "
            "validate='loud' is not valid (choose 'raise', 'warn', 'off')",
            "test_misuse_names_the_marked_node.py::TestClass::test_class_marker: "
            "@pytest.mark.asgi_app on test_misuse_names_the_marked_node.py::"
            "TestClass: lifespan='always' is not valid (choose 'auto', 'on', 'off')",
        ]
    )
    no_traceback(result)


def test_misuse_fails_every_fixture_that_needs_the_app(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.asgi_app("apps:echo", kind="http")

        def test_app(asgi_app):
            pass

        def test_http(asgi_http):
            pass

        def test_communicator(asgi_communicator):
            pass

        def test_websocket(asgi_websocket):
            pass

        def test_lifespan(asgi_lifespan):
            pass

        def test_state(asgi_state):
            pass

        @pytest.mark.asyncio
        async def test_async(asgi_http):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=7)
    problem = (
        ": @pytest.mark.asgi_app on test_misuse_fails_every_fixture_that_needs_the_app"
        ".py: kind='http' is not valid (choose 'asgi', 'wsgi')"
    )
    result.stdout.fnmatch_lines(
        [f"*::{name}{problem}" for name in ("test_app", "test_http", "test_async")],
        consecutive=False,
    )
    no_traceback(result)


def test_fixture_misuse_fails_without_a_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:echo", lifespan="off")
        def test_it(asgi_state):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    # The fixture's own wording is tested with the fixture; here, its form.
    result.stdout.fnmatch_lines(
        [
            "test_fixture_misuse_fails_without_a_traceback.py::test_it: asgi_state: "
            "there is no lifespan state*lifespan='off'*"
        ]
    )
    no_traceback(result)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:echo")
        def test_it():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.asgi_app(app=None, *, kind=None, lifespan='auto', "
            "lifespan_scope='function', validate='raise', scope=None): the ASGI or "
            "WSGI application (an object or 'package.module:attribute') the asgi_* "
            "fixtures drive, and how",
        ]
    )


def test_a_lone_function_as_pytestmark_gets_the_reason_explained(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        async def application(scope, receive, send):
            pass

        pytestmark = pytest.mark.asgi_app(application)

        def test_it(asgi_app):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*TypeError: got <function application at *> instead of Mark",
            "*- pytest-asgiref -*",
            "pytest takes a lone function or class passed to a marker as the object "
            "being decorated, *Pass application objects by keyword: "
            "pytest.mark.asgi_app(app=application)*",
        ]
    )


def test_other_collection_errors_get_no_marker_hint(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = print

        def test_it():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.no_fnmatch_line("*pytest-asgiref*")
