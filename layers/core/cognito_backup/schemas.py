"""The models whose JSON Schema is published in docs/schema (generated, checked in CI)."""

from __future__ import annotations

from pydantic import BaseModel

from .models import Manifest

SCHEMAS: dict[str, type[BaseModel]] = {
    "manifest": Manifest,
}
