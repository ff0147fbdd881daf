"""Every command-line flag and ini key, resolved once into a frozen Settings.

Each flag has an ini twin sharing its help text. Precedence is CLI > ini >
default here; markers, which win over both, are applied per test in
:mod:`pytest_asgiref._markers`. A bad value is a :class:`pytest.UsageError`
that lists the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pytest

__all__ = [
    "LIFESPAN_MODES",
    "LIFESPAN_SCOPES",
    "SETTINGS_KEY",
    "VALIDATE_MODES",
    "Settings",
    "add_options",
    "report_header",
    "resolve_settings",
    "settings_of",
    "without_password",
]

LIFESPAN_MODES: Final = ("auto", "on", "off")
# The pytest scopes a lifespan can span, narrowest first.
LIFESPAN_SCOPES: Final = ("function", "class", "module", "package", "session")
VALIDATE_MODES: Final = ("raise", "warn", "off")
#: How a boolean ini key may be spelled (any case), and what each means.
_TRUTH_VALUES: Final = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The run's effective settings, before any marker on a test."""

    app: str | None = None
    app_source: str = ""
    lifespan: str = "auto"
    lifespan_scope: str = "function"
    validate: str = "raise"
    channel_layer: str = "memory"
    strict_threads: bool = False
    allowed_threads: tuple[str, ...] = ()
    # Seconds a test phase may run before it is cancelled; 0 means no limit.
    timeout: float = 0.0
    #: Where ``timeout`` came from, in words: "the --asgi-timeout option".
    timeout_source: str = "the default"


SETTINGS_KEY: Final = pytest.StashKey[Settings]()


@dataclass(frozen=True, slots=True)
class _Option:
    name: str
    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    # A flag takes no value on the command line; its ini twin is a boolean.
    flag: bool = False


_OPTIONS: Final = (
    _Option(
        "app",
        "The ASGI or WSGI application the asgi_* fixtures drive, as "
        "'package.module:attribute', for tests without an asgi_app marker.",
        metavar="MODULE:ATTRIBUTE",
    ),
    _Option(
        "lifespan",
        "Run the application's lifespan around the tests: 'auto' (if the app "
        "supports it), 'on' (fail the test if it does not) or 'off'. "
        "Default: auto.",
        choices=LIFESPAN_MODES,
    ),
    _Option(
        "lifespan_scope",
        "How long one lifespan lasts: 'function' (each test), 'class', "
        "'module', 'package' or 'session'. Default: function.",
        choices=LIFESPAN_SCOPES,
    ),
    _Option(
        "validate",
        "Check every conversation against the ASGI specification: 'raise' "
        "(a violation fails the test), 'warn' or 'off'. Default: raise.",
        choices=VALIDATE_MODES,
    ),
    _Option(
        "channel_layer",
        "The layer asgi_channel_layer gives each test: 'memory' (a fresh "
        "InMemoryChannelLayer) or a redis:// URL (channels_redis, with a "
        "prefix of its own per test). Default: memory.",
        metavar="memory|redis://HOST:PORT/DB",
    ),
    _Option(
        "strict_threads",
        "Make a test error at teardown when it leaves a thread running or a "
        "task pending (without it they are reported as warnings). The ini "
        "key takes true or false; the asgi_strict_threads marker overrides "
        "both per test.",
        flag=True,
    ),
    _Option(
        "timeout",
        "Cancel a test whose setup, call or teardown runs longer than this "
        "many seconds, on its own event loop, and fail it with a report of "
        "its pending tasks, communicators and bridge waits; a deadlock "
        "between a thread and a loop fails it at once. 0 turns it off. "
        "Default: off.",
        metavar="SECONDS",
    ),
)

