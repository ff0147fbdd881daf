"""Placeholder: filled in by the diagnostics it is named after."""

from __future__ import annotations

__all__: list[str] = []
