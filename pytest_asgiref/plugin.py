"""The plugin's entry point (``pytest11: asgiref``).

It holds no logic: it registers the hook specifications and lists the private
modules that carry the fixtures, markers and options.
"""

from __future__ import annotations

import pytest

from pytest_asgiref import hookspecs

__all__ = ["pytest_addhooks", "pytest_plugins"]

# The private plugin modules pytest loads alongside this one.
pytest_plugins: list[str] = []


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # pluggy rejects a module that declares no hooks; the first specifications
    # arrive with the plugin's features.
    if any(name.startswith("pytest_asgiref_") for name in vars(hookspecs)):
        pluginmanager.add_hookspecs(hookspecs)
