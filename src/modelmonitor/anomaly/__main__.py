"""``python -m modelmonitor.anomaly score FILE.csv``: the anomaly commands on their own."""

from __future__ import annotations

import argparse
import sys

from modelmonitor.anomaly.cli import add_subcommands

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the anomaly command."""
    parser = argparse.ArgumentParser(
        prog="python -m modelmonitor.anomaly", description="Streaming anomaly detection."
    )
    add_subcommands(parser.add_subparsers(dest="anomaly_command", required=True))
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
