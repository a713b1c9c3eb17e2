"""``modelmonitor``: run the system, its parts, the demo, and config checks."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelmonitor import __version__
from modelmonitor.settings import ConfigError, Settings, load_settings

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # One line and exit 2, instead of argparse's usage block.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_settings_flags(parser: argparse.ArgumentParser, *, proxy: bool, api: bool) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--data-dir", type=Path, help="where SQLite data lives (embedded mode)")
    parser.add_argument(
        "--broker", dest="broker_url", help="memory:// or amqp://user:pass@host/vhost"
    )
    parser.add_argument(
        "--database", dest="database_url", help="sqlite:///path or postgresql://..."
    )
    parser.add_argument("--cache", dest="cache_url", help="memory:// or redis://host:6379/0")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    if proxy:
        parser.add_argument("--target", help="upstream model API URL, e.g. http://127.0.0.1:8080")
        parser.add_argument("--listen", help="proxy address HOST:PORT (default 0.0.0.0:9090)")
        parser.add_argument(
            "--tls-cert", type=Path, help="serve the proxy over TLS with this PEM certificate"
        )
        parser.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")
    if api:
        parser.add_argument(
            "--api", help="API and dashboard address HOST:PORT (default 127.0.0.1:8000)"
        )
        parser.add_argument(
            "--insecure-no-auth",
            action="store_true",
            help="serve the API beyond loopback with no authentication (not recommended)",
        )
    else:
        parser.add_argument(
            "--health", dest="health_listen", help="serve GET /health on HOST:PORT (for probes)"
        )


def _settings(args: argparse.Namespace) -> Settings:
    keys = (
        "data_dir",
        "broker_url",
        "database_url",
        "cache_url",
        "log_level",
        "target",
        "listen",
        "api",
        "health_listen",
    )
    overrides = {key: getattr(args, key, None) for key in keys}
    if getattr(args, "insecure_no_auth", False):
        overrides["auth"] = {"insecure_no_auth": True}
    if getattr(args, "tls_cert", None) is not None:
        overrides["listen_tls"] = {"cert_file": args.tls_cert, "key_file": args.tls_key}
    elif getattr(args, "tls_key", None) is not None:
        raise ConfigError("--tls-key needs --tls-cert")
    return load_settings(args.config, **overrides)


def _run_parts(args: argparse.Namespace, *, proxy: bool, worker: bool, api: bool) -> int:
    from modelmonitor.runtime import Parts, Runtime, run_until_signalled

    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    demo = bool(getattr(args, "demo", False))
    if proxy and not (settings.effective_services or demo):
        raise ConfigError(
            "nothing to proxy: give --target URL (or MODELMONITOR_TARGET), --demo, "
            "or services in --config"
        )
    if proxy != worker and settings.broker_url.startswith("memory:"):
        raise ConfigError(
            "the memory:// broker only connects parts inside one process: "
            "use `modelmonitor up`, or give --broker amqp://..."
        )
    runtime = Runtime(
        settings,
        parts=Parts(proxy=proxy, worker=worker, api=api),
        demo=demo,
        demo_port=getattr(args, "demo_port", 8080),
        proxy_process=proxy and worker and not getattr(args, "single_process", False),
    )
    _install_loop()
    asyncio.run(run_until_signalled(runtime, ready="ModelMonitor is running; Ctrl-C stops it"))
    return 0


def _install_loop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _cmd_up(args: argparse.Namespace) -> int:
    return _run_parts(args, proxy=True, worker=True, api=True)


def _cmd_proxy(args: argparse.Namespace) -> int:
    return _run_parts(args, proxy=True, worker=False, api=False)


def _cmd_worker(args: argparse.Namespace) -> int:
    return _run_parts(args, proxy=False, worker=True, api=False)


def _cmd_api(args: argparse.Namespace) -> int:
    return _run_parts(args, proxy=False, worker=False, api=True)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from modelmonitor.alerts.system import validate_alerting

    settings = load_settings(args.file)
    rules, channels = validate_alerting(settings)
    services = settings.effective_services
    print(f"{args.file}: ok, {len(services)} service(s)")
    for service in services:
        where = service.listen or settings.listen
        prefix = service.path_prefix or ""
        scheme = "https" if settings.listen_tls is not None else "http"
        print(f"  {service.name}: {scheme}://{where}{prefix} -> {service.upstream}")
    if rules or channels:
        print(f"  {len(rules)} alert rule(s), {len(channels)} notification channel(s)")
    return 0


def _cmd_demo_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from modelmonitor.demo.model_api import create_demo_app

    print(f"demo model API on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_demo_app(), host=args.host, port=args.port, log_level="warning")
    return 0


def _cmd_demo_traffic(args: argparse.Namespace) -> int:
    from modelmonitor.demo.traffic import drive_traffic

    if args.rps <= 0 or args.duration <= 0:
        raise ConfigError("--rps and --duration must be positive")
    report = asyncio.run(
        drive_traffic(
            args.target, rps=args.rps, duration=args.duration, concurrency=args.concurrency
        )
    )
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(report.by_status.items()))
    print(
        f"sent {report.sent} requests in {report.seconds:.1f}s ({statuses}; "
        f"transport errors: {report.transport_errors})"
    )
    return 0


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, database_url=args.database_url, data_dir=args.data_dir)
    url = settings.effective_database_url
    applied = asyncio.run(_upgrade_database(url))
    for name in applied:
        print(f"applied {name}")
    print(f"database schema is up to date ({url.split('://', 1)[0]})")
    return 0


async def _upgrade_database(url: str) -> list[str]:
    from modelmonitor.storage import create_store

    store = create_store(url)
    upgrade = getattr(store, "upgrade", None)
    if upgrade is None:  # SQLite: connecting creates the schema
        await store.connect()
        await store.close()
        return []
    return [f"{migration.version:03d}_{migration.name}" for migration in await upgrade()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="modelmonitor", description="Real-time monitoring for model APIs.")
    parser.add_argument("--version", action="version", version=f"modelmonitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    up = commands.add_parser(
        "up", help="run proxy, worker and API (the proxy in a process of its own)"
    )
    _add_settings_flags(up, proxy=True, api=True)
    up.add_argument("--demo", action="store_true", help="also start the bundled demo model API")
    up.add_argument("--demo-port", type=int, default=8080, help="the demo model API's port")
    up.add_argument(
        "--single-process",
        action="store_true",
        help="run the proxy in the same process and event loop as the pipeline (slower)",
    )
    up.set_defaults(handler=_cmd_up)

    for name, helptext, proxy, api, handler in (
        ("proxy", "run only the proxy (needs --broker amqp://...)", True, False, _cmd_proxy),
        ("worker", "run only a worker (bus -> store and live state)", False, False, _cmd_worker),
        ("api", "run only the API and dashboard", False, True, _cmd_api),
    ):
        part = commands.add_parser(name, help=helptext)
        _add_settings_flags(part, proxy=proxy, api=api)
        part.set_defaults(handler=handler)

    db = commands.add_parser("db", help="database tools")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    upgrade = db_commands.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.add_argument("--config", type=Path, help="YAML settings file")
    upgrade.add_argument("--data-dir", type=Path, help="where SQLite data lives")
    upgrade.add_argument(
        "--database", dest="database_url", help="sqlite:///path or postgresql://..."
    )
    upgrade.set_defaults(handler=_cmd_db_upgrade)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(
        dest="config_command", required=True, parser_class=_Parser
    )
    check = config_commands.add_parser("check", help="validate a YAML config file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_cmd_config_check)

    demo = commands.add_parser("demo", help="the bundled demo model API and traffic")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, parser_class=_Parser)
    serve = demo_commands.add_parser("serve", help="run the demo model API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(handler=_cmd_demo_serve)
    traffic = demo_commands.add_parser("traffic", help="send realistic requests through the proxy")
    traffic.add_argument("--target", default="http://127.0.0.1:9090", help="the proxy's URL")
    traffic.add_argument("--rps", type=float, default=20.0)
    traffic.add_argument("--duration", type=float, default=60.0, help="seconds")
    traffic.add_argument("--concurrency", type=int, default=64)
    traffic.set_defaults(handler=_cmd_demo_traffic)

    from modelmonitor.auth.cli import add_auth_commands

    add_auth_commands(commands)
    try:
        from modelmonitor.anomaly.cli import add_anomaly_commands
    except ImportError:
        pass
    else:
        add_anomaly_commands(commands)
    from modelmonitor.quality.cli import add_drift_commands

    add_drift_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"modelmonitor: error: {line}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"modelmonitor: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
