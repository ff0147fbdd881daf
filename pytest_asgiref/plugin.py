"""The plugin's entry point (``pytest11: asgiref``).

It holds no logic: it registers the hook specifications and lists the private
modules that carry the fixtures, markers and options.
"""

from __future__ import annotations

import pytest

from pytest_asgiref import hookspecs

__all__ = ["pytest_addhooks", "pytest_plugins"]

# The private plugin modules pytest loads alongside this one.
pytest_plugins: list[str] = [
    "pytest_asgiref._options",
    "pytest_asgiref._markers",
    "pytest_asgiref._loops",
    "pytest_asgiref._fixtures",
    "pytest_asgiref._fixtures_layer",
    "pytest_asgiref._fixtures_server",
    "pytest_asgiref._fixtures_wsgi",
    "pytest_asgiref._threads",
    "pytest_asgiref._hangs",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)
