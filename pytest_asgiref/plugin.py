"""The plugin's entry point (``pytest11: asgiref``).

It holds no logic: it registers the hook specifications and the private
modules that carry the fixtures, markers and options.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from pytest_asgiref import (
    _fixtures,
    _fixtures_layer,
    _fixtures_server,
    _fixtures_wsgi,
    _hangs,
    _loops,
    _markers,
    _options,
    _threads,
    hookspecs,
)

__all__ = ["PARTS", "pytest_addhooks"]

#: The private plugin modules registered alongside this one, in this order,
#: each under its module name as ``pytest_plugins`` would. Not a
#: ``pytest_plugins`` list: pytest looks each name of such a list up among
#: the entry points of every installed distribution, which costs more than
#: loading the modules themselves.
PARTS: tuple[ModuleType, ...] = (
    _options,
    _markers,
    _loops,
    _fixtures,
    _fixtures_layer,
    _fixtures_server,
    _fixtures_wsgi,
    _threads,
    _hangs,
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)
    for part in PARTS:
        name = part.__name__
        if pluginmanager.is_blocked(name) or pluginmanager.has_plugin(name):
            continue
        pluginmanager.register(part, name)