_ALLOWED_THREADS_HELP: Final = (
    "Thread name patterns (fnmatch globs, one per line) of long-lived threads "
    "that are not leaks, for the thread leak check."
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("asgiref", "ASGI testing (pytest-asgiref)")
    for option in _OPTIONS:
        flag = "--asgi-" + option.name.replace("_", "-")
        if option.flag:
            group.addoption(
                flag,
                dest="asgi_" + option.name,
                action="store_true",
                default=None,
                help=option.help,
            )
            parser.addini("asgi_" + option.name, option.help, default=None)
            continue
        group.addoption(
            flag,
            dest="asgi_" + option.name,
            default=None,
            metavar=option.metavar or "|".join(option.choices or ()),
            help=option.help,
        )
        parser.addini("asgi_" + option.name, option.help, default=None)
    parser.addini(
        "asgi_allowed_threads", _ALLOWED_THREADS_HELP, type="linelist", default=[]
    )


def _value(config: pytest.Config, name: str) -> tuple[str | None, str]:
    """The raw value of one setting and where it came from."""
    flag = "--asgi-" + name.replace("_", "-")
    from_cli = config.getoption("asgi_" + name)
    if from_cli is not None:
        return str(from_cli), f"the {flag} option"
    from_ini = config.getini("asgi_" + name)
    if from_ini:
        overrides = config.getoption("override_ini", None) or ()
        if any(entry.partition("=")[0] == "asgi_" + name for entry in overrides):
            # pytest hands a -o value over as the ini key's.
            return str(from_ini).strip(), f"the -o asgi_{name} option"
        where = config.inipath.name if config.inipath is not None else "ini file"
        return str(from_ini).strip(), f"the asgi_{name} ini key in {where}"
    return None, "the default"


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    value, source = _value(config, name)
    if value is None:
        return choices[0]
    if value not in choices:
        valid = ", ".join(repr(choice) for choice in choices)
        msg = f"{source}: {value!r} is not a valid asgi_{name} (choose {valid})"
        raise pytest.UsageError(msg)
    return value


def _flag(config: pytest.Config, name: str) -> bool:
    """A flag's value: on if given on the command line, else the ini key's."""
    value, source = _value(config, name)
    if value is None:
        return False
    parsed = _TRUTH_VALUES.get(value.lower())
    if parsed is None:
        valid = ", ".join(repr(spelling) for spelling in _TRUTH_VALUES)
        msg = f"{source}: {value!r} is not a valid asgi_{name} (choose {valid})"
        raise pytest.UsageError(msg)
    return parsed


def _check_app_path(value: str, source: str) -> str:
    module, colon, attribute = value.partition(":")
    if not colon or not module.strip() or not attribute.strip():
        msg = (
            f"{source}: {value!r} is not an application path; write it as "
            "'package.module:attribute', for example 'myproject.asgi:application'"
        )
        raise pytest.UsageError(msg)
    return value


def _check_layer(value: str, source: str) -> str:
    if value == "memory" or value.startswith(("redis://", "rediss://", "unix://")):
        return value
    msg = (
        f"{source}: {value!r} is not a channel layer; use 'memory' or a Redis "
        "URL such as 'redis://127.0.0.1:6379/0'"
    )
    raise pytest.UsageError(msg)


def _check_timeout(value: str, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    # NaN fails both comparisons; infinity is no limit at all.
    if not 0 <= seconds < float("inf"):
        msg = (
            f"{source}: {value!r} is not a valid asgi_timeout; give a number "
            "of seconds such as 30 or 2.5, or 0 to turn the limit off"
        )
        raise pytest.UsageError(msg)
    return seconds


def resolve_settings(config: pytest.Config) -> Settings:
    """Read, check and store the settings; called once in pytest_configure."""
    app, app_source = _value(config, "app")
    if app is not None:
        _check_app_path(app, app_source)
    layer, layer_source = _value(config, "channel_layer")
    if layer is not None:
        _check_layer(layer, layer_source)
    timeout, timeout_source = _value(config, "timeout")
    seconds = 0.0 if timeout is None else _check_timeout(timeout, timeout_source)
    # Order matters for "auto"/"raise"/"function": each tuple lists its
    # default first.
    lifespan_scopes = LIFESPAN_SCOPES
    settings = Settings(
        app=app,
        app_source=app_source if app is not None else "",
        lifespan=_choice(config, "lifespan", LIFESPAN_MODES),
        lifespan_scope=_choice(config, "lifespan_scope", lifespan_scopes),
        validate=_choice(config, "validate", VALIDATE_MODES),
        channel_layer=layer or "memory",
        strict_threads=_flag(config, "strict_threads"),
        allowed_threads=tuple(
            pattern.strip()
            for pattern in config.getini("asgi_allowed_threads")
            if pattern.strip()
        ),
        timeout=seconds,
        timeout_source=timeout_source,
    )
    config.stash[SETTINGS_KEY] = settings
    return settings


def settings_of(config: pytest.Config) -> Settings:
    return config.stash.get(SETTINGS_KEY, None) or resolve_settings(config)


def without_password(url: str) -> str:
    """``url`` with its credentials and any ``password=`` parameter masked."""
    base, question, query = url.partition("?")
    scheme, separator, rest = base.partition("://")
    if "@" in rest:
        rest = f"***@{rest.rpartition('@')[2]}"
    if question:
        parts = query.split("&")
        for index, part in enumerate(parts):
            key = part.partition("=")[0]
            if key.lower() == "password":
                parts[index] = f"{key}=***"
        query = "&".join(parts)
    return f"{scheme}{separator}{rest}{question}{query}"


def report_header(config: pytest.Config) -> str:
    settings = settings_of(config)
    # Keep a password in a Redis URL out of CI logs.
    layer = without_password(settings.channel_layer)
    return (
        f"asgiref: app={settings.app or '(marker)'}"
        f" lifespan={settings.lifespan}/{settings.lifespan_scope}"
        f" validate={settings.validate} channel_layer={layer}"
        f" strict_threads={'on' if settings.strict_threads else 'off'}"
        f" timeout={f'{settings.timeout:g}s' if settings.timeout else 'off'}"
    )


# -- hook implementations ------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    resolve_settings(config)


def pytest_report_header(config: pytest.Config) -> str:
    return report_header(config)
