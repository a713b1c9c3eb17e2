"""Model-aware settings: protocols, consumers and prices fail fast with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmonitor.protocols.awareness import model_awareness
from modelmonitor.protocols.config import ProtocolName
from modelmonitor.settings import ConfigError, load_settings


def test_model_settings_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        """
services:
  - name: llm
    upstream: http://127.0.0.1:8000
    protocol: triton
    model: churn
    consumers:
      headers: [X-Tenant]
      labels: {"key:0123456789ab": ops}
      trusted_proxies: [10.0.0.0/8, "::1"]
prices:
  my-llama: {input: 0.2, output: 0.4}
default_prices: false
consumer_secret: s3cret
"""
    )
    settings = load_settings(config, data_dir=tmp_path)
    (service,) = settings.services
    assert service.protocol is ProtocolName.TRITON and service.model == "churn"
    assert service.consumers.headers == ["X-Tenant"]
    aware = model_awareness(settings)
    assert aware.secret == b"s3cret"
    assert aware.prices.cost("my-llama", 1_000_000, 1_000_000) == pytest.approx(0.6)
    assert aware.prices.price("gpt-4o") is None  # the bundled table is off
    assert not (tmp_path / "consumer-secret").exists()


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("services: [{name: a, upstream: 'http://h', protocol: grpc}]", r"services\.0\.protocol"),
        (
            "services: [{name: a, upstream: 'http://h', consumers: {trusted_proxies: [nope]}}]",
            r"services\.0\.consumers\.trusted_proxies: .*'nope' is not an IP",
        ),
        (
            "services: [{name: a, upstream: 'http://h', consumers: {headers: ['X User']}}]",
            r"services\.0\.consumers\.headers: .*not a header name",
        ),
        ("prices: {m: {input: -1}}", r"prices\.m\.input"),
        ("prices: {m: {output: 1}}", r"prices\.m\.input: Field required"),
        ("llm_inspect_bytes: 10", r"llm_inspect_bytes"),
    ],
)
def test_bad_model_settings_are_named(tmp_path: Path, yaml_text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)
