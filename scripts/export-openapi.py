"""Write the API's OpenAPI schema (``create_app``'s ``/openapi.json``) to a file.

``make types`` runs this, then openapi-typescript, to regenerate the dashboard's
``web/src/api/schema.d.ts``; a test fails when the committed file differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modelmonitor.api.app import create_app
from modelmonitor.settings import load_settings


def schema_json() -> str:
    app = create_app(load_settings(target="http://127.0.0.1:1"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(schema_json())
