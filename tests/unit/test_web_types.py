"""The dashboard's API types are generated from the server's schema: the committed
``web/openapi.json`` and ``web/src/api/schema.d.ts`` must be what ``make types``
produces from the code as it is."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"


def _schema_json() -> str:
    spec = importlib.util.spec_from_file_location(
        "export_openapi", ROOT / "scripts/export-openapi.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = module.schema_json()
    return text


def test_committed_schema_is_the_servers(tmp_path: Path) -> None:
    current = _schema_json()
    committed = (WEB / "openapi.json").read_text()
    assert committed == current, "the API changed: run `make types` and commit the result"


def test_committed_types_are_generated_from_the_schema(tmp_path: Path) -> None:
    assert GENERATOR.exists(), "openapi-typescript is missing: run `cd web && npm ci`"
    source = tmp_path / "openapi.json"
    source.write_text(_schema_json())
    target = tmp_path / "schema.d.ts"
    subprocess.run(
        [str(GENERATOR), str(source), "-o", str(target)],
        check=True,
        capture_output=True,
        cwd=WEB,
        timeout=120,
    )
    committed = (WEB / "src" / "api" / "schema.d.ts").read_text()
    assert committed == target.read_text(), "run `make types` and commit the result"
