"""The validator Lambda, driven with events/validator.json against moto."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from conftest import BUCKET, REPO, FakeLambdaContext, load_event

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import SnapshotInvalidError, UsageError
from cognito_backup.observability import metrics
from cognito_backup.settings import get_settings
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import report_key, verdict_of

# An ignored or refused event publishes no metric; Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validator_app", REPO / "functions" / "validator" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Handler]:
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    get_settings.cache_clear()
    fn: Handler = _load_app().handler
    yield fn
    get_settings.cache_clear()
    metrics.clear_metrics()


@pytest.fixture
def snapshot(aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway) -> str:
    """A snapshot exported in this test: two users, one group, one membership."""
    idp = aws.cognito()
    pool_id = idp.create_user_pool(PoolName="handler-pool")["UserPool"]["Id"]
    idp.create_group(UserPoolId=pool_id, GroupName="admins")
    for user in ("alice", "bob"):
        idp.admin_create_user(UserPoolId=pool_id, Username=user, MessageAction="SUPPRESS")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="alice", GroupName="admins")
    key = run_export(gateway, store, pool_id).manifest_key
    assert key
    return key


def event_for(key: str) -> dict[str, Any]:
    """events/validator.json, announcing `key` instead of its sample manifest."""
    event = load_event("validator")
    event["detail"]["object"]["key"] = key
    return event


def emf_metrics(stdout: str) -> dict[str, Any]:
    """Metric name -> value from the EMF blobs Powertools printed."""
    found: dict[str, Any] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        if "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                found[metric["Name"]] = blob[metric["Name"]]
    return found


@pytest.fixture
def published(aws: AwsClients) -> Callable[[], list[dict[str, Any]]]:
    """What the validator put on the default event bus, caught by a rule into an SQS queue."""
    session = boto3.session.Session(region_name="us-east-1")
    sqs, events = session.client("sqs"), session.client("events")
    queue = sqs.create_queue(QueueName="verdicts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="verdicts", EventPattern=json.dumps({"source": ["cognito-backup"]}))
    events.put_targets(Rule="verdicts", Targets=[{"Id": "q", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return read


def test_valid_snapshot_returns_verdict_and_emits_snapshot_valid(
    handler: Handler,
    store: SnapshotStore,
    snapshot: str,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    published: Callable[[], list[dict[str, Any]]],
) -> None:
    result = handler(event_for(snapshot), lambda_context)

    (event,) = published()
    assert event["detail-type"] == "Snapshot Validated" and event["source"] == "cognito-backup"
    assert event["detail"] == {
        "bucket": BUCKET,
        "manifest_key": snapshot,
        "snapshot_id": result["snapshot_id"],
        "user_pool_id": result["user_pool_id"],
        "kind": "full",
        "verdict": "passed",
        "users": 2,
    }

    assert result["status"] == "validated"
    assert result["verdict"] == "passed"
    assert result["manifest_key"] == snapshot
    assert result["report_key"] == report_key(snapshot)
    assert result["counts"]["users"] == 2
    assert verdict_of(store, snapshot) == "passed"
    emitted = emf_metrics(capsys.readouterr().out)
    assert emitted["SnapshotValid"] == [1.0]
    assert "SnapshotInvalid" not in emitted
    assert emitted["UsersValidated"] == [2.0]
    assert emitted["SnapshotAgeSeconds"][0] >= 0


def test_invalid_snapshot_raises_after_recording_failed(
    handler: Handler,
    store: SnapshotStore,
    snapshot: str,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    published: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a snapshot whose manifest miscounts its users (as a buggy export would sign it)
    manifest = store.read_manifest(snapshot)
    manifest.counts.users = 5
    store.put_json(snapshot, store.signing.sign(manifest))

    # When the handler sees it, the invocation fails (so the Errors alarm and retries work)
    with pytest.raises(SnapshotInvalidError, match=r"is invalid: 1 problem\(s\)"):
        handler(event_for(snapshot), lambda_context)

    # And the verdict was recorded first, with the metric
    assert verdict_of(store, snapshot) == "failed"
    report = store.get_json(report_key(snapshot))
    assert report["failures"][0]["problem"] == "manifest.json: counts.users is 5, the parts hold 2"
    out = capsys.readouterr().out
    assert emf_metrics(out)["SnapshotInvalid"] == [1.0]
    assert "alice" not in out and "bob" not in out  # logs carry ids and counts, never names
    # And the failed verdict was published too (a standby listens for passed ones only)
    assert [e["detail"]["verdict"] for e in published()] == ["failed"]


def test_non_manifest_keys_are_ignored(
    handler: Handler, aws: AwsClients, lambda_context: FakeLambdaContext
) -> None:
    key = "backups/us-east-1_AbCdEf123/full/2026/11/21/20261121T230000Z/users-00004.jsonl.gz"

    assert handler(event_for(key), lambda_context) == {"status": "ignored", "key": key}
    assert (
        handler(event_for(key[: key.rindex("/")] + "/validation-report.json"), lambda_context)["status"]
        == "ignored"
    )


def test_malformed_event_names_the_bad_field(handler: Handler, lambda_context: FakeLambdaContext) -> None:
    event = load_event("validator")
    del event["detail"]["object"]["key"]

    with pytest.raises(UsageError, match=r"malformed validator event: detail\.object\.key: Field required"):
        handler(event, lambda_context)


def test_event_for_another_bucket_is_refused(handler: Handler, lambda_context: FakeLambdaContext) -> None:
    event = load_event("validator")
    event["detail"]["bucket"]["name"] = "someone-elses-bucket"

    with pytest.raises(UsageError, match="refused: the event is for bucket 'someone-elses-bucket'"):
        handler(event, lambda_context)
