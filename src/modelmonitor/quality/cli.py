"""``modelmonitor drift``: drift reports and references from the command line.

Reads the database named by the settings (``--config``, ``--database``), so it
works next to a running ModelMonitor or on a copy of its data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec

from modelmonitor.settings import ConfigError, Settings, load_settings
from modelmonitor.timeparse import parse_time

__all__ = ["add_drift_commands"]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, database_url=args.database_url, data_dir=args.data_dir)


def _range(text: str, *, field: str, now: float) -> tuple[float, float]:
    low, sep, high = text.partition("..")
    if not sep:
        raise ConfigError(f"{field}: expected START..END, e.g. -2h..now, got {text!r}")
    try:
        start, end = parse_time(low, now=now), parse_time(high or "now", now=now)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    if start >= end:
        raise ConfigError(f"{field}: the start must be before the end")
    return start, end


def _read_file(text: str | None, *, field: str) -> tuple[str, bytes] | None:
    """``(name, bytes)`` when ``text`` names an existing file."""
    if text is None or not Path(text).is_file():
        return None
    path = Path(text)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{field}: cannot read {text!r}: {exc.strerror}") from None


async def _report(
    args: argparse.Namespace, settings: Settings, file: tuple[str, bytes] | None
) -> str:
    import time

    from modelmonitor.quality.reference import ReferenceFileError, profile_rows, read_table
    from modelmonitor.quality.render import render_html, render_table
    from modelmonitor.quality.reports import ReferenceNotFound, drift_report
    from modelmonitor.quality.store import create_quality_store

    now = time.time()
    start, end = _range(args.current, field="--current", now=now)
    config = next((s.drift for s in settings.effective_services if s.name == args.service), None)
    if config is None:
        from modelmonitor.quality.config import DriftConfig

        config = DriftConfig()
    profile = None
    reference = args.reference
    if file is not None:
        try:
            profile = profile_rows(
                read_table(file[1], filename=file[0]), prediction_column=args.prediction_column
            )
        except ReferenceFileError as exc:
            raise ConfigError(f"--reference: {exc}") from None
        reference = file[0]
    elif reference is not None and ".." in reference:
        _range(reference, field="--reference", now=now)
    store = create_quality_store(settings.effective_database_url)
    await store.connect()
    try:
        result = await drift_report(
            store,
            service=args.service,
            reference=reference,
            start=start,
            end=end,
            config=config,
            now=now,
            reference_profile=profile,
        )
    except ReferenceNotFound as exc:
        raise RuntimeError(str(exc)) from None
    finally:
        await store.close()
    if args.format == "json":
        return msgspec.json.encode(result).decode() + "\n"
    if args.format == "html":
        return render_html(result)
    return render_table(result)


def _cmd_report(args: argparse.Namespace) -> int:
    file = _read_file(args.reference, field="--reference")
    sys.stdout.write(asyncio.run(_report(args, _settings(args), file)))
    return 0


async def _upload(
    args: argparse.Namespace, settings: Settings, file: tuple[str, bytes] | None
) -> str:
    from modelmonitor.quality.reference import ReferenceFileError
    from modelmonitor.quality.reports import ReferenceNotFound, pin_range, upload_reference
    from modelmonitor.quality.store import create_quality_store

    store = create_quality_store(settings.effective_database_url)
    await store.connect()
    try:
        if file is not None:
            try:
                ref = await upload_reference(
                    store,
                    service=args.service,
                    name=args.name,
                    data=file[1],
                    filename=file[0],
                    prediction_column=args.prediction_column,
                )
            except ReferenceFileError as exc:
                raise ConfigError(f"FILE: {exc}") from None
        else:
            import time

            start, end = _range(args.range, field="--range", now=time.time())
            try:
                ref = await pin_range(
                    store, service=args.service, name=args.name, start=start, end=end
                )
            except ReferenceNotFound as exc:
                raise RuntimeError(str(exc)) from None
    finally:
        await store.close()
    return f"stored reference {ref.name!r} for {ref.service!r} ({ref.source.get('kind')})\n"


def _cmd_reference(args: argparse.Namespace) -> int:
    if (args.file is None) == (args.range is None):
        raise ConfigError("give a FILE or --range START..END (one of them)")
    file = _read_file(args.file, field="FILE")
    if args.file is not None and file is None:
        raise ConfigError(f"FILE: no such file {args.file!r}")
    sys.stdout.write(asyncio.run(_upload(args, _settings(args), file)))
    return 0


def _database_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--data-dir", type=Path, help="where SQLite data lives")
    parser.add_argument(
        "--database", dest="database_url", help="sqlite:///path or postgresql://..."
    )
    parser.add_argument("--service", required=True, help="the monitored service")
    parser.add_argument(
        "--prediction-column",
        help="the file's column holding the model's output (else prediction/target/label)",
    )


def add_drift_commands(commands: argparse._SubParsersAction[Any]) -> None:
    drift = commands.add_parser("drift", help="data drift reports and references")
    sub = drift.add_subparsers(dest="drift_command", required=True, parser_class=type(drift))
    report = sub.add_parser("report", help="drift of a time range against a reference")
    _database_flags(report)
    report.add_argument(
        "--reference",
        help="a CSV/Parquet file, a range START..END, or a stored reference's name "
        "(default: the service's configured reference, else its first hours)",
    )
    report.add_argument("--current", default="-1h..now", help="range START..END (default -1h..now)")
    report.add_argument("--format", choices=["table", "json", "html"], default="table")
    report.set_defaults(handler=_cmd_report)
    ref = sub.add_parser("reference", help="store a reference from a file or a pinned range")
    _database_flags(ref)
    ref.add_argument("--name", required=True, help="the reference's name, e.g. training")
    ref.add_argument("file", nargs="?", help="CSV or Parquet training file")
    ref.add_argument("--range", help="pin START..END of the sampled traffic instead of a file")
    ref.set_defaults(handler=_cmd_reference)
