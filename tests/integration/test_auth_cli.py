"""``modelmonitor users|tokens`` against the configured store, the start-up refusal
beyond loopback, and the one-line message for a corrupt SQLite file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelmonitor.auth.store import create_auth_store
from tests.auth_helpers import PASSWORD, running_api


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmonitor", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelmonitor: error: "), result.stderr
    return lines[0]


def test_users_and_tokens_commands(tmp_path: Path) -> None:
    where = ("--data-dir", str(tmp_path))
    added = run(
        "users", "add", "ada", "--role", "admin", "--password-stdin", *where, stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0 and added.stdout.strip() == "added ada (admin)", added.stderr
    assert run("users", "list", *where).stdout.startswith("ada\tadmin\t")
    short = run(
        "users", "add", "bo", "--role", "viewer", "--password-stdin", *where, stdin="short\n"
    )
    assert short.returncode == 2 and "password must be at least 12" in one_error_line(short)
    twice = run(
        "users", "add", "ada", "--role", "viewer", "--password-stdin", *where, stdin=PASSWORD
    )
    assert twice.returncode == 1 and "already exists" in one_error_line(twice)
    role = run("users", "add", "bo", "--role", "root", "--password-stdin", *where, stdin=PASSWORD)
    assert role.returncode == 2 and "invalid choice" in role.stderr
    missing = run("users", "remove", "nobody", *where)
    assert missing.returncode == 1 and one_error_line(missing).endswith("no user 'nobody'")
    no_tty = run("users", "passwd", "ada", *where)
    assert no_tty.returncode == 2 and "--password-stdin" in one_error_line(no_tty)
    changed = run(
        "users", "passwd", "ada", "--password-stdin", *where, stdin="another long password\n"
    )
    assert changed.returncode == 0

    created = run("tokens", "create", "ci", "--role", "viewer", "--expires", "30d", *where)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("mmt_") and "shown once" in created.stderr
    listing = run("tokens", "list", *where).stdout
    assert "\tci\tviewer\t" in listing and secret not in listing
    token_id = listing.split("\t", 1)[0]
    bad = run("tokens", "create", "ci", "--role", "viewer", "--expires", "soon", *where)
    assert bad.returncode == 2 and "--expires" in one_error_line(bad)
    assert run("tokens", "revoke", token_id, *where).returncode == 0
    assert run("tokens", "revoke", token_id, *where).returncode == 1
    assert run("users", "remove", "ada", *where).returncode == 0
    assert "no users" in run("users", "list", *where).stderr

    async def audit() -> list[str]:
        store = create_auth_store(f"sqlite:///{tmp_path / 'modelmonitor.db'}")
        await store.connect()
        try:
            return [f"{e.actor} {e.action}" for e in await store.list_audit(limit=50)]
        finally:
            await store.close()

    actions = [line.split(" ", 1)[1] for line in asyncio.run(audit())]
    assert actions == ["user.remove", "token.revoke", "token.create", "user.password", "user.add"]
    assert all(line.startswith("cli:") for line in asyncio.run(audit()))


async def test_a_user_added_by_the_cli_turns_authentication_on(tmp_path: Path) -> None:
    async with (
        running_api(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url) as client,
    ):
        assert (await client.get("/api/v1/services")).status_code == 200
        added = await asyncio.to_thread(
            run,
            "users",
            "add",
            "ada",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            str(tmp_path),
            stdin=PASSWORD,
        )
        assert added.returncode == 0
        await asyncio.sleep(2.5)  # the "is auth on" answer is cached for 2 s
        assert (await client.get("/api/v1/services")).status_code == 401


@pytest.mark.parametrize("command", ["up", "api"])
def test_refuses_to_serve_beyond_loopback_without_auth(tmp_path: Path, command: str) -> None:
    args = [command, "--api", "0.0.0.0:0", "--data-dir", str(tmp_path)]
    if command == "up":
        args += ["--target", "http://127.0.0.1:1", "--listen", "127.0.0.1:0"]
    result = run(*args, timeout=60)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "beyond loopback" in line and "modelmonitor users add" in line
    assert "--insecure-no-auth" in line and "MODELMONITOR_ADMIN_TOKEN" in line


def test_corrupt_sqlite_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    database = tmp_path / "modelmonitor.db"
    database.write_bytes(b"SQLite format 3\x00" + b"\x07" * 3000)  # a truncated, broken file
    result = run(
        "up",
        "--target",
        "http://127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert str(database) in line and "not a usable SQLite database" in line
    assert "restore it from a backup" in line and "Traceback" not in result.stderr
