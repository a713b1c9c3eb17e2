"""``modelmonitor anomaly score FILE.csv``: score a ``timestamp,value`` series, NAB style.

Prints ``timestamp,value,anomaly_score`` (the NAB results format). Bad input stops
with one line on stderr naming the row and the problem, and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from modelmonitor.anomaly.detector import DEFAULT_MEMBERS, AnomalyDetector

__all__ = ["InputError", "add_anomaly_commands", "add_subcommands", "parse_rows", "run_score"]


class InputError(ValueError):
    """A row that cannot be scored; the message names the line and the problem."""


def _parse_timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_rows(lines: Iterable[str]) -> list[tuple[str, str, float, float]]:
    """``(timestamp text, value text, unix seconds, value)`` per data row; header optional."""
    rows: list[tuple[str, str, float, float]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if number == 1 and fields and fields[0].lower() == "timestamp":
            continue
        if len(fields) != 2:
            raise InputError(f"line {number}: expected 2 fields 'timestamp,value', got {line!r}")
        stamp_text, value_text = fields
        try:
            stamp = _parse_timestamp(stamp_text)
        except ValueError:
            raise InputError(
                f"line {number}: timestamp {stamp_text!r} is neither ISO-8601 nor Unix seconds"
            ) from None
        try:
            value = float(value_text)
        except ValueError:
            raise InputError(f"line {number}: value {value_text!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"line {number}: value {value_text!r} is not finite")
        rows.append((stamp_text, value_text, stamp, value))
    if not rows:
        raise InputError("no data rows: expected lines of 'timestamp,value'")
    return rows


def run_score(
    source: TextIO,
    out: TextIO,
    *,
    sensitivity: float = 0.5,
    probation: int | None = None,
    refractory: int = 120,
    baseline: bool = True,
) -> None:
    """Score every row of ``source`` and write the NAB results CSV to ``out``."""
    rows = parse_rows(source)
    if probation is None:
        # Imported here: the scorer pulls in numpy, which the common path does not need.
        from modelmonitor.anomaly.nab import probation_length

        probation = probation_length(len(rows))
    detector = AnomalyDetector(
        sensitivity=sensitivity,
        learning_period=probation,
        refractory=refractory,
        # --no-baseline: value novelty alone (the baseline member is the pattern one).
        members=DEFAULT_MEMBERS if baseline else ("novelty",),
    )
    lines = ["timestamp,value,anomaly_score"]
    for stamp_text, value_text, stamp, value in rows:
        score = detector.update(stamp, value).score
        lines.append(f"{stamp_text},{value_text},{score:.6f}")
    out.write("\n".join(lines) + "\n")


def _score_command(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            run_score(
                sys.stdin,
                sys.stdout,
                sensitivity=args.sensitivity,
                probation=args.probation,
                refractory=args.refractory,
                baseline=args.baseline,
            )
        else:
            with open(args.file, encoding="utf-8") as source:
                run_score(
                    source,
                    sys.stdout,
                    sensitivity=args.sensitivity,
                    probation=args.probation,
                    refractory=args.refractory,
                    baseline=args.baseline,
                )
    except InputError as exc:
        name = "stdin" if args.file == "-" else args.file
        print(f"modelmonitor anomaly: {name}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"modelmonitor anomaly: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"modelmonitor anomaly: {exc}", file=sys.stderr)
        return 2
    return 0


def _sensitivity(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (exclusive)")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def add_anomaly_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``anomaly score`` to a CLI; each leaf sets ``handler(args) -> exit status``."""
    anomaly = subparsers.add_parser("anomaly", help="streaming anomaly detection")
    add_subcommands(anomaly.add_subparsers(dest="anomaly_command", required=True))


def add_subcommands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the leaves under ``anomaly`` (``score``) to ``commands``."""
    score = commands.add_parser(
        "score",
        help="score a timestamp,value CSV; prints timestamp,value,anomaly_score",
        description="Score a timestamp,value CSV (header optional) one row at a time and "
        "print timestamp,value,anomaly_score. Scores >= 0.5 are alarms.",
    )
    score.add_argument("file", help="CSV file, or - for standard input")
    score.add_argument(
        "--sensitivity",
        type=_sensitivity,
        default=0.5,
        help="0..1, higher flags smaller novelties (default 0.5)",
    )
    score.add_argument(
        "--probation",
        type=_non_negative,
        default=None,
        help="learning period in rows (default: NAB's min(floor(0.15 N), 750))",
    )
    score.add_argument(
        "--refractory",
        type=_non_negative,
        default=120,
        help="rows after an alarm during which only larger evidence alarms (default 120)",
    )
    score.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="value novelty only: no seasonal-profile or level member",
    )
    score.set_defaults(handler=_score_command)
