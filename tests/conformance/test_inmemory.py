"""The channel layer conformance suite against ``InMemoryChannelLayer``.

The in-memory layer is the strict reference: every difference attribute
keeps its default.
"""

from __future__ import annotations

from typing import Any

from asgiref_core.inmemory import InMemoryChannelLayer
from pytest_asgiref.conformance import ChannelLayerConformance


class TestInMemoryChannelLayer(ChannelLayerConformance):
    def make_layer(self, **options: Any) -> InMemoryChannelLayer:
        return InMemoryChannelLayer(**options)
