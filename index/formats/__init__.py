"""Document readers, one module per format behind `Reader` (base.py), picked in registry.py.

The registry is imported on first use (PEP 562): the readers import PDF, Office and HTML libraries (0.3 s),
which answering a question never needs; what it needs (`Extraction`, the blocks) lives in base.py.
"""

from __future__ import annotations

from typing import Any

from .base import Extraction, Reader, SkippedFile

LAZY = ("BY_NAME", "READERS", "SUFFIXES", "reader_for")


def __getattr__(name: str) -> Any:
    if name in LAZY:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BY_NAME", "READERS", "SUFFIXES", "Extraction", "Reader", "SkippedFile", "reader_for"]
