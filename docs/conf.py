"""Sphinx configuration for the pytest-asgiref documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``; warnings are
errors, so the pages must build clean.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# Make the packages importable from a source checkout too, so autodoc finds
# them whether or not the distribution is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_core = importlib.import_module("asgiref_core")

# -- Project ---------------------------------------------------------------

project = "pytest-asgiref"
author = "The pytest-asgiref developers"
copyright = "The pytest-asgiref developers"
release = _core.__version__
version = ".".join(release.split(".")[:2])

# -- General ---------------------------------------------------------------

# intersphinx is left out on purpose: it fetches inventories over the network
# at build time, and the build must work (and stay warning-free) offline.
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# -- autodoc ---------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Document only docstrings written for this project. Inherited ones come from
# the standard library (``Executor.submit``, say), are plain text rather than
# reStructuredText, and would fail the warnings-as-errors build.
autodoc_inherit_docstrings = False

# -- HTML ------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"{project} {release}"
html_theme_options = {
    "description": "A hang-free drop-in for asgiref, and a pytest plugin.",
}
