"""``https://`` upstreams: verified by default, custom CA, SNI, verify off."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from modelmonitor.settings import ServiceConfig, TLSConfig
from tests.integration.proxy_upstreams import base_url, read_request, running_proxy

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=model.internal", "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=DNS:model.internal,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@contextlib.asynccontextmanager
async def tls_upstream(cert: Path, key: Path, seen_sni: list[str]) -> AsyncIterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def remember(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        seen_sni.append(name or "")

    context.sni_callback = remember  # type: ignore[assignment]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            while request := await read_request(reader):
                body = f"tls {request.target} host={request.header('host')}".encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_https_upstream_with_custom_ca_and_sni(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    sni: list[str] = []
    async with tls_upstream(cert, key, sni) as port:
        services = [
            ServiceConfig(
                name="ip",
                upstream=f"https://127.0.0.1:{port}",
                path_prefix="/ip",
                tls=TLSConfig(ca_file=cert),
            ),
            ServiceConfig(
                name="named",
                upstream=f"https://127.0.0.1:{port}",
                path_prefix="/named",
                tls=TLSConfig(ca_file=cert, server_name="model.internal"),
            ),
            ServiceConfig(name="untrusted", upstream=f"https://127.0.0.1:{port}", path_prefix="/u"),
            ServiceConfig(
                name="unverified",
                upstream=f"https://127.0.0.1:{port}",
                path_prefix="/nv",
                tls=TLSConfig(verify=False),
            ),
        ]
        async with running_proxy(*services) as (proxy, capture), httpx.AsyncClient() as client:
            url = base_url(proxy, "ip")
            response = await client.get(url + "/ip/predict")
            assert response.status_code == 200
            assert response.text == f"tls /predict host=127.0.0.1:{port}"
            named = await client.get(url + "/named/x")
            assert named.status_code == 200
            assert "model.internal" in sni
            refused = await client.get(url + "/u/x")
            assert refused.status_code == 502
            assert refused.json()["error"] == "upstream_connect"
            assert (await client.get(url + "/nv/x")).status_code == 200
            errors = {event.service: event.error for event in capture.snapshot()}
            assert errors == {
                "ip": "",
                "named": "",
                "untrusted": "upstream_connect",
                "unverified": "",
            }


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_websocket_to_a_tls_upstream(certificate: tuple[Path, Path], use_uvloop: bool) -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    cert, key = certificate

    async def echo(websocket: ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    async def scenario() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        async with serve(echo, "127.0.0.1", 0, ssl=context) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            config = ServiceConfig(
                name="wss", upstream=f"https://127.0.0.1:{port}", tls=TLSConfig(ca_file=cert)
            )
            async with running_proxy(config) as (proxy, capture):
                async with connect(f"ws://{proxy.addresses['wss']}/chat") as websocket:
                    for size in (5, 300_000):
                        message = b"m" * size
                        await websocket.send(message)
                        assert await websocket.recv() == message
                assert [event.status for event in capture.snapshot()] == [101]

    if use_uvloop:
        import uvloop

        uvloop.run(scenario())
    else:
        asyncio.run(scenario())
