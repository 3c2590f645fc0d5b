"""DrillStateMachine of template.yaml, run by moto's ASL interpreter over the real drill handler:
it loops on the steps until the drill is done; a drill that fails, or a step that cannot finish,
leaves no scratch pool behind."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sfn import MOTO_CONFIG, REGION, LambdaBridge, StateMachines, record_retry_waits, speed_up_interpreter

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.drill import DrillRecord, drill_key
from cognito_backup.settings import get_settings
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot
from cognito_local.seed import create_pool, seed_pool

MACHINE = "DrillStateMachine"
SCHEDULED = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}}


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    from moto import mock_aws

    from cognito_local.inprocess import moto_extras

    with mock_aws(config=MOTO_CONFIG), moto_extras():
        yield AwsClients(region=REGION)


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> LambdaBridge:
    speed_up_interpreter(monkeypatch)
    b = LambdaBridge()
    b.install(monkeypatch)
    return b


@pytest.fixture
def source(aws: AwsClients, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    pool_id = create_pool(aws.cognito(), "drill-source")
    seed_pool(aws.cognito(), pool_id, users=40, groups=3)
    monkeypatch.setenv("BUCKET_NAME", bucket)
    monkeypatch.setenv("BACKUP_PREFIX", "backups")
    monkeypatch.setenv("USER_POOL_ID", pool_id)
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "0")
    monkeypatch.setattr("cognito_backup.runtime.DEFAULT_QUOTAS", {})
    get_settings.cache_clear()
    yield pool_id
    get_settings.cache_clear()


@pytest.fixture
def machines(source: str, bridge: LambdaBridge, monkeypatch: pytest.MonkeyPatch) -> StateMachines:
    record_retry_waits(monkeypatch)
    return StateMachines(bridge)


@pytest.fixture
def snapshot(source: str, store: SnapshotStore, gateway: CognitoGateway) -> str:
    key = run_export(gateway, store, source).manifest_key
    assert key and validate_snapshot(store, key).valid
    return key


def pools(aws: AwsClients) -> set[str]:
    return {p["Id"] for p in aws.cognito().list_user_pools(MaxResults=60)["UserPools"]}


def record_of(store: SnapshotStore, source: str, answer: str) -> DrillRecord:
    drill_id = json.loads(answer)["drill_id"]
    return DrillRecord.model_validate(store.get_json(drill_key("backups", source, drill_id)))


def test_the_drill_machine_loops_until_the_drill_passed(
    machines: StateMachines,
    bridge: LambdaBridge,
    aws: AwsClients,
    store: SnapshotStore,
    source: str,
    snapshot: str,
) -> None:
    bridge.remaining_ms = [900_000, 0]  # the start; then a restore step stopped at once

    run = machines.run(MACHINE, SCHEDULED)

    assert run.status == "SUCCEEDED", run.cause
    assert [json.loads(a)["status"] for a in run.answers()] == ["incomplete", "incomplete", "complete"]
    assert run.output["equal"] is True and run.output["scratch_pool_deleted"] is True
    assert pools(aws) == {source}
    record = record_of(store, source, run.answers()[-1])
    assert record.status == "passed" and record.steps == 3 and record.manifest_key == snapshot
    for data in run.answers() + run.state_data():
        assert len(data.encode()) < 8 * 1024  # small between states


def test_a_step_that_keeps_crashing_is_aborted_and_its_pool_deleted(
    machines: StateMachines,
    bridge: LambdaBridge,
    aws: AwsClients,
    store: SnapshotStore,
    source: str,
    snapshot: str,
) -> None:
    # The start runs; then the restore step crashes at every attempt (1 + 2 retries).
    bridge.faults = [None, RuntimeError("crash"), RuntimeError("crash"), RuntimeError("crash")]

    run = machines.run(MACHINE, SCHEDULED)

    assert (run.status, run.error) == ("FAILED", "DrillAborted")
    assert pools(aws) == {source}
    record = record_of(store, source, run.answers()[0])
    assert record.status == "failed" and record.error == "StepFailed" and record.scratch_pool_deleted


def test_a_drill_of_a_corrupted_snapshot_fails_the_execution_and_leaves_no_pool(
    machines: StateMachines, aws: AwsClients, store: SnapshotStore, source: str, snapshot: str
) -> None:
    manifest = json.loads(store.get_bytes(snapshot))
    part = next(p for p in manifest["parts"] if p["kind"] == "users")
    aws.s3().delete_object(Bucket=store.bucket, Key=part["key"], VersionId=part["version_id"])

    run = machines.run(MACHINE, {"manifest_key": snapshot})

    assert (run.status, run.error) == ("FAILED", "DrillFailed")
    assert run.attempts == 1  # DrillFailedError is never retried
    assert pools(aws) == {source}
