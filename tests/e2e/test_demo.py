"""`make demo` runs `cognito-backup demo`: the whole cycle must pass, and say so."""

from __future__ import annotations

import io

import pytest

from cognito_backup.cli import main

pytestmark = pytest.mark.e2e


def test_the_demo_runs_the_whole_cycle_and_agrees() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["demo"], out, err)
    text = out.getvalue()
    assert code == 0, text + err.getvalue()
    for step in (
        "full export",
        "validate full",
        "incremental export",
        "validate incremental",
        "restore latest",
    ):
        assert f"== {step}" in text
    assert "match the source" in text and "DEMO OK" in text
