"""The plugin as a whole: ``-p no:asgiref`` switches it off, and pytest's
``--help``, ``--fixtures`` and ``--markers`` describe it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_asgiref import _fixtures

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("inner_ini")]

FIXTURES = (
    "asgi_app",
    "asgi_communicator",
    "asgi_http",
    "asgi_lifespan",
    "asgi_state",
    "asgi_websocket",
)

OPTIONS = (
    "--asgi-app=MODULE:ATTRIBUTE",
    "--asgi-lifespan=auto|on|off",
    "--asgi-lifespan-scope=function|class|module|package|session",
    "--asgi-validate=raise|warn|off",
    "--asgi-channel-layer=memory|redis://HOST:PORT/DB",
)


# -- switched off ----------------------------------------------------------------


@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixtures_are_unknown_when_off(pytester: pytest.Pytester, fixture: str) -> None:
    pytester.makepyfile(f"def test_it({fixture}):\n    pass\n")
    result = pytester.runpytest("-p", "no:asgiref")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"E       fixture '{fixture}' not found"])


@pytest.mark.parametrize("option", [option.split("=")[0] for option in OPTIONS])
def test_options_are_unknown_when_off(pytester: pytest.Pytester, option: str) -> None:
    result = pytester.runpytest("-p", "no:asgiref", f"{option}=memory")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*error: unrecognized arguments: {option}=memory"])


def test_header_is_absent_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest("-p", "no:asgiref")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("asgiref:*")
    result.stdout.no_fnmatch_line("plugins:*asgiref*")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["asgiref: app=*", "plugins: *asgiref-*"])


def test_marker_is_unknown_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asgi_app("apps:echo")
        def test_it():
            pass
        """
    )
    # In a subprocess: pytest.mark caches the markers it has seen registered.
    result = pytester.runpytest_subprocess("-p", "no:asgiref", "--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*'asgi_app' not found in `markers` configuration option*"]
    )


def test_ini_keys_are_unknown_when_off(
    pytester: pytest.Pytester, inner_ini: Callable[..., None]
) -> None:
    inner_ini("asgi_app = apps:echo")
    result = pytester.runpytest("--strict-config")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result = pytester.runpytest("-p", "no:asgiref", "--strict-config")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: Unknown config option: asgi_app"])


# -- pytest describes the plugin ------------------------------------------------------


def test_help_lists_the_options_in_their_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "ASGI testing (pytest-asgiref):",
            *(f"  {option}*" for option in OPTIONS),
        ],
        consecutive=False,
    )
    # The ini twins share the help text.
    result.stdout.fnmatch_lines(
        [
            "[[]pytest[]] configuration options in the first *",
            "  asgi_app (string):*The ASGI or WSGI application the asgi_* fixtures*",
        ]
    )
    for name in ("lifespan", "lifespan_scope", "validate", "channel_layer"):
        result.stdout.fnmatch_lines([f"  asgi_{name} (string):*"])


def test_help_is_absent_when_off(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:asgiref", "--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*ASGI testing*")
    result.stdout.no_fnmatch_line("*--asgi-*")


def test_fixtures_lists_the_fixtures_with_their_docstrings(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--fixtures")
    assert result.ret == pytest.ExitCode.OK
    for name in FIXTURES:
        doc = getattr(_fixtures, name).__doc__
        assert doc, f"{name} has no docstring"
        first_line = doc.strip().splitlines()[0]
        result.stdout.fnmatch_lines([f"{name} -- *_fixtures.py:*", f"    {first_line}"])
    # Private machinery stays out of the listing unless -v asks for it.
    result.stdout.no_fnmatch_line("_asgi_*")


def test_markers_lists_asgi_app(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.asgi_app(app=None, *): the ASGI or *"])
    result = pytester.runpytest("-p", "no:asgiref", "--markers")
    result.stdout.no_fnmatch_line("*asgi_app*")
