"""The --asgi-* flags, their ini twins and the report header line.

Each valid value is shown to take effect through what the application or the
inner test sees; bad values are usage errors (exit code 4) that list the valid
ones and say where the value came from.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("sample_apps")]

Ini = Callable[..., None]

HTTP_TEST = """
import json

def test_get(asgi_http):
    response = asgi_http.get("/hello")
    assert response.status == 200
    assert json.loads(response.body)["path"] == "/hello"
"""

BROKEN_TEST = """
def test_broken(asgi_http):
    response = asgi_http.get("/")
    assert response.status == "200"
    assert response.body == b"broken"
"""

LIFESPAN_TEST = r"""
import apps

def test_one(asgi_http):
    asgi_http.get("/")
    print("\nEVENTS", apps.EVENTS)

def test_two(asgi_http):
    asgi_http.get("/")
    print("\nEVENTS", apps.EVENTS)
"""


# -- --asgi-app / asgi_app -----------------------------------------------------


def test_app_option_loads_the_app(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest_subprocess("--asgi-app", "apps:echo")
    result.assert_outcomes(passed=1)


def test_app_ini_key_loads_the_app(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_app = apps:echo")
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_app_option_beats_ini_key(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_app = apps:broken")
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest_subprocess("--asgi-app=apps:echo")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["apps", "apps:", ":echo", "  :  "])
def test_app_option_must_be_a_path(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest(f"--asgi-app={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the --asgi-app option: {value!r} is not an application path; "
            "write it as 'package.module:attribute', for example "
            "'myproject.asgi:application'"
        ]
    )


def test_app_ini_key_must_be_a_path(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_app = apps.echo")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the asgi_app ini key in tox.ini: 'apps.echo' is not an "
            "application path; write it as 'package.module:attribute', for "
            "example 'myproject.asgi:application'"
        ]
    )


# -- --asgi-lifespan / asgi_lifespan -------------------------------------------


@pytest.mark.parametrize(
    ("value", "events"),
    [
        ("off", "EVENTS ['http']"),
        ("auto", "EVENTS ['lifespan', 'http']"),
        ("on", "EVENTS ['lifespan', 'http']"),
    ],
)
def test_lifespan_option(pytester: pytest.Pytester, value: str, events: str) -> None:
    pytester.makepyfile(LIFESPAN_TEST)
    result = pytester.runpytest_subprocess(
        "--asgi-app=apps:echo", f"--asgi-lifespan={value}", "-s", "-k", "test_one"
    )
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines([events])


def test_lifespan_ini_key(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_app = apps:echo", "asgi_lifespan = off")
    pytester.makepyfile(LIFESPAN_TEST)
    result = pytester.runpytest_subprocess("-s", "-k", "test_one")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["EVENTS ['http']"])


def test_lifespan_option_beats_ini_key(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_app = apps:echo", "asgi_lifespan = off")
    pytester.makepyfile(LIFESPAN_TEST)
    result = pytester.runpytest_subprocess("--asgi-lifespan=on", "-s", "-k", "test_one")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["EVENTS ['lifespan', 'http']"])


def test_lifespan_on_fails_an_app_without_one(pytester: pytest.Pytester) -> None:
    # 'auto' runs a WSGI application without a lifespan; 'on' insists.
    pytester.makepyfile(
        """
        def test_wsgi(asgi_http):
            assert asgi_http.get("/").status == 200
        """
    )
    result = pytester.runpytest_subprocess("--asgi-app=apps:wsgi")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--asgi-app=apps:wsgi", "--asgi-lifespan=on")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_lifespan_on_fails_an_app_without_one.py::test_wsgi: the "
            "--asgi-app option (lifespan='on'): a WSGI application has no "
            "lifespan; use lifespan='auto' or 'off'"
        ]
    )


# -- --asgi-lifespan-scope / asgi_lifespan_scope --------------------------------


@pytest.mark.parametrize(
    ("value", "events"),
    [
        ("function", "EVENTS ['lifespan', 'http', 'lifespan', 'http']"),
        ("module", "EVENTS ['lifespan', 'http', 'http']"),
        ("session", "EVENTS ['lifespan', 'http', 'http']"),
    ],
)
def test_lifespan_scope_option(
    pytester: pytest.Pytester, value: str, events: str
) -> None:
    pytester.makepyfile(LIFESPAN_TEST)
    result = pytester.runpytest_subprocess(
        "--asgi-app=apps:echo", f"--asgi-lifespan-scope={value}", "-s"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([events])


def test_lifespan_scope_ini_key(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_app = apps:echo", "asgi_lifespan_scope = module")
    pytester.makepyfile(LIFESPAN_TEST)
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["EVENTS ['lifespan', 'http', 'http']"])


def test_lifespan_scope_option_beats_ini_key(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_app = apps:echo", "asgi_lifespan_scope = module")
    pytester.makepyfile(LIFESPAN_TEST)
    result = pytester.runpytest_subprocess("--asgi-lifespan-scope=function", "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["EVENTS ['lifespan', 'http', 'lifespan', 'http']"])


# -- --asgi-validate / asgi_validate -------------------------------------------


def test_validate_raise_is_the_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BROKEN_TEST)
    result = pytester.runpytest_subprocess("--asgi-app=apps:broken")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *ASGIProtocolError: sent 'http.response.start' message: 'status' "
            "must be int (got '200'); expected an int HTTP status code such as "
            "200 [[]rule http.response.start.status[]]",
            "E       Last 2 message(s), oldest first:",
            "E          *to app    {'type': 'http.request', *}",
            "E          *from app  {'type': 'http.response.start', 'status': '200', *}",
        ]
    )


def test_validate_off_lets_a_broken_app_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BROKEN_TEST)
    result = pytester.runpytest_subprocess(
        "--asgi-app=apps:broken", "--asgi-validate=off", "-W", "error"
    )
    result.assert_outcomes(passed=1)


def test_validate_warn_warns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BROKEN_TEST)
    result = pytester.runpytest_subprocess(
        "--asgi-app=apps:broken", "--asgi-validate=warn"
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*ASGIProtocolWarning: sent 'http.response.start' message: 'status' "
            "must be int (got '200'); * [[]rule http.response.start.status[]]",
        ]
    )


def test_validate_warn_in_an_async_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from asgiref_core.validate import ASGIProtocolWarning

        @pytest.mark.asyncio
        async def test_broken(asgi_http):
            with pytest.warns(ASGIProtocolWarning, match=r"rule http\\.response"):
                response = await asgi_http.get("/")
            assert response.body == b"broken"
        """
    )
    result = pytester.runpytest_subprocess(
        "--asgi-app=apps:broken", "--asgi-validate=warn"
    )
    result.assert_outcomes(passed=1)


