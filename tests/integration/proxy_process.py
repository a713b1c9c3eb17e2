"""Run a ProxyServer in its own process (for memory checks): prints its port, stops on stdin EOF.

python -m tests.integration.proxy_process http://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import sys

from modelmonitor.proxy import CaptureBuffer, ProxyServer
from modelmonitor.settings import ServiceConfig


async def main(upstream: str) -> None:
    capture = CaptureBuffer(10_000)
    proxy = ProxyServer(
        [ServiceConfig(name="svc", upstream=upstream)], listen="127.0.0.1:0", capture=capture
    )
    await proxy.start()
    print(proxy.bound[0][1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    await proxy.stop(grace=1.0)
    print(f"events={capture.captured_total}", flush=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1]))
