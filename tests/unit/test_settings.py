from pathlib import Path

import pytest

from modelmonitor.settings import ConfigError, load_settings, parse_host_port
from modelmonitor.timeparse import parse_duration, parse_time


def test_defaults_follow_the_brief() -> None:
    settings = load_settings()
    assert settings.listen == "0.0.0.0:9090"
    assert settings.api == "127.0.0.1:8000"
    assert settings.broker_url == "memory://"
    assert settings.effective_database_url.startswith("sqlite:///")


def test_target_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMONITOR_TARGET", "http://127.0.0.1:8080")
    settings = load_settings()
    assert [s.upstream for s in settings.effective_services] == ["http://127.0.0.1:8080"]


def test_precedence_yaml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "mm.yaml"
    config.write_text("listen: 127.0.0.1:9001\napi: 127.0.0.1:9002\nbuffer_capacity: 500\n")
    monkeypatch.setenv("MODELMONITOR_API", "127.0.0.1:9003")
    settings = load_settings(config, listen="127.0.0.1:9004")
    assert settings.listen == "127.0.0.1:9004"  # flag beats file
    assert settings.api == "127.0.0.1:9003"  # env beats file
    assert settings.buffer_capacity == 500  # file beats default


def test_services_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "mm.yaml"
    config.write_text(
        "services:\n"
        "  - name: iris\n    upstream: http://127.0.0.1:8080\n    path_prefix: /iris/\n"
        "  - name: llm\n    upstream: https://llm.internal:8443\n    listen: 9091\n"
        "    route_patterns: ['/v1/models/{model}/generate']\n"
        "    timeout_seconds: 2m\n"
    )
    settings = load_settings(config)
    iris, llm = settings.effective_services
    assert iris.path_prefix == "/iris"
    assert llm.listen == "0.0.0.0:9091"
    assert llm.timeout_seconds == 120.0


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("services:\n  - name: a\n    upstream: ftp://x\n", "services.0.upstream"),
        ("listen: nowhere\n", "listen"),
        ("bogus: 1\n", "bogus: unknown setting"),
        (
            "services:\n  - name: a\n    upstream: http://x\n  - name: a\n    upstream: http://y\n"
            "    path_prefix: /y\n",
            "unique",
        ),
        (
            "services:\n  - name: a\n    upstream: http://x\n  - name: b\n    upstream: http://y\n",
            "only one service",
        ),
        ("flush_interval_seconds: soon\n", "flush_interval_seconds"),
        ("services: [\n", "not valid YAML"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, yaml_text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings("/nonexistent/modelmonitor.yaml")


def test_host_port_and_durations() -> None:
    assert parse_host_port(":9090") == ("0.0.0.0", 9090)
    assert parse_host_port("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError):
        parse_host_port("host:99999")
    assert parse_duration("250ms") == 0.25
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_parse_time() -> None:
    now = 1_800_000_000.0
    assert parse_time("-1h", now=now) == now - 3600
    assert parse_time("now", now=now) == now
    assert parse_time("2027-01-15T08:00:00Z", now=now) == 1_800_000_000.0
    assert parse_time("2027-01-15T08:00:00", now=now) == 1_800_000_000.0
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday", now=now)
