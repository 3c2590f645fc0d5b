"""Write (or --check) docs/schema/*.json, the JSON Schemas generated from the models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cognito_backup.schemas import SCHEMAS

OUT = Path(__file__).resolve().parent.parent / "docs" / "schema"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="fail if a committed schema is stale")
    args = ap.parse_args()
    stale = []
    for name, model in SCHEMAS.items():
        path = OUT / f"{name}.schema.json"
        text = json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale JSON Schema (run: .venv/bin/python scripts/gen_schema.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
