"""Helpers for benchmarks: free ports, child processes, process trees, CPU and RSS readings."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "ROOT",
    "cpu_seconds",
    "free_port",
    "process_label",
    "process_tree",
    "rss_mib",
    "spawn_python",
    "wait_http",
]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    """Resident memory of one process in MiB (0.0 once it is gone)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from ``/proc/*/task/*/children``)."""
    found = [pid]
    for current in found:  # grows while walking: breadth first
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{current}/task/{task}/children").read_text()
                    found.extend(int(child) for child in children.split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime summed over ``pids`` (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_label(pid: int) -> str:
    """A short name for a process: the ``modelmonitor`` sub-command, or the program."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    words = [arg.decode(errors="replace") for arg in argv if arg]
    for index, word in enumerate(words):
        if word in ("modelmonitor", "-m") and index + 1 < len(words):
            following = words[index + 1]
            if following == "modelmonitor" and index + 2 < len(words):
                following = words[index + 2]
            if following != "modelmonitor":
                return following
        if word.endswith("/modelmonitor") and index + 1 < len(words):
            return words[index + 1]
    return Path(words[0]).name if words else str(pid)


def spawn_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env)


def wait_http(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")
