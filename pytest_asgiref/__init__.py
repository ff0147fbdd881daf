"""pytest_asgiref: the pytest plugin for testing ASGI applications.

The plugin is loaded through the ``pytest11`` entry point ``asgiref``; nothing
needs importing from here in a test suite.
"""

from __future__ import annotations

from asgiref_core import __version__

__all__ = ["__version__"]
