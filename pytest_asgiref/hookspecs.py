"""The ``pytest_asgiref_*`` hook specifications.

Registered by :mod:`pytest_asgiref.plugin` in ``pytest_addhooks``; a conftest or
plugin implements them with plain functions of the same name.
"""

from __future__ import annotations

__all__: list[str] = []
