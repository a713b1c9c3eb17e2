"""Aliases shared across packages. Backend contracts live in each package's ``base.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeAlias

__all__ = ["JSON", "Clock", "HealthStatus", "Labels", "ServiceStatus"]

#: Returns the current Unix time in seconds; injectable so tests control time.
Clock: TypeAlias = Callable[[], float]
Labels: TypeAlias = dict[str, str]
JSON: TypeAlias = dict[str, Any]
#: A component's health, worst last.
HealthStatus: TypeAlias = Literal["ok", "degraded", "down"]
#: A monitored service's state, from its 1-minute window.
ServiceStatus: TypeAlias = Literal["healthy", "degraded", "down", "idle"]
