"""The ``asgi_app`` marker: which application a test drives, and how.

Markers on the test, its class and its module (``pytestmark``) combine, the
closest winning option by option; the command line and ini file fill in what
no marker says. The result is an :class:`AppChoice`, resolved once per test.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_asgiref._options import (
    LIFESPAN_MODES,
    LIFESPAN_SCOPES,
    VALIDATE_MODES,
    settings_of,
)

if TYPE_CHECKING:
    from pytest_asgiref._apps import AppKind

__all__ = [
    "MARKER_HELP",
    "AppChoice",
    "LoadedApp",
    "choice_for",
    "fail_for",
    "load_choice",
    "marker_names_used",
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


def marker_names_used(items: Iterable[pytest.Item], names: Collection[str]) -> set[str]:
    """Which of ``names`` mark any of ``items``, or a node above one.

    One look at each node's own markers, where asking every item with
    ``get_closest_marker`` would walk up the tree once per item: a hook that
    runs for every test can skip its marker lookup when no test has one.
    """
    found: set[str] = set()
    seen: set[int] = set()
    for item in items:
        node: pytest.Item | pytest.Collector | None = item
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            found.update(mark.name for mark in node.own_markers if mark.name in names)
            node = node.parent
    return found


def _option(item: pytest.Item, name: str, value: object, where: str) -> object:
    """Check one marker option's value; booleans become their spelled mode."""
    if value is None and name in ("kind", "scope"):
        # The documented defaults: detect the kind, override nothing.
        return value
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
                f"arguments {mark.args!r}; pass the options by keyword, such as "
                "lifespan='off'",
            )
        arguments = dict(mark.kwargs)
        if "app" in arguments:
            if mark.args:
                fail_for(
                    item,
                    f"{where}: the application is given twice, as {mark.args[0]!r} "
                    f"and as app={arguments['app']!r}; pass it once",
                )
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
    # Imported here: loading the plugin does not load what loads apps.
    from pytest_asgiref._apps import (  # noqa: PLC0415
        AppError,
        as_asgi3,
        classify,
        load_app,
    )

    value = choice.value
    try:
        if isinstance(value, str):
            cache = item.config.stash.setdefault(_LOADED_KEY, {})
            if value not in cache:
                cache[value] = load_app(value)
            app = cache[value]
        else:
            app = value
    except AppError as error:
        fail_for(item, f"{choice.source}: {error}")
        raise  # unreachable: pytest.fail raises
    try:
        # A forced kind skips detection, not the check that app is callable.
        forced = choice.kind if callable(app) else None
        kind = forced or classify(app)
    except AppError as error:
        # Name the path too: the object alone may not say where it came from.
        named = f"{value!r}: " if isinstance(value, str) else ""
        fail_for(item, f"{choice.source}: {named}{error}")
        raise  # unreachable: pytest.fail raises
    asgi: Any
    if kind == "wsgi":
        # Imported on first use: most suites never wrap a WSGI application.
        from asgiref_core.wsgi import WsgiToAsgi  # noqa: PLC0415

        asgi = WsgiToAsgi(app)  # type: ignore[arg-type]
    else:
        asgi = as_asgi3(app)
    return LoadedApp(choice=choice, original=app, kind=kind, asgi=asgi)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


_LONE_CALLABLE_HINT: Final = (
    "pytest takes a lone function or class passed to a marker as the object "
    "being decorated, so `pytestmark = pytest.mark.asgi_app(application)` "
    "marks the application instead of making a marker. Pass application "
    "objects by keyword: pytest.mark.asgi_app(app=application), or use a "
    "'package.module:attribute' path."
)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    # pytest's own error ("got <function app> instead of Mark") does not say
    # why; add the reason when the module uses this marker.
    if (
        report.failed
        and isinstance(collector, pytest.Module)
        and "instead of Mark" in str(report.longrepr)
        and "asgi_app" in collector.path.read_text(errors="replace")
    ):
        add_section = getattr(report.longrepr, "addsection", None)
        if add_section is not None:
            add_section("pytest-asgiref", _LONE_CALLABLE_HINT)
    return report
