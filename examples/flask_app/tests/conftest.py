from __future__ import annotations

import pytest
from app import app


@pytest.fixture(autouse=True)
def empty_store():
    """Every test starts with no to-dos."""
    store = app.extensions["todos"]
    store.clear()
    return store
