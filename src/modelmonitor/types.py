"""Aliases shared across packages. Backend contracts live in each package's ``base.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = ["JSON", "Clock", "Labels"]

#: Returns the current Unix time in seconds; injectable so tests control time.
Clock: TypeAlias = Callable[[], float]
Labels: TypeAlias = dict[str, str]
JSON: TypeAlias = dict[str, Any]