def test_validate_ini_key(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_app = apps:broken", "asgi_validate = off")
    pytester.makepyfile(BROKEN_TEST)
    result = pytester.runpytest_subprocess("-W", "error")
    result.assert_outcomes(passed=1)


def test_validate_option_beats_ini_key(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_app = apps:broken", "asgi_validate = off")
    pytester.makepyfile(BROKEN_TEST)
    result = pytester.runpytest_subprocess("--asgi-validate=raise")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*[[]rule http.response.start.status[]]"])


# -- --asgi-channel-layer / asgi_channel_layer ------------------------------------

LAYER_HOOK = """
from asgiref_core.inmemory import InMemoryChannelLayer

def pytest_asgiref_channel_layer(request, url):
    print("\\nLAYER URL", url)
    # Stands in for the Redis layer the URL names.
    return InMemoryChannelLayer()
"""

LAYER_TEST = """
def test_layer(asgi_channel_layer):
    asgi_channel_layer.send("chat", {"type": "hello"})
    assert asgi_channel_layer.receive("chat") == {"type": "hello"}
"""


def test_channel_layer_default_is_in_memory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        LAYER_TEST
        + """
from asgiref_core.inmemory import InMemoryChannelLayer

def test_kind(asgi_channel_layer):
    assert type(asgi_channel_layer.layer) is InMemoryChannelLayer
"""
    )
    result = pytester.runpytest_subprocess("--asgi-channel-layer=memory")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("where", ["option", "ini key", "both"])
def test_channel_layer_setting_reaches_the_fixture(
    pytester: pytest.Pytester, inner_ini: Ini, where: str
) -> None:
    pytester.makeconftest(LAYER_HOOK)
    pytester.makepyfile(LAYER_TEST)
    args = ["-s"]
    if where != "option":
        inner_ini("asgi_channel_layer = redis://ini-host:6379/1")
    if where != "ini key":
        args.append("--asgi-channel-layer=redis://cli-host:6379/2")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    host = "ini-host:6379/1" if where == "ini key" else "cli-host:6379/2"
    result.stdout.fnmatch_lines([f"LAYER URL redis://{host}"])


# -- bad values ------------------------------------------------------------------

CHOICES = {
    "lifespan": "'auto', 'on', 'off'",
    "lifespan_scope": "'function', 'class', 'module', 'package', 'session'",
    "validate": "'raise', 'warn', 'off'",
}


@pytest.mark.parametrize("name", sorted(CHOICES))
@pytest.mark.parametrize("value", ["maybe", "", "ON"])
def test_bad_option_value(pytester: pytest.Pytester, name: str, value: str) -> None:
    flag = "--asgi-" + name.replace("_", "-")
    result = pytester.runpytest(f"{flag}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the {flag} option: {value!r} is not a valid asgi_{name} "
            f"(choose {CHOICES[name]})"
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_bad_ini_value(pytester: pytest.Pytester, inner_ini: Ini, name: str) -> None:
    inner_ini(f"asgi_{name} = sometimes")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the asgi_{name} ini key in tox.ini: 'sometimes' is not a "
            f"valid asgi_{name} (choose {CHOICES[name]})"
        ]
    )


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_bad_override_ini_value_names_the_o_option(
    pytester: pytest.Pytester, inner_ini: Ini, name: str
) -> None:
    inner_ini()
    result = pytester.runpytest("-o", f"asgi_{name}=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the -o asgi_{name} option: 'sometimes' is not a valid "
            f"asgi_{name} (choose {CHOICES[name]})"
        ]
    )


