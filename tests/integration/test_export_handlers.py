"""The export Lambdas, driven by their events/*.json against moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, load_event, load_handler

from cognito_backup.errors import UsageError
from cognito_backup.settings import get_settings
from cognito_local.seed import create_pool, seed_pool


@pytest.fixture
def configured(aws, bucket, monkeypatch, signing_key) -> str:
    pool_id = create_pool(aws.cognito(), "handler-pool")
    seed_pool(aws.cognito(), pool_id, users=80, groups=3)
    monkeypatch.setenv("BUCKET_NAME", bucket)
    monkeypatch.setenv("USER_POOL_ID", pool_id)
    monkeypatch.setenv("BACKUP_PREFIX", "backups")
    get_settings.cache_clear()
    yield pool_id
    get_settings.cache_clear()


def emf_metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            doc = json.loads(line)
            for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[m["Name"]] = doc[m["Name"]]
    return found


def test_full_export_handler_writes_a_snapshot(configured, aws, lambda_context, capsys) -> None:
    app = load_handler("full_export")
    result = app.handler(load_event("full_export"), lambda_context)
    assert result["status"] == "complete" and result["kind"] == "full"
    assert aws.s3().head_object(Bucket=BUCKET, Key=result["manifest_key"])
    metrics = emf_metrics(capsys)
    assert metrics["FullExportSucceeded"] == [1.0] or metrics["FullExportSucceeded"] == 1.0
    assert "IncrementalExportSucceeded" not in metrics


def test_handler_stops_before_the_deadline_and_continues(configured, lambda_context, monkeypatch) -> None:
    app = load_handler("full_export")
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "0")
    get_settings.cache_clear()
    lambda_context.remaining_ms = 0  # no time at all: checkpoint at the first boundary
    first = app.handler(load_event("full_export"), lambda_context)
    assert first["status"] == "incomplete" and first["manifest_key"] is None
    lambda_context.remaining_ms = 900_000
    second = app.handler(load_event("full_export"), lambda_context)
    assert second["status"] == "complete" and second["snapshot_id"] == first["snapshot_id"]
    assert second["invocations"] == 2


def test_incremental_handler_without_a_base_makes_a_full_export(configured, lambda_context, capsys) -> None:
    app = load_handler("incremental_export")
    result = app.handler(load_event("incremental_export"), lambda_context)
    assert result["status"] == "complete" and result["kind"] == "full"
    metrics = emf_metrics(capsys)
    assert "IncrementalExportSucceeded" in metrics and "FullExportSucceeded" in metrics


def test_missing_configuration_is_a_clear_error(aws, bucket, lambda_context, monkeypatch) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    get_settings.cache_clear()
    app = load_handler("full_export")
    with pytest.raises(UsageError, match="BUCKET_NAME"):
        app.handler(load_event("full_export"), lambda_context)
    get_settings.cache_clear()


def test_events_parse(tmp_path: Path) -> None:
    from cognito_backup.handlers import ScheduledEvent

    for name in ("full_export", "incremental_export"):
        assert ScheduledEvent.model_validate(load_event(name)).source == "aws.scheduler"


def test_incremental_handler_with_a_base_reports_only_the_incremental(
    configured, lambda_context, capsys
) -> None:
    load_handler("full_export").handler(load_event("full_export"), lambda_context)
    capsys.readouterr()
    result = load_handler("incremental_export").handler(load_event("incremental_export"), lambda_context)
    assert result["status"] == "complete" and result["kind"] == "incremental"
    metrics = emf_metrics(capsys)
    assert "IncrementalExportSucceeded" in metrics and "FullExportSucceeded" not in metrics
