"""Every public module's ``__all__`` is sorted and lists exactly its public names.

A module's public names are read from its source, not from ``dir()``: the
top-level ``def``, ``class`` and assignment targets that do not start with
``_``, plus names imported from a private (``_``-prefixed) module of the same
package that the private module offers in its own ``__all__``: those are
deliberate re-exports, while its other names are machinery a public module
merely uses. Imports from anywhere else (the
standard library, the other package, public sibling modules) are not part of a
module's surface. Module metadata dunders bound at top level (``__version__``
and the like, never ``__all__``) count as public too, so a package can list
them.

Statements nested in top-level ``if``/``try``/``with`` blocks bind module names
as well and are included, except under ``if TYPE_CHECKING:``, which binds
nothing at run time.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = ("asgiref_core", "pytest_asgiref")

# Public names a module defines on purpose without listing them in __all__.
# The test also fails if an entry stops being true, so the list cannot rot.
UNLISTED: dict[str, frozenset[str]] = {
    # asgiref defines this TypedDict but leaves it out of its own __all__; the
    # drop-in keeps both facts (tests/core/test_typing.py checks the __all__).
    "asgiref_core.typing": frozenset({"HTTPResponseDebugEvent"}),
}


def _is_private_path(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _public_modules() -> list[str]:
    found: list[str] = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        found.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if not _is_private_path(info.name):
                found.append(info.name)
    return sorted(found)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _is_type_checking_guard(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _module_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run in the module namespace, blocks flattened."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if not _is_type_checking_guard(node.test):
                yield from _module_level_statements(node.body)
            yield from _module_level_statements(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level_statements(block)
            for handler in node.handlers:
                yield from _module_level_statements(handler.body)
        elif isinstance(node, ast.With | ast.AsyncWith):
            yield from _module_level_statements(node.body)


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _target_names(element)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _star_names(module_name: str) -> list[str]:
    source = importlib.import_module(module_name)
    exported = getattr(source, "__all__", None)
    if exported is not None:
        return list(exported)
    return [name for name in vars(source) if not name.startswith("_")]


def public_names(module: ModuleType) -> set[str]:
    """The names ``module`` makes public, read from its source."""
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    root = module.__name__.partition(".")[0]
    package = module.__spec__.parent if module.__spec__ else root

    defined: set[str] = set()  # bound by def, class or assignment
    imported: set[str] = set()  # bound by an import that counts (see docstring)
    for node in _module_level_statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not node.name.startswith("_"):
                defined.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                defined.update(_target_names(target))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            # A bare annotation (``x: int``) binds nothing.
            defined.update(_target_names(node.target))
        elif isinstance(node, ast.ImportFrom):
            source = importlib.util.resolve_name(
                "." * node.level + (node.module or ""), package
            )
            from_private_sibling = source.startswith(f"{root}.") and (
                _is_private_path(source.removeprefix(f"{root}."))
            )
            for alias in node.names:
                if alias.name == "*":
                    if from_private_sibling:
                        imported.update(_star_names(source))
                    continue
                bound = alias.asname or alias.name
                offered = from_private_sibling and alias.name in _star_names(source)
                if offered or _is_dunder(bound):
                    imported.add(bound)
        elif isinstance(node, ast.Import):
            # Only dunders can count here: a plain import binds a module.
            for alias in node.names:
                bound = alias.asname or alias.name.partition(".")[0]
                if _is_dunder(bound):
                    imported.add(bound)

    def counts(name: str) -> bool:
        if name == "__all__":
            return False
        return not name.startswith("_") or _is_dunder(name)

    # Dunder *functions* (a module ``__getattr__``, say) are hooks, not API;
    # the def branch above already skipped them.
    return {name for name in defined | imported if counts(name)}


PUBLIC_MODULES = _public_modules()


def test_discovery_finds_the_known_modules() -> None:
    # Guards against a discovery bug silently turning every check below off.
    for expected in (
        "asgiref_core",
        "asgiref_core.compatibility",
        "asgiref_core.timeout",
        "asgiref_core.typing",
        "pytest_asgiref",
        "pytest_asgiref.plugin",
    ):
        assert expected in PUBLIC_MODULES
    assert not any(_is_private_path(name) for name in PUBLIC_MODULES)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_is_sorted_and_lists_exactly_the_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    assert isinstance(exported, list | tuple), (
        f"{module_name}.__all__ is a {type(exported).__name__}, not a list or tuple"
    )
    listed = list(exported)
    assert all(isinstance(name, str) for name in listed), (
        f"{module_name}.__all__ holds non-strings: {listed!r}"
    )
    duplicates = sorted({name for name in listed if listed.count(name) > 1})
    assert not duplicates, f"{module_name}.__all__ repeats {duplicates}"
    assert listed == sorted(listed), (
        f"{module_name}.__all__ is not sorted; expected order:\n  {sorted(listed)}"
    )

    unlisted = UNLISTED.get(module_name, frozenset())
    public = public_names(module)
    missing = sorted(public - set(listed) - unlisted)
    extra = sorted(set(listed) - public)
    if missing or extra:
        msg = (
            f"{module_name}.__all__ does not match the module's public names:\n"
            f"  public but missing from __all__: {missing}\n"
            f"  in __all__ but not a public name of the module: {extra}\n"
            "Fix __all__, or give helpers that are not API a leading underscore "
            "(also when importing them: `from ._mod import name as _name`)."
        )
        pytest.fail(msg)

    stale = sorted(name for name in unlisted if name not in public or name in listed)
    assert not stale, (
        f"UNLISTED entries for {module_name} no longer apply: {stale}; "
        "remove them from tests/test_exports.py"
    )

    undefined = sorted(name for name in listed if not hasattr(module, name))
    assert not undefined, f"{module_name}.__all__ names missing attributes: {undefined}"


def test_public_names_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "exports_probe"
    package.mkdir()
    (package / "__init__.py").write_text("__version__ = '1'\n__all__ = []\n")
    (package / "_private.py").write_text(
        "__all__ = ['offered', 'starred']\n"
        "offered = 0\nstarred = 1\nhelper = 2\nother = 3\n"
    )
    (package / "_star.py").write_text("__all__ = ['from_star']\nfrom_star = 1\n")
    (package / "public.py").write_text(
        "from __future__ import annotations\n"
        "import os\n"
        "import typing\n"
        "from typing import TYPE_CHECKING, Any\n"
        "from exports_probe._private import helper, offered\n"
        "from ._private import other as renamed, starred as _hidden\n"
        "from ._star import *\n"
        "from exports_probe import __version__\n"
        "if TYPE_CHECKING:\n"
        "    from exports_probe._private import only_for_types\n"
        "    checked_only = 1\n"
        "else:\n"
        "    runtime_only = 1\n"
        "try:\n"
        "    in_try = 1\n"
        "except ImportError:\n"
        "    in_except = 1\n"
        "a, (b, *c) = 1, (2, 3)\n"
        "annotated: int = 1\n"
        "declared_only: int\n"
        "_private_value = 1\n"
        "def function() -> None:\n"
        "    inner = 1\n"
        "async def coroutine() -> None: ...\n"
        "class Klass:\n"
        "    attribute = 1\n"
        "def _helper() -> None: ...\n"
        "def __getattr__(name: str) -> Any: ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("exports_probe.public")
        found = public_names(module)
        found_in_package = public_names(importlib.import_module("exports_probe"))
    finally:
        # Forget the probe; later tests must not see it.
        for name in [name for name in sys.modules if name.startswith("exports_probe")]:
            del sys.modules[name]

    assert found == {
        "Klass",
        "__version__",
        "a",
        "annotated",
        "b",
        "c",
        "coroutine",
        "from_star",
        "function",
        "in_except",
        "offered",
        "in_try",
        "runtime_only",
    }
    assert found_in_package == {"__version__"}