def test_bad_ini_value_is_ignored_when_the_option_wins(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini("asgi_validate = sometimes")
    result = pytester.runpytest("--asgi-validate=off")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["asgiref: *validate=off *"])


@pytest.mark.parametrize("value", ["memory://", "postgres://db/0", "Memory", ""])
def test_bad_channel_layer_option(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest(f"--asgi-channel-layer={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: the --asgi-channel-layer option: {value!r} is not a channel "
            "layer; use 'memory' or a Redis URL such as 'redis://127.0.0.1:6379/0'"
        ]
    )


def test_bad_channel_layer_ini_key(pytester: pytest.Pytester, inner_ini: Ini) -> None:
    inner_ini("asgi_channel_layer = inmemory")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: the asgi_channel_layer ini key in tox.ini: 'inmemory' is not "
            "a channel layer; use 'memory' or a Redis URL such as "
            "'redis://127.0.0.1:6379/0'"
        ]
    )


# -- the report header -------------------------------------------------------------


def test_report_header_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "asgiref: app=(marker) lifespan=auto/function validate=raise "
            "channel_layer=memory strict_threads=off timeout=off"
        ]
    )


def test_report_header_shows_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--asgi-app=apps:echo",
        "--asgi-lifespan=off",
        "--asgi-lifespan-scope=module",
        "--asgi-validate=warn",
        "--asgi-channel-layer=redis://127.0.0.1:6379/1",
    )
    result.stdout.fnmatch_lines(
        [
            "asgiref: app=apps:echo lifespan=off/module validate=warn "
            "channel_layer=redis://127.0.0.1:6379/1 strict_threads=off timeout=off"
        ]
    )
    assert len([line for line in result.outlines if "asgiref:" in line]) == 1


def test_report_header_shows_the_ini_keys(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini(
        "asgi_app = apps:wsgi",
        "asgi_lifespan = on",
        "asgi_lifespan_scope = session",
        "asgi_validate = off",
        "asgi_channel_layer = unix:///run/redis.sock",
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "asgiref: app=apps:wsgi lifespan=on/session validate=off "
            "channel_layer=unix:///run/redis.sock strict_threads=off timeout=off"
        ]
    )


def test_options_beat_ini_keys_in_the_header(
    pytester: pytest.Pytester, inner_ini: Ini
) -> None:
    inner_ini(
        "asgi_app = apps:wsgi",
        "asgi_lifespan = on",
        "asgi_lifespan_scope = session",
        "asgi_validate = off",
        "asgi_channel_layer = redis://127.0.0.1:6379/2",
    )
    result = pytester.runpytest(
        "--asgi-app=apps:echo",
        "--asgi-lifespan=auto",
        "--asgi-lifespan-scope=class",
        "--asgi-validate=warn",
        "--asgi-channel-layer=memory",
    )
    result.stdout.fnmatch_lines(
        [
            "asgiref: app=apps:echo lifespan=auto/class validate=warn "
            "channel_layer=memory strict_threads=off timeout=off"
        ]
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://***@cache:6379/0"),
        ("rediss://user:s3cret@cache:6380/0", "rediss://***@cache:6380/0"),
        ("redis://user:p%40ss@word@cache/0", "redis://***@cache/0"),
        ("redis://cache:6379/0?password=s3cret", "redis://cache:6379/0?password=***"),
    ],
)
def test_report_header_masks_a_redis_password(
    pytester: pytest.Pytester, url: str, shown: str
) -> None:
    result = pytester.runpytest(f"--asgi-channel-layer={url}")
    result.stdout.fnmatch_lines([f"asgiref: * channel_layer={shown} *"])
    assert "s3cret" not in result.stdout.str()
