"""The README's configuration examples are valid configurations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelmonitor.alerts.system import validate_alerting
from modelmonitor.settings import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_yaml_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS)
def test_yaml_example_loads(block: str, tmp_path: Path) -> None:
    config = tmp_path / "example.yaml"
    config.write_text(block)
    settings = load_settings(config, target=None if "services:" in block else "http://127.0.0.1:1")
    assert settings.effective_services
    validate_alerting(settings)
