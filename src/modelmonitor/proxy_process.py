"""The proxy in a process of its own, started and watched by ``modelmonitor up``.

``up`` keeps the pipeline (worker, store, live state, alerts, anomaly, API) in its
own process and runs the proxy in a child, so nothing the pipeline does can hold
up a request. The child gets its settings as one JSON line on stdin and answers
one JSON line on stdout (its listening addresses, or the error that stopped it).
It stops on SIGTERM or when its stdin closes (the parent is gone) and ignores
SIGINT: Ctrl-C reaches the whole process group, and the parent decides the order
(the proxy stops and flushes first, then the pipeline stores what it sent). A
child that dies is reported and started again with backoff.

Run as ``python -m modelmonitor.proxy_process`` (by :class:`ProxyProcess` only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass

from modelmonitor._tasks import cancel_and_wait
from modelmonitor.settings import ConfigError, Settings

__all__ = ["ProxyProcess", "ProxyProcessState"]

log = logging.getLogger("modelmonitor.proxy_process")

_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ProxyProcessState:
    running: bool
    pid: int | None
    restarts: int
    last_exit: int | None


class ProxyProcess:
    """Parent side: spawn the proxy child, restart it when it dies, stop it first."""

    def __init__(
        self,
        settings: Settings,
        *,
        stop_timeout: float = 30.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._settings_line = settings.model_dump_json().encode() + b"\n"
        self._stop_timeout = stop_timeout
        self._max_backoff = max_backoff
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self.addresses: dict[str, str] = {}
        self.restarts = 0
        self.last_exit: int | None = None

    @property
    def state(self) -> ProxyProcessState:
        process = self._process
        running = process is not None and process.returncode is None
        return ProxyProcessState(
            running=running,
            pid=process.pid if running and process is not None else None,
            restarts=self.restarts,
            last_exit=self.last_exit,
        )

    async def start(self) -> None:
        """Start the child and wait until it listens; raises ``RuntimeError`` with its
        reason when it cannot start."""
        await self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name="modelmonitor-proxy-process"
        )

    async def _spawn(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "modelmonitor.proxy_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(self._settings_line)
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                await process.stdin.drain()
                line = await process.stdout.readline()
        except (TimeoutError, ConnectionError) as exc:
            await _terminate(process, 5.0)
            raise RuntimeError(f"the proxy process did not start: {exc!r}") from None
        answer = json.loads(line) if line.strip() else {"error": "it exited at start-up"}
        addresses = answer.get("addresses")
        if not isinstance(addresses, dict):
            await _terminate(process, 5.0)
            raise RuntimeError(str(answer.get("error", answer)))
        self.addresses = {str(name): str(address) for name, address in addresses.items()}
        self._process = process

    async def _watch(self) -> None:
        """Notice a child that dies; report it and start a new one, with backoff."""
        backoff = 1.0
        while not self._stopping:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            self.last_exit = code
            log.error("the proxy process exited with code %s; starting it again", code)
            while not self._stopping:
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff, backoff * 2)
                try:
                    await self._spawn()
                except (RuntimeError, OSError) as exc:
                    log.error("the proxy process could not start again: %s", exc)
                    continue
                self.restarts += 1
                log.warning("the proxy process is running again (pid %s)", self.state.pid)
                backoff = 1.0
                break

    async def stop(self) -> None:
        """Ask the child to stop (it stops accepting, finishes requests and flushes its
        events to the bus) and wait for it; kill it after ``stop_timeout``."""
        self._stopping = True
        await cancel_and_wait([self._watcher])
        self._watcher = None
        if self._process is not None:
            await _terminate(self._process, self._stop_timeout)
            if self._process.returncode not in (0, None):
                log.warning("the proxy process stopped with code %s", self._process.returncode)


async def _terminate(process: asyncio.subprocess.Process, grace: float) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    if process.returncode is None:
        log.error("the proxy process did not stop within %.0fs; killing it", grace)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    if process.stdin is not None:
        process.stdin.close()


# ---------------------------------------------------------------- the child


async def _serve(settings: Settings) -> int:
    from modelmonitor.runtime import Parts, Runtime

    runtime = Runtime(settings, parts=Parts(proxy=True, worker=False, api=False))
    try:
        await runtime.start()
    except (RuntimeError, OSError, ValueError) as exc:
        _answer({"error": str(exc)})
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    stdin = sys.stdin.fileno()

    def parent_gone() -> None:
        try:
            data = os.read(stdin, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(stdin)
            stop.set()

    loop.add_reader(stdin, parent_gone)
    _answer({"addresses": runtime.proxy_addresses})
    try:
        await stop.wait()
    finally:
        await runtime.stop()
    return 0


def _answer(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent orders the stop
    line = sys.stdin.buffer.readline()
    try:
        settings = Settings.model_validate_json(line)
    except ValueError as exc:
        _answer({"error": f"bad settings from the parent: {exc}"})
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_serve(settings))
    try:
        return uvloop.run(_serve(settings))
    except ConfigError as exc:
        _answer({"error": str(exc)})
        return 2


if __name__ == "__main__":
    sys.exit(main())
