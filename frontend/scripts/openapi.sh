#!/usr/bin/env bash
# Regenerates src/api/schema.d.ts from the OpenAPI document of the Python app.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" - "$tmp/openapi.json" <<'PY'
import json
import sys
import warnings

from socialflow.api.app import create_app
from socialflow.core.settings import Settings

warnings.simplefilter("ignore")
settings = Settings(
    environment="test",
    secret_key="openapi-generation-only-secret-key",
    database={"url": "sqlite+aiosqlite:///:memory:"},
)
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump(create_app(settings).openapi(), out, indent=1, sort_keys=True)
PY
cd "$here"
npx --no-install openapi-typescript "$tmp/openapi.json" --default-non-nullable false -o src/api/schema.d.ts
