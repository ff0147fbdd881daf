"""Where the plugin keeps its per-run objects in ``config.stash``.

In a module of their own so that the leak check can look at the portal and
the running lifespans without importing the lifespan machinery (the portal's
module is small, and loaded anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from pytest_asgiref._portal import Portal

if TYPE_CHECKING:
    from pytest_asgiref._lifespan import RunningLifespan

__all__ = ["LIFESPANS", "PORTAL"]

#: The session's portal (an event loop thread for sync tests), once started.
PORTAL: Final = pytest.StashKey[Portal]()

#: The lifespans running for a wider scope than one test, keyed by
#: (scope node id, id of the app, id of the loop).
LIFESPANS: Final = pytest.StashKey[dict[tuple[str, int, int], "RunningLifespan"]]()
