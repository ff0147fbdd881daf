"""asgiref_core stands on the standard library alone and never loads pytest.

Everything is imported in a fresh interpreter, because this test process has
pytest and its plugins loaded already and could not tell who imported what.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = frozenset({"pytest", "_pytest", "pluggy", "pytest_asyncio"})

# Runs in the child. The modules present before ``import asgiref_core`` come
# from interpreter start-up (site hooks, .pth files) and are not the package's
# doing, so only what appears afterwards is reported.
_PROBE = """
import importlib, json, pkgutil, sys, traceback

before = set(sys.modules)
failures = {}
names = ["asgiref_core"]
import asgiref_core

def on_walk_error(name):
    failures[name] = traceback.format_exc()

for info in pkgutil.walk_packages(
    asgiref_core.__path__, "asgiref_core.", onerror=on_walk_error
):
    names.append(info.name)
    try:
        importlib.import_module(info.name)
    except Exception:
        failures[info.name] = traceback.format_exc()

report = {
    "file": asgiref_core.__file__,
    "modules": names,
    "loaded": sorted(set(sys.modules) - before),
    "failures": failures,
}
with open(sys.argv[1], "w", encoding="utf-8") as stream:
    json.dump(report, stream)
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("layering") / "report.json"
    env = dict(os.environ)
    # Import this checkout's package, whatever is installed elsewhere.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        msg = (
            f"the import probe exited with {completed.returncode}:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
        pytest.fail(msg)
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def _top_level(name: str) -> str:
    return name.partition(".")[0]


def test_probe_imports_this_checkout(probe: dict[str, Any]) -> None:
    assert Path(probe["file"]).resolve().parent == ROOT / "asgiref_core"


def test_probe_discovers_public_and_private_submodules(probe: dict[str, Any]) -> None:
    # A discovery bug must not leave the checks below with nothing to check.
    for expected in (
        "asgiref_core._coroutines",
        "asgiref_core.compatibility",
        "asgiref_core.timeout",
        "asgiref_core.typing",
    ):
        assert expected in probe["modules"]


def test_every_submodule_imports(probe: dict[str, Any]) -> None:
    failures: dict[str, str] = probe["failures"]
    if failures:
        details = "\n".join(f"--- {name}\n{tb}" for name, tb in failures.items())
        msg = f"{len(failures)} asgiref_core module(s) failed to import:\n{details}"
        pytest.fail(msg)


def test_importing_asgiref_core_loads_no_pytest(probe: dict[str, Any]) -> None:
    offenders = sorted(
        name for name in probe["loaded"] if _top_level(name) in FORBIDDEN
    )
    assert not offenders, f"importing asgiref_core loaded {offenders}"


def test_importing_asgiref_core_loads_only_the_standard_library(
    probe: dict[str, Any],
) -> None:
    outside = sorted(
        {
            _top_level(name)
            for name in probe["loaded"]
            if _top_level(name) not in sys.stdlib_module_names
            and _top_level(name) != "asgiref_core"
        }
    )
    assert not outside, (
        f"importing asgiref_core loaded modules outside the standard library: {outside}"
    )


def test_typing_module_is_a_leaf() -> None:
    source = ROOT / "asgiref_core" / "typing.py"
    offenders: list[str] = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or _top_level(module) == "asgiref_core":
                offenders.append(f"line {node.lineno}: from {'.' * node.level}{module}")
        elif isinstance(node, ast.Import):
            offenders.extend(
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if _top_level(alias.name) == "asgiref_core"
            )
    assert not offenders, f"asgiref_core.typing imports from the package: {offenders}"
