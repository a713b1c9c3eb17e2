"""TLS both ways: ``https://`` upstreams (verified by default, custom CA, SNI, verify
off) and the proxy's own ports over TLS (``listen_tls``, mutual TLS)."""

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

from modelmonitor.settings import (
    ConfigError,
    ListenTLSConfig,
    ServiceConfig,
    TLSConfig,
    load_settings,
)
from tests.integration.proxy_upstreams import (
    Request,
    base_url,
    read_request,
    running_proxy,
    running_upstream,
)
from tests.integration.test_cli import run

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


async def report_proto(
    request: Request, _: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    body = f"proto={request.header('x-forwarded-proto')}".encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


def client_context(cert: Path, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cert)
    if key is not None:
        context.load_cert_chain(cert, key)
    return context


async def test_clients_reach_the_proxy_over_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = ListenTLSConfig(cert_file=cert, key_file=key).context()
    async with (
        running_upstream(report_proto) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url), tls=tls) as (
            proxy,
            capture,
        ),
    ):
        assert proxy.scheme == "https"
        url = f"https://{proxy.addresses['svc']}"
        async with httpx.AsyncClient(verify=client_context(cert)) as client:
            for _ in range(3):  # keep-alive over one TLS connection
                response = await client.get(url + "/predict")
                assert (response.status_code, response.text) == (200, "proto=https")
        async with httpx.AsyncClient() as plain:  # http:// to a TLS port gets nowhere
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://{proxy.addresses['svc']}/predict")
        statuses = [event.status for event in capture.snapshot()]
        assert statuses[:3] == [200, 200, 200]


async def test_mutual_tls_turns_away_clients_without_a_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    tls = ListenTLSConfig(cert_file=cert, key_file=key, client_ca_file=cert).context()
    async with (
        running_upstream(report_proto) as upstream,
        running_proxy(ServiceConfig(name="svc", upstream=upstream.url), tls=tls) as (proxy, _),
    ):
        url = f"https://{proxy.addresses['svc']}/predict"
        async with httpx.AsyncClient(verify=client_context(cert)) as anonymous:
            with pytest.raises(httpx.HTTPError):
                await anonymous.get(url)
        async with httpx.AsyncClient(verify=client_context(cert, key)) as known:
            assert (await known.get(url)).text == "proto=https"
        assert len(upstream.requests) == 1


def test_websocket_over_a_tls_listener(certificate: tuple[Path, Path]) -> None:
    import uvloop
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    cert, key = certificate

    async def echo(websocket: ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    async def scenario() -> None:
        tls = ListenTLSConfig(cert_file=cert, key_file=key).context()
        async with serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            config = ServiceConfig(name="ws", upstream=f"http://127.0.0.1:{port}")
            async with running_proxy(config, tls=tls) as (proxy, _):
                url = f"wss://{proxy.addresses['ws']}/chat"
                async with connect(url, ssl=client_context(cert)) as websocket:
                    await websocket.send("over tls")
                    assert await websocket.recv() == "over tls"

    uvloop.run(scenario())


def test_listen_tls_settings_fail_fast(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = certificate
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"listen_tls.*cannot use cert_file/key_file"):
        load_settings(listen_tls={"cert_file": garbage})
    with pytest.raises(ConfigError, match=r"listen_tls\.cert_file"):
        load_settings(listen_tls={"cert_file": tmp_path / "missing.pem"})
    config = tmp_path / "mm.yaml"
    config.write_text(
        f"target: http://127.0.0.1:8080\nlisten_tls:\n  cert_file: {cert}\n  key_file: {key}\n"
    )
    result = run("config", "check", str(config))
    assert result.returncode == 0, result.stderr
    assert "default: https://0.0.0.0:9090 -> http://127.0.0.1:8080" in result.stdout
    result = run("up", "--target", "http://127.0.0.1:1", "--tls-key", str(key))
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "modelmonitor: error: --tls-key needs --tls-cert",
    )


async def test_listen_tls_from_settings_reaches_every_proxy_port(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """Settings -> runtime -> proxy: the shared port and a service's own port speak TLS."""
    from modelmonitor.runtime import Parts, Runtime

    cert, key = certificate
    async with running_upstream(report_proto) as upstream:
        settings = load_settings(
            data_dir=tmp_path,
            listen="127.0.0.1:0",
            listen_tls={"cert_file": cert, "key_file": key},
            services=[
                {"name": "shared", "upstream": upstream.url},
                {"name": "own", "upstream": upstream.url, "listen": "127.0.0.1:0"},
            ],
        )
        runtime = Runtime(settings, parts=Parts(proxy=True, worker=True, api=False))
        await runtime.start()
        try:
            addresses = runtime.proxy_addresses
            assert addresses["shared"] != addresses["own"]
            assert any(line.startswith("proxy    own: https://") for line in runtime.describe())
            async with httpx.AsyncClient(verify=client_context(cert)) as client:
                for name in ("shared", "own"):
                    response = await client.get(f"https://{addresses[name]}/predict")
                    assert response.text == "proto=https"
        finally:
            await runtime.stop()
