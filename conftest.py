"""Repository-wide test configuration.

``pytester`` drives the plugin's own tests; the terminal is pinned so tests that
match output do not depend on the machine that runs them.
"""

from __future__ import annotations

import os

pytest_plugins = ["pytester"]

os.environ.setdefault("COLUMNS", "120")
os.environ["PY_COLORS"] = "0"
os.environ.pop("FORCE_COLOR", None)
