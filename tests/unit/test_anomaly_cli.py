"""``python -m modelmonitor.anomaly score``: NAB results format and clear bad-input errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from modelmonitor.anomaly.cli import add_anomaly_commands


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmonitor.anomaly", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _csv(n: int = 400, spike_at: int = 300) -> str:
    t0 = datetime(2014, 4, 1)
    lines = ["timestamp,value"]
    for i in range(n):
        value = 100.0 if i == spike_at else float(i % 7)
        lines.append(f"{(t0 + timedelta(minutes=5 * i)):%Y-%m-%d %H:%M:%S},{value:g}")
    return "\n".join(lines) + "\n"


def test_scores_a_file_in_nab_results_format(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text(_csv())
    done = _cli("score", str(path), "--probation", "100")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "timestamp,value,anomaly_score"
    assert len(lines) == 401
    assert lines[1].startswith("2014-04-01 00:00:00,0,")
    scores = [float(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[300] >= 0.5
    assert max(scores[:300]) < 0.5


def test_reads_stdin_without_header_and_epoch_timestamps() -> None:
    rows = "".join(f"{1_600_000_000 + 60 * i},{i % 3}\n" for i in range(50))
    done = _cli("score", "-", "--probation", "20", "--sensitivity", "0.7", stdin=rows)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 51


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01,abc\n", "line 3: value 'abc'"),
        ("timestamp,value\n2014-04-01 00:00:00,1,2\n", "line 2: expected 2 fields"),
        ("timestamp,value\nyesterday,1\n", "line 2: timestamp 'yesterday'"),
        ("timestamp,value\n2014-04-01 00:00:00,nan\n", "line 2: value 'nan' is not finite"),
        ("timestamp,value\n", "no data rows"),
    ],
)
def test_bad_input_gives_one_clear_line_and_nonzero_exit(text: str, message: str) -> None:
    done = _cli("score", "-", stdin=text)
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr


def test_missing_file_is_reported() -> None:
    done = _cli("score", "/nonexistent/series.csv")
    assert done.returncode != 0
    assert "cannot read /nonexistent/series.csv" in done.stderr


def test_add_anomaly_commands_wires_into_a_parent_cli() -> None:
    parser = argparse.ArgumentParser(prog="modelmonitor")
    add_anomaly_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["anomaly", "score", "x.csv", "--probation", "5"])
    assert args.command == "anomaly"
    assert args.file == "x.csv"
    assert args.probation == 5
    assert callable(args.handler)


def test_no_baseline_flag_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    path.write_text(_csv())
    done = _cli("score", str(path), "--probation", "100", "--no-baseline")
    assert done.returncode == 0, done.stderr
    scores = [float(line.rsplit(",", 1)[1]) for line in done.stdout.splitlines()[1:]]
    assert scores[300] >= 0.5
