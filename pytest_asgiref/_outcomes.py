"""The warnings the plugin issues and the exception it raises in a hung test.

Kept apart so that loading the plugin stays cheap. ``pytest_asgiref``
re-exports them: ``-W error::pytest_asgiref.<Name>`` names a warning by that
path, and ``except pytest_asgiref.HangTimeout`` the exception.
"""

from __future__ import annotations

import pytest

__all__ = [
    "HangTimeout",
    "PytestAsgiPendingTaskWarning",
    "PytestAsgiThreadLeakWarning",
]


class PytestAsgiThreadLeakWarning(pytest.PytestWarning):
    """A test left a thread running after its teardown.

    ``--asgi-strict-threads``, or
    ``-W error::pytest_asgiref.PytestAsgiThreadLeakWarning``, makes the test
    error instead.
    """


class PytestAsgiPendingTaskWarning(pytest.PytestWarning):
    """A test left a task pending on an event loop after its teardown.

    ``--asgi-strict-threads``, or
    ``-W error::pytest_asgiref.PytestAsgiPendingTaskWarning``, makes the test
    error instead.
    """


class HangTimeout(Exception):
    """Raised in a hung task, at the ``await`` it is stuck in, when a test
    phase runs past its ``--asgi-timeout`` limit.

    An ordinary exception, so that the code around the wait and pytest's
    teardown of the other fixtures handle it as they handle any failure.
    """


# Shown, and named in -W options and except clauses, by their public path.
PytestAsgiThreadLeakWarning.__module__ = "pytest_asgiref"
PytestAsgiPendingTaskWarning.__module__ = "pytest_asgiref"
HangTimeout.__module__ = "pytest_asgiref"
