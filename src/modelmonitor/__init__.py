"""ModelMonitor: real-time monitoring for machine-learning model APIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ModelAPIMonitor", "__version__"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from modelmonitor.monitor import ModelAPIMonitor


def __getattr__(name: str) -> Any:
    # Lazy so that ``import modelmonitor`` stays cheap for the proxy and the CLI.
    if name == "ModelAPIMonitor":
        from modelmonitor.monitor import ModelAPIMonitor

        return ModelAPIMonitor
    raise AttributeError(name)
