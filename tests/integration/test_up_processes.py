"""``modelmonitor up`` as processes: the proxy in a child of its own, stopped, killed, restarted.

Each test runs the real command against a small real upstream and checks what a
user sees: the ports, ``/health``, the stored events, the processes left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelmonitor.storage.sqlite import SQLiteStore
from tests.integration.proxy_upstreams import Request, running_upstream

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


async def answer_ok(
    request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    writer.write(OK)
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Up:
    process: asyncio.subprocess.Process
    proxy: str
    api: str
    data_dir: Path
    #: Requests the fixture itself sent through the proxy (its readiness probe).
    probes: int = 1

    async def health(self) -> dict[str, object]:
        async with httpx.AsyncClient() as client:
            body: dict[str, object] = (await client.get(self.api + "/health", timeout=10)).json()
            return body

    async def proxy_pid(self) -> int:
        detail = (await self.health())["components"]["proxy"]["detail"]  # type: ignore[index]
        return int(str(detail).split()[2].rstrip(","))

    async def stored(self) -> int:
        store = SQLiteStore(f"sqlite:///{self.data_dir / 'modelmonitor.db'}")
        await store.connect()
        try:
            return await store.count_events()
        finally:
            await store.close()


async def _wait_answering(url: str, seconds: float = 60.0) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(int(seconds * 10)):
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url, timeout=1.0)
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds:.0f}s")


@contextlib.asynccontextmanager
async def running_up(tmp_path: Path, *, new_session: bool = False) -> AsyncIterator[Up]:
    async with running_upstream(answer_ok) as upstream:
        proxy_port, api_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMONITOR_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "modelmonitor",
            "up",
            "--target",
            upstream.url,
            "--listen",
            f"127.0.0.1:{proxy_port}",
            "--api",
            f"127.0.0.1:{api_port}",
            "--data-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=new_session,
        )
        up = Up(process, f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{api_port}", tmp_path)
        try:
            await _wait_answering(up.api + "/health")
            await _wait_answering(up.proxy + "/")
            yield up
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _send(url: str, count: int, concurrency: int = 20) -> int:
    """``count`` requests, ``concurrency`` at a time; returns how many were answered 200."""
    answered = 0
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:

        async def one(index: int) -> None:
            nonlocal answered
            response = await client.get(f"/v1/predict/{index % 7}", timeout=30)
            answered += response.status_code == 200

        queue = list(range(count))
        for start in range(0, count, concurrency):
            await asyncio.gather(*(one(i) for i in queue[start : start + concurrency]))
    return answered


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


async def test_the_proxy_runs_in_a_child_process_and_health_says_so(tmp_path: Path) -> None:
    async with running_up(tmp_path) as up:
        pid = await up.proxy_pid()
        assert pid != up.process.pid
        parent = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1]
        assert int(parent) == up.process.pid
        assert b"modelmonitor.proxy_process" in Path(f"/proc/{pid}/cmdline").read_bytes()


async def test_events_answered_before_sigterm_are_all_stored(tmp_path: Path) -> None:
    async with running_up(tmp_path) as up:
        answered = await _send(up.proxy, 1500)
        up.process.send_signal(signal.SIGTERM)  # at once: events are still on their way
        _, err = await asyncio.wait_for(up.process.communicate(), 60)
        assert up.process.returncode == 0, err.decode()
    assert answered == 1500
    assert await up.stored() == 1500 + up.probes


async def test_ctrl_c_on_the_process_group_stops_everything_without_loss(tmp_path: Path) -> None:
    """Ctrl-C signals the whole group at once: the proxy child must not stop before
    the parent has ordered it to flush."""
    async with running_up(tmp_path, new_session=True) as up:
        child = await up.proxy_pid()
        answered = await _send(up.proxy, 500)
        os.killpg(up.process.pid, signal.SIGINT)
        await asyncio.wait_for(up.process.wait(), 60)
        assert up.process.returncode == 0
    assert not _alive(child)
    assert answered == 500
    assert await up.stored() == answered + up.probes


async def test_a_killed_proxy_process_is_reported_and_started_again(tmp_path: Path) -> None:
    async with running_up(tmp_path) as up:
        first = await up.proxy_pid()
        os.kill(first, signal.SIGKILL)
        health: dict[str, object] = {}
        for _ in range(300):
            await asyncio.sleep(0.1)
            health = await up.health()
            proxy = health["components"]["proxy"]  # type: ignore[index]
            if proxy["status"] == "ok" and str(first) not in proxy["detail"]:
                break
        proxy = health["components"]["proxy"]  # type: ignore[index]
        assert proxy["status"] == "ok" and "restarted 1x" in proxy["detail"], proxy
        assert await _send(up.proxy, 20) == 20
        up.process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(up.process.communicate(), 60)
    assert "the proxy process exited with code -9" in err.decode()


async def test_the_proxy_process_stops_when_its_parent_dies(tmp_path: Path) -> None:
    async with running_up(tmp_path) as up:
        child = await up.proxy_pid()
        up.process.kill()
        await up.process.wait()
        for _ in range(100):
            if not _alive(child):
                break
            await asyncio.sleep(0.1)
        assert not _alive(child), "the proxy outlived its parent"


@pytest.mark.parametrize("flag", ["--single-process"])
async def test_single_process_keeps_everything_in_one_process(tmp_path: Path, flag: str) -> None:
    async with running_upstream(answer_ok) as upstream:
        proxy_port, api_port = free_port(), free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "modelmonitor",
            "up",
            flag,
            "--target",
            upstream.url,
            "--listen",
            f"127.0.0.1:{proxy_port}",
            "--api",
            f"127.0.0.1:{api_port}",
            "--data-dir",
            str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await _wait_answering(f"http://127.0.0.1:{api_port}/health")
            async with httpx.AsyncClient() as client:
                health = (await client.get(f"http://127.0.0.1:{api_port}/health")).json()
            assert "buffer" in health["components"]["proxy"]["detail"]
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
