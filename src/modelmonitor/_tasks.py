"""Background tasks: a supervisor that restarts or fails loudly, and says so in health.

Every long-running component starts its loops with :meth:`Supervisor.spawn`
instead of a bare ``asyncio.create_task``. When a loop raises (or returns while it
should run forever), the supervisor logs the cause with its traceback, marks the
component ``down`` while it waits to restart it with exponential backoff, then
``degraded`` until the loop has run for a while again; with
:attr:`Restart.NEVER` the component stays down. ``/health`` and the system page
show :meth:`Supervisor.health`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from modelmonitor.types import HealthStatus

__all__ = ["Restart", "Supervisor", "TaskHealth", "cancel_and_wait"]

log = logging.getLogger("modelmonitor.tasks")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel every task, then wait until each has finished (``None`` is skipped)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Restart(enum.Enum):
    ALWAYS = "always"  #: restart after a failure or an unexpected return, with backoff
    NEVER = "never"  #: a failure is final: the component stays down


class Status(enum.Enum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


_RANK = {Status.OK: 0, Status.DEGRADED: 1, Status.DOWN: 2}
_STATUS_NAMES: dict[Status, HealthStatus] = {
    Status.OK: "ok",
    Status.DEGRADED: "degraded",
    Status.DOWN: "down",
}


@dataclass(frozen=True)
class TaskHealth:
    """A component's background work as health shows it."""

    status: HealthStatus
    detail: str = ""


@dataclass
class _State:
    name: str
    running: bool = True
    failures: int = 0
    last_error: str = ""
    last_restart: float | None = None
    retry_at: float | None = None


Factory = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    """Runs a component's named loops (see the module docs)."""

    def __init__(
        self,
        component: str,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        healthy_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.component = component
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._healthy_after = healthy_after
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._states: dict[str, _State] = {}

    def spawn(self, name: str, factory: Factory, *, restart: Restart = Restart.ALWAYS) -> None:
        """Run ``factory()`` as the loop ``name``; it should run until cancelled."""
        state = self._states[name] = _State(name)
        self._tasks.append(
            asyncio.create_task(
                self._supervise(state, factory, restart), name=f"{self.component}-{name}"
            )
        )

    async def _supervise(self, state: _State, factory: Factory, restart: Restart) -> None:
        delay = self._base_delay
        while True:
            started = self._clock()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "%s: %s failed: %s", self.component, state.name, state.last_error, exc_info=exc
                )
            else:
                state.last_error = "stopped unexpectedly"
                log.error("%s: %s stopped unexpectedly", self.component, state.name)
            state.failures += 1
            state.running = False
            if restart is Restart.NEVER:
                return
            if self._clock() - started >= self._healthy_after:
                delay = self._base_delay  # it ran well for a while: start the backoff over
            state.retry_at = self._clock() + delay
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)
            state.running = True
            state.retry_at = None
            state.last_restart = self._clock()
            log.warning("%s: restarting %s", self.component, state.name)

    def health(self) -> TaskHealth:
        """The worst of the loops: down while one is not running, degraded for a while
        after a restart, otherwise ok."""
        worst, details = Status.OK, []
        now = self._clock()
        for state in self._states.values():
            if not state.running:
                status = Status.DOWN
                when = (
                    f", restarting in {max(0.0, state.retry_at - now):.1f} s"
                    if state.retry_at is not None
                    else ", not restarted"
                )
                details.append(f"{state.name} failed ({state.last_error}){when}")
            elif state.last_restart is not None and now - state.last_restart < self._healthy_after:
                status = Status.DEGRADED
                details.append(
                    f"{state.name} restarted {state.failures}x, last after: {state.last_error}"
                )
            else:
                status = Status.OK
            if _RANK[status] > _RANK[worst]:
                worst = status
        return TaskHealth(status=_STATUS_NAMES[worst], detail="; ".join(details))

    @property
    def failures(self) -> int:
        return sum(state.failures for state in self._states.values())

    async def stop(self) -> None:
        """Cancel every loop and wait for them."""
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        self._states.clear()
