"""The dashboard with 50 live services in Debian's Chromium: does it stay responsive?

A child process runs the worker and API with synthetic traffic for 50 services
(the same server as the WebSocket fan-out benchmark); Playwright opens the
overview and a service page and measures frames per second and long tasks while
snapshots arrive every second. Target: >= 30 fps and no task over 200 ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from _servers import ROOT, free_port, spawn_python, wait_http
from ws_fanout import SERVER


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        server = spawn_python(SERVER, str(port), data_dir, str(args.services), "1.0")
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            result = subprocess.run(
                ["node", "bench/responsiveness.mjs", f"http://127.0.0.1:{port}", str(args.seconds)],
                cwd=ROOT / "web",
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
        finally:
            server.terminate()
            server.wait(10)
    pages = json.loads(result.stdout.strip().splitlines()[-1])
    ok = True
    for name, page in pages.items():
        good = page["fps"] >= 30 and page["longest_task_ms"] <= 200
        ok = ok and good
        print(
            f"dashboard {name} with {args.services} live services: {page['fps']:.0f} fps,"
            f" worst frame {page['worst_frame_ms']:.0f} ms, {page['long_tasks']} long tasks"
            f" (longest {page['longest_task_ms']:.0f} ms), {page['cards']} services on screen"
            f" {'PASS' if good else 'FAIL'}"
        )
    print(f"target >= 30 fps and no task over 200 ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
