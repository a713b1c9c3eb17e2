"""``modelmonitor users ...`` and ``modelmonitor tokens ...`` against the configured store.

They act as ``cli:<os user>`` in the audit log. Bad input stops with one line on
stderr and a non-zero exit (2 for bad input, 1 for an unknown user or token).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from modelmonitor.auth import accounts
from modelmonitor.auth.accounts import AccountConflict, AccountError, AccountNotFound
from modelmonitor.auth.audit import Actor
from modelmonitor.auth.store import AuthStore, create_auth_store
from modelmonitor.settings import ConfigError, load_settings
from modelmonitor.timeparse import parse_duration

__all__ = ["add_auth_commands"]

T = TypeVar("T")


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--data-dir", type=Path, help="where SQLite data lives (embedded mode)")
    parser.add_argument(
        "--database", dest="database_url", help="sqlite:///path or postgresql://..."
    )


def _actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return Actor(name=f"cli:{who}", role="admin", source="local")


def _run(args: argparse.Namespace, action: Callable[[AuthStore], Awaitable[T]]) -> T:
    settings = load_settings(args.config, database_url=args.database_url, data_dir=args.data_dir)

    async def run() -> T:
        store = create_auth_store(settings.effective_database_url)
        await store.connect()
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except AccountError as exc:
        raise ConfigError(str(exc)) from None
    except (AccountNotFound, AccountConflict) as exc:
        raise RuntimeError(str(exc)) from None


def _read_password(args: argparse.Namespace) -> str:
    """From stdin with ``--password-stdin``, else asked twice on the terminal."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for a password: pass it with --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the passwords do not match")
    return first


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _users_add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    view = _run(
        args,
        lambda store: accounts.add_user(
            store=store,
            clock=time.time,
            actor=_actor(),
            name=args.name,
            role=args.role,
            password=password,
        ),
    )
    print(f"added {view.name} ({view.role})")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    users = _run(args, lambda store: accounts.list_users(store=store))
    for user in users:
        print(f"{user.name}\t{user.role}\tsince {_when(user.created_at)}")
    if not users:
        print("no users (authentication is off while there are none)", file=sys.stderr)
    return 0


def _users_remove(args: argparse.Namespace) -> int:
    _run(
        args,
        lambda store: accounts.remove_user(
            store=store, clock=time.time, actor=_actor(), name=args.name, keep_an_admin=False
        ),
    )
    print(f"removed {args.name}")
    return 0


def _users_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    _run(
        args,
        lambda store: accounts.set_password(
            store=store, clock=time.time, actor=_actor(), name=args.name, password=password
        ),
    )
    print(f"password of {args.name} changed; their sessions ended")
    return 0


def _users_role(args: argparse.Namespace) -> int:
    view = _run(
        args,
        lambda store: accounts.set_role(
            store=store,
            clock=time.time,
            actor=_actor(),
            name=args.name,
            role=args.role,
            keep_an_admin=False,
        ),
    )
    print(f"{view.name} is now {view.role}")
    return 0


def _tokens_create(args: argparse.Namespace) -> int:
    expires_in = None
    if args.expires is not None:
        try:
            expires_in = parse_duration(args.expires)
        except ValueError as exc:
            raise ConfigError(f"--expires: {exc}") from None
    secret, view = _run(
        args,
        lambda store: accounts.create_token(
            store=store,
            clock=time.time,
            actor=_actor(),
            name=args.name,
            role=args.role,
            expires_in=expires_in,
        ),
    )
    # The secret alone on stdout (for scripts); what it is on stderr.
    print(
        f"token {view.id} ({view.name}, {view.role}, expires {_when(view.expires_at)}); "
        "shown once, store it now:",
        file=sys.stderr,
    )
    print(secret)
    return 0


def _tokens_list(args: argparse.Namespace) -> int:
    for token in _run(args, lambda store: accounts.list_tokens(store=store)):
        print(
            f"{token.id}\t{token.name}\t{token.role}\texpires {_when(token.expires_at)}\t"
            f"last used {_when(token.last_used_at)}"
        )
    return 0


def _tokens_revoke(args: argparse.Namespace) -> int:
    _run(
        args,
        lambda store: accounts.revoke_token(
            store=store, clock=time.time, actor=_actor(), token_id=args.id
        ),
    )
    print(f"revoked {args.id}")
    return 0


def add_auth_commands(commands: Any) -> None:
    """Add ``users`` and ``tokens`` to the ``modelmonitor`` command parser."""
    users = commands.add_parser("users", help="local users of the API and dashboard")
    user_commands = users.add_subparsers(
        dest="users_command", required=True, parser_class=type(users)
    )
    roles = ["viewer", "editor", "admin"]
    add = user_commands.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=roles, required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=_users_add)
    listing = user_commands.add_parser("list", help="list users")
    listing.set_defaults(handler=_users_list)
    remove = user_commands.add_parser("remove", help="remove a user and end their sessions")
    remove.add_argument("name")
    remove.set_defaults(handler=_users_remove)
    passwd = user_commands.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(handler=_users_passwd)
    role = user_commands.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=roles)
    role.set_defaults(handler=_users_role)
    for parser in (add, listing, remove, passwd, role):
        _store_flags(parser)

    tokens = commands.add_parser("tokens", help="API tokens for scripts and scrapers")
    token_commands = tokens.add_subparsers(
        dest="tokens_command", required=True, parser_class=type(tokens)
    )
    create = token_commands.add_parser("create", help="create a token (printed once)")
    create.add_argument("name")
    create.add_argument("--role", choices=["metrics", *roles], required=True)
    create.add_argument("--expires", help="lifetime such as 90d (default: until revoked)")
    create.set_defaults(handler=_tokens_create)
    token_list = token_commands.add_parser("list", help="list tokens (never their secrets)")
    token_list.set_defaults(handler=_tokens_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    revoke.set_defaults(handler=_tokens_revoke)
    for parser in (create, token_list, revoke):
        _store_flags(parser)
