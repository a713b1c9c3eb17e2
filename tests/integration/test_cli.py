"""The ``modelmonitor`` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmonitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_config_check_ok(tmp_path: Path) -> None:
    config = tmp_path / "mm.yaml"
    config.write_text(
        "services:\n"
        "  - name: iris\n    upstream: http://127.0.0.1:8080\n    path_prefix: /iris\n"
        "  - name: llm\n    upstream: http://127.0.0.1:8081\n    listen: 127.0.0.1:9091\n"
    )
    result = run("config", "check", str(config))
    assert result.returncode == 0, result.stderr
    assert "2 service(s)" in result.stdout
    assert "iris: http://0.0.0.0:9090/iris -> http://127.0.0.1:8080" in result.stdout


def test_config_check_names_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "mm.yaml"
    config.write_text("services:\n  - name: iris\n    upstream: localhost:8080\n")
    result = run("config", "check", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"modelmonitor: error: {config}: services.0.upstream: "
        "'localhost:8080' must start with http:// or https://"
    ]


def test_bad_flag_is_one_line() -> None:
    result = run("up", "--listen", "not-an-address", "--target", "http://127.0.0.1:1")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "listen" in result.stderr


def test_unknown_option_is_one_line() -> None:
    result = run("up", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "modelmonitor: error: unrecognized arguments: --no-such-flag"
    ]


def test_separate_proxy_needs_a_real_broker() -> None:
    result = run("proxy", "--target", "http://127.0.0.1:1")
    assert result.returncode == 2
    assert "memory:// broker" in result.stderr


def test_up_without_target_explains() -> None:
    result = run("up")
    assert result.returncode == 2
    assert "nothing to proxy" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("modelmonitor ")


def test_anomaly_score_through_the_main_command(tmp_path: Path) -> None:
    series = tmp_path / "series.csv"
    rows = [f"2024-01-01 {h:02d}:{m:02d}:00,{10 + (m % 3)}" for h in range(10) for m in range(60)]
    rows.append("2024-01-01 10:00:00,500")
    series.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    result = run("anomaly", "score", str(series))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score"
    assert len(lines) == len(rows) + 1
    assert float(lines[-1].split(",")[2]) >= 0.5  # the spike is an alarm

    series.write_text("timestamp,value\n2024-01-01 00:00:00,abc\n")
    bad = run("anomaly", "score", str(series))
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1
