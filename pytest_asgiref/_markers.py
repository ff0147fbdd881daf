"""The ``asgi_app`` marker: which application a test drives, and how.

Markers on the test, its class and its module (``pytestmark``) combine, the
closest winning option by option; the command line and ini file fill in what
no marker says. The result is an :class:`AppChoice`, resolved once per test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from pytest_asgiref._apps import AppError, AppKind, classify, load_app
from pytest_asgiref._options import (
    LIFESPAN_MODES,
    LIFESPAN_SCOPES,
    VALIDATE_MODES,
    settings_of,
)

__all__ = [
    "MARKER_HELP",
    "AppChoice",
    "LoadedApp",
    "choice_for",
    "fail_for",
    "load_choice",
]

MARKER_HELP: Final = (
    "asgi_app(app=None, *, kind=None, lifespan='auto', lifespan_scope='function', "
    "validate='raise', scope=None): the ASGI or WSGI application (an object or "
    "'package.module:attribute') the asgi_* fixtures drive, and how"
)

_OPTIONS: Final = ("kind", "lifespan", "lifespan_scope", "validate", "scope")
_BOOLEAN_SPELLINGS: Final = {
    "lifespan": {True: "on", False: "off"},
    "validate": {True: "raise", False: "off"},
}


@dataclass(frozen=True, slots=True)
class AppChoice:
    """What the markers and settings say about one test's application."""

    value: object
    source: str
    kind: AppKind | None = None
    lifespan: str = "auto"
    lifespan_scope: str = "function"
    validate: str = "raise"
    scope: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadedApp:
    """An application ready to call: ``asgi`` is WSGI-wrapped when needed."""

    choice: AppChoice
    original: object
    kind: AppKind
    asgi: Any


_CHOICE_KEY: Final = pytest.StashKey[AppChoice]()
_LOADED_KEY: Final = pytest.StashKey[dict[str, object]]()


def fail_for(item: pytest.Item, problem: str) -> None:
    """Fail ``item`` with a marker or fixture misuse message (no traceback)."""
    pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)


def _option(item: pytest.Item, name: str, value: object, where: str) -> object:
    """Check one marker option's value; booleans become their spelled mode."""
    spellings = _BOOLEAN_SPELLINGS.get(name)
    if spellings is not None and isinstance(value, bool):
        value = spellings[value]
    valid: tuple[object, ...] | None = {
        "kind": ("asgi", "wsgi"),
        "lifespan": LIFESPAN_MODES,
        "lifespan_scope": LIFESPAN_SCOPES,
        "validate": VALIDATE_MODES,
    }.get(name)
    if valid is not None and value not in valid:
        choices = ", ".join(repr(choice) for choice in valid)
        fail_for(item, f"{where}: {name}={value!r} is not valid (choose {choices})")
    if name == "scope" and not isinstance(value, Mapping):
        fail_for(
            item,
            f"{where}: scope={value!r} must be a mapping of scope keys to "
            "override, such as scope={'user': 'alice'}",
        )
    return value


def choice_for(item: pytest.Item) -> AppChoice:
    """The test's application choice; ``source`` is empty if nothing names an app."""
    if _CHOICE_KEY in item.stash:
        return item.stash[_CHOICE_KEY]
    settings = settings_of(item.config)
    options: dict[str, object] = {}
    app: object = None
    source = ""
    for node, mark in item.iter_markers_with_node("asgi_app"):
        where = f"@pytest.mark.asgi_app on {node.nodeid or 'the root conftest'}"
        if len(mark.args) > 1:
            fail_for(
                item,
                f"{where}: takes one application, got {len(mark.args)} positional "
                f"arguments {mark.args!r}",
            )
        arguments = dict(mark.kwargs)
        if "app" in arguments:
            if mark.args:
                fail_for(item, f"{where}: the application is given twice")
            mark_app = arguments.pop("app")
        else:
            mark_app = mark.args[0] if mark.args else None
        unknown = sorted(set(arguments) - set(_OPTIONS))
        if unknown:
            valid = ", ".join(_OPTIONS)
            fail_for(
                item,
                f"{where}: unknown option(s) {', '.join(unknown)} (valid: app, "
                f"{valid})",
            )
        if source == "" and mark_app is not None:
            app, source = mark_app, where
        for name, value in arguments.items():
            # iter_markers walks from the test outwards: the first one wins.
            if name not in options:
                options[name] = _option(item, name, value, where)
    if source == "" and settings.app is not None:
        app, source = settings.app, settings.app_source
    choice = AppChoice(
        value=app,
        source=source,
        kind=options.get("kind"),  # type: ignore[arg-type]
        lifespan=str(options.get("lifespan", settings.lifespan)),
        lifespan_scope=str(options.get("lifespan_scope", settings.lifespan_scope)),
        validate=str(options.get("validate", settings.validate)),
        scope=options.get("scope") or {},  # type: ignore[arg-type]
    )
    item.stash[_CHOICE_KEY] = choice
    return choice


def load_choice(item: pytest.Item, choice: AppChoice) -> LoadedApp:
    """Import and classify the chosen application, failing the test if unusable."""
    value = choice.value
    try:
        if isinstance(value, str):
            cache = item.config.stash.setdefault(_LOADED_KEY, {})
            if value not in cache:
                cache[value] = load_app(value)
            app = cache[value]
        else:
            app = value
        kind = choice.kind or classify(app)
    except AppError as error:
        fail_for(item, f"{choice.source}: {error}")
        raise  # unreachable: pytest.fail raises
    asgi: Any = app
    if kind == "wsgi":
        # Imported on first use: most suites never wrap a WSGI application.
        from asgiref_core.wsgi import WsgiToAsgi  # noqa: PLC0415

        asgi = WsgiToAsgi(app)  # type: ignore[arg-type]
    return LoadedApp(choice=choice, original=app, kind=kind, asgi=asgi)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
