"""pytest_asgiref: the pytest plugin for testing ASGI applications.

The plugin is loaded through the ``pytest11`` entry point ``asgiref``; nothing
needs importing from here in a test suite. The warning classes are here so
that ``-W error::pytest_asgiref.PytestAsgiThreadLeakWarning`` and the like
can name them, and :class:`HangTimeout`, the exception a hung test gets.
"""

from __future__ import annotations

from asgiref_core import __version__
from pytest_asgiref._outcomes import (
    HangTimeout,
    PytestAsgiPendingTaskWarning,
    PytestAsgiThreadLeakWarning,
)

__all__ = [
    "HangTimeout",
    "PytestAsgiPendingTaskWarning",
    "PytestAsgiThreadLeakWarning",
    "__version__",
]
