"""asgiref_core: a fast, hang-free drop-in for asgiref's public API.

The modules mirror asgiref 3.13's (``asgiref_core.sync`` for ``asgiref.sync`` and
so on), so ``from asgiref_core.sync import sync_to_async`` replaces
``from asgiref.sync import sync_to_async``.
"""

from __future__ import annotations

__all__ = ["ASGIREF_API_VERSION", "__version__"]

#: This distribution's version.
__version__ = "0.1.0.dev0"

#: The asgiref release whose public API this package mirrors.
ASGIREF_API_VERSION = "3.13.0"
