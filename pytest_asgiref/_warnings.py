"""The warnings the plugin issues, kept apart so that loading it stays cheap.

``pytest_asgiref`` re-exports them: ``-W error::pytest_asgiref.<Name>``
names them by that path.
"""

from __future__ import annotations

import pytest

__all__ = ["PytestAsgiPendingTaskWarning", "PytestAsgiThreadLeakWarning"]


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


# Shown, and named in -W options, by their public path.
PytestAsgiThreadLeakWarning.__module__ = "pytest_asgiref"
PytestAsgiPendingTaskWarning.__module__ = "pytest_asgiref"
