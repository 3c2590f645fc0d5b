"""Restore drills on moto: a drill restores the newest good snapshot into a scratch pool it
creates, verifies it, records the result and deletes the pool; a corrupted snapshot fails the
drill and leaves no pool; a failure half-way still deletes the pool; `--keep` keeps it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import FakeLambdaContext, load_event

from cognito_backup import cli
from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.drill import (
    DRILL_TAG,
    Drill,
    DrillRecord,
    drill_key,
    freshness,
    project_restore,
    run_drill,
)
from cognito_backup.errors import CognitoError, UsageError
from cognito_backup.handlers import drill_handler
from cognito_backup.models import utcnow
from cognito_backup.observability import metrics
from cognito_backup.pacing import CountdownDeadline, Deadline
from cognito_backup.settings import get_settings
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot
from cognito_local.seed import create_pool, seed_pool

PREFIX = "backups"


@pytest.fixture
def source(aws: AwsClients) -> str:
    idp = aws.cognito()
    pool = create_pool(idp, "drilled")
    seed_pool(idp, pool, users=30, groups=3, confirmed_share=0.5)
    idp.admin_disable_user(UserPoolId=pool, Username=idp.list_users(UserPoolId=pool)["Users"][0]["Username"])
    idp.update_user_pool(UserPoolId=pool, DeletionProtection="ACTIVE")  # the source is protected
    return pool


@pytest.fixture
def snapshot(gateway: CognitoGateway, store: SnapshotStore, source: str) -> str:
    key = run_export(gateway, store, source).manifest_key
    assert key
    assert validate_snapshot(store, key).valid  # records `passed`
    return key


def drill_of(gateway: CognitoGateway, store: SnapshotStore) -> Drill:
    return Drill(gateway, store, region="us-east-1", account="123456789012")


def pool_ids(aws: AwsClients) -> set[str]:
    return {p["Id"] for p in aws.cognito().list_user_pools(MaxResults=60)["UserPools"]}


def corrupt(aws: AwsClients, store: SnapshotStore, manifest_key: str) -> None:
    """Remove the version of the users part that the manifest pins: the snapshot is not whole."""
    manifest = json.loads(store.get_bytes(manifest_key))
    part = next(p for p in manifest["parts"] if p["kind"] == "users")
    aws.s3().delete_object(Bucket=store.bucket, Key=part["key"], VersionId=part["version_id"])


def test_a_drill_passes_records_and_leaves_no_scratch_pool(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    record = run_drill(drill_of(gateway, store), PREFIX, source)

    assert record.status == "passed", record.summary_lines()
    assert record.equal and record.verified and record.differences == 0 and record.failures == 0
    assert record.manifest_key == snapshot
    assert pool_ids(aws) == {source}, "the scratch pool is gone"
    assert record.scratch_pool_deleted and record.scratch_user_pool_id
    saved = DrillRecord.model_validate(store.get_json(drill_key(PREFIX, source, record.drill_id)))
    assert saved == record
    assert saved.counts.users == 30 and saved.counts.users_created == 30
    assert saved.counts.groups == 3 and saved.counts.memberships == saved.counts.memberships_added > 0
    disabled = [u for u in aws.cognito().list_users(UserPoolId=source)["Users"] if not u["Enabled"]]
    assert saved.counts.users_disabled == len(disabled) >= 1
    assert set(saved.phases) == {"select", "validate", "create_pool", "restore", "delete_pool"}
    assert saved.projection is not None and saved.projection.seconds > 0
    # Ids and counts only: no username of the pool is in the record.
    usernames = {u["Username"] for u in aws.cognito().list_users(UserPoolId=source)["Users"]}
    text = json.dumps(store.get_json(record.key))
    assert not [u for u in usernames if u in text]


def test_the_drill_takes_the_newest_snapshot_that_passed(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    # A newer snapshot that failed validation is passed over.
    newer = run_export(gateway, store, source).manifest_key
    assert newer and newer != snapshot
    corrupt(aws, store, newer)
    assert not validate_snapshot(store, newer).valid

    record = run_drill(drill_of(gateway, store), PREFIX, source)

    assert record.status == "passed" and record.manifest_key == snapshot


def test_a_drill_of_a_corrupted_snapshot_fails_and_leaves_no_pool(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    corrupt(aws, store, snapshot)

    record = run_drill(drill_of(gateway, store), PREFIX, source, manifest_key=snapshot)

    assert record.status == "failed" and not record.equal
    assert record.validation_failures > 0
    assert record.scratch_user_pool_id is None
    assert pool_ids(aws) == {source}
    assert DrillRecord.model_validate(store.get_json(record.key)).status == "failed"


def test_a_failure_half_way_still_deletes_the_scratch_pool(
    aws: AwsClients,
    gateway: CognitoGateway,
    store: SnapshotStore,
    source: str,
    snapshot: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drill = drill_of(gateway, store)
    record = drill.start(PREFIX, source)
    assert record.scratch_user_pool_id in pool_ids(aws)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise CognitoError("InternalErrorException", "the service broke")

    monkeypatch.setattr("cognito_backup.drill.run_restore", broken)
    with pytest.raises(CognitoError):
        drill.step(record, Deadline.never())

    assert pool_ids(aws) == {source}
    saved = DrillRecord.model_validate(store.get_json(record.key))
    assert saved.status == "failed" and saved.error == "CognitoError" and saved.scratch_pool_deleted


def test_a_drill_goes_on_across_steps(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    drill = drill_of(gateway, store)
    record = drill.start(PREFIX, source)

    record = drill.step(record, CountdownDeadline(0))  # stopped at once: the restore checkpoints
    assert record.status == "running" and record.restore_status == "incomplete"
    loaded = drill.load(PREFIX, source, record.drill_id)
    record = drill.step(loaded, Deadline.never())

    assert record.status == "passed" and record.steps == 3
    assert pool_ids(aws) == {source}


def test_keep_keeps_the_scratch_pool_tagged_and_unprotected(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    record = run_drill(drill_of(gateway, store), PREFIX, source, keep=True)

    assert record.status == "passed" and not record.scratch_pool_deleted
    scratch = aws.cognito().describe_user_pool(UserPoolId=record.scratch_user_pool_id)["UserPool"]
    assert scratch["UserPoolTags"][DRILL_TAG] == record.drill_id
    assert scratch["DeletionProtection"] == "INACTIVE"
    assert scratch["Name"].startswith(f"drill-{record.snapshot_id}-")
    assert pool_ids(aws) == {source, record.scratch_user_pool_id}


def test_the_projection_is_the_busiest_quota_category() -> None:
    # 100k users, each in one group, 1k disabled, 50k passwords, at the default quotas.
    p = project_restore(100_000, 100_000, 1_000, 50_000)

    assert p.seconds_by_category["UserCreation"] == 2000.0  # 100k / 50 per second
    assert p.seconds == max(p.seconds_by_category.values())
    assert p.bottleneck == max(p.seconds_by_category, key=lambda c: p.seconds_by_category[c])
    assert project_restore(100_000, 0, 0, 0, quota_fraction=0.5).seconds == 4000.0
    assert project_restore(0, 0, 0, 0).seconds == 0.0


# ---------------------------------------------------------------------- the CLI
def drill_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["drill", "--bucket", "cognito-backup-test", *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("restore_logger")
def test_cli_drill_exits_0_when_the_scratch_pool_equals_the_snapshot(
    aws: AwsClients, source: str, snapshot: str
) -> None:
    code, out, err = drill_cli("--user-pool-id", source, "--json")

    assert code == 0, err
    answer = json.loads(out)
    assert answer["status"] == "passed" and answer["equal"] is True
    assert pool_ids(aws) == {source}


@pytest.mark.usefixtures("restore_logger")
def test_cli_drill_exits_1_on_a_corrupted_snapshot(
    aws: AwsClients, store: SnapshotStore, source: str, snapshot: str
) -> None:
    corrupt(aws, store, snapshot)

    code, out, _ = drill_cli("--user-pool-id", source, "--manifest", snapshot)

    assert code == 1, out
    assert "FAILED" in out and "record: " in out
    assert pool_ids(aws) == {source}


@pytest.mark.usefixtures("restore_logger")
def test_cli_drill_is_a_usage_error_when_no_snapshot_passed(
    aws: AwsClients, bucket: str, source: str
) -> None:
    code, _, err = drill_cli("--user-pool-id", source)

    assert code == 2 and "nothing to drill" in err
    assert pool_ids(aws) == {source}


# ---------------------------------------------------------------------- the daily check
def test_freshness_after_a_passed_drill(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    record = run_drill(drill_of(gateway, store), PREFIX, source)

    now = freshness(store, PREFIX, source, max_drill_age_days=35)
    later = freshness(store, PREFIX, source, max_drill_age_days=35, now=utcnow() + timedelta(days=36))

    assert now.last_drill_id == record.drill_id and not now.drill_overdue
    assert now.full_age_seconds is not None and now.full_age_seconds < 60
    assert now.incremental_age_seconds is None  # none taken
    assert later.drill_overdue and later.drill_age_days is not None and later.drill_age_days > 35


def test_a_failed_drill_does_not_count_and_a_young_deployment_is_not_overdue(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore, source: str, snapshot: str
) -> None:
    corrupt(aws, store, snapshot)
    assert run_drill(drill_of(gateway, store), PREFIX, source, manifest_key=snapshot).status == "failed"

    young = freshness(store, PREFIX, source, max_drill_age_days=35)
    old = freshness(store, PREFIX, source, max_drill_age_days=35, now=utcnow() + timedelta(days=36))

    assert young.last_drill_id is None and not young.drill_overdue  # snapshots younger than 35 days
    assert old.drill_overdue  # 36 days of snapshots and no drill passed


# ---------------------------------------------------------------------- the handler
@pytest.fixture
def drill_env(monkeypatch: pytest.MonkeyPatch, bucket: str, source: str) -> Iterator[None]:
    monkeypatch.setenv("BUCKET_NAME", bucket)
    monkeypatch.setenv("BACKUP_PREFIX", PREFIX)
    monkeypatch.setenv("USER_POOL_ID", source)
    monkeypatch.setattr("cognito_backup.runtime.DEFAULT_QUOTAS", {})
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    metrics.clear_metrics()


@pytest.mark.usefixtures("drill_env")
def test_the_handler_publishes_the_drill_metrics(
    aws: AwsClients, snapshot: str, lambda_context: FakeLambdaContext
) -> None:
    started = drill_handler(load_event("drill"), lambda_context)
    assert started["status"] == "incomplete"  # the first step stops once the pool exists
    done = drill_handler(started, lambda_context)

    assert done["status"] == "complete" and done["equal"] and done["projected_restore_seconds"] > 0
    published = json.loads(json.dumps(metrics.serialize_metric_set()))["_aws"]["CloudWatchMetrics"][0]
    names = {m["Name"] for m in published["Metrics"]}
    assert {"DrillSucceeded", "DrillDurationSeconds", "DrillProjectedRestoreSeconds"} <= names
    assert started["scratch_user_pool_id"] not in pool_ids(aws)


@pytest.mark.usefixtures("drill_env")
def test_the_handler_refuses_a_manifest_outside_its_prefix(lambda_context: FakeLambdaContext) -> None:
    with pytest.raises(UsageError, match="prefix"):
        drill_handler(
            {"manifest_key": "elsewhere/p/full/2026/12/01/20261201T000000Z/manifest.json"}, lambda_context
        )


@pytest.mark.usefixtures("drill_env")
def test_an_abort_before_any_drill_has_nothing_to_clean_up(lambda_context: FakeLambdaContext) -> None:
    answer = drill_handler({"abort": True, "event": load_event("drill")}, lambda_context)

    assert answer["status"] == "failed" and answer["drill_id"] is None


@pytest.mark.usefixtures("drill_env")
def test_the_daily_check_answers_the_ages(
    aws: AwsClients, snapshot: str, lambda_context: FakeLambdaContext
) -> None:
    answer = drill_handler({"check": True}, lambda_context)

    assert answer["status"] == "complete" and answer["full_age_seconds"] is not None
    assert answer["drill_overdue"] is False and answer["last_drill_id"] is None


@pytest.mark.usefixtures("drill_env")
def test_a_step_retried_after_the_drill_finished_answers_it_and_counts_it_once(
    aws: AwsClients, snapshot: str, lambda_context: FakeLambdaContext
) -> None:
    started = drill_handler(load_event("drill"), lambda_context)
    done = drill_handler(started, lambda_context)
    metrics.clear_metrics()

    again = drill_handler(started, lambda_context)  # the same event, as a retry sends it

    assert again == done
    assert not metrics.metric_set.get("DrillSucceeded")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logger")
def test_cli_drill_shows_progress_on_a_terminal(aws: AwsClients, source: str, snapshot: str) -> None:
    out, err = io.StringIO(), Terminal()

    code = cli.main(["drill", "--bucket", "cognito-backup-test", "--user-pool-id", source], out=out, err=err)

    assert code == 0
    assert "\rdrill: " in err.getvalue() and " users, " in err.getvalue()


def test_a_drill_of_a_styled_pool_sets_none_of_its_looks_logs_or_threat_protection(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    from pools import rich_pool

    # Given a pool with UI customisation, a branding, log delivery and risk configuration
    source = rich_pool(aws.cognito(), email_usernames=True)
    key = str(run_export(gateway, store, source).manifest_key)
    assert validate_snapshot(store, key).valid
    # When it is drilled (the scratch pool kept, to look at)
    record = run_drill(drill_of(gateway, store), PREFIX, source, keep=True)
    assert record.status == "passed", record.summary_lines()
    # Then its scratch pool delivers no logs into the source's destinations, and the drill counts
    # what it leaves out on purpose as nothing "not carried over" (only the trigger, and the
    # domain it takes none of, are)
    scratch = str(record.scratch_user_pool_id)
    logs = aws.cognito().get_log_delivery_configuration(UserPoolId=scratch)["LogDeliveryConfiguration"]
    assert logs["LogConfigurations"] == []
    assert record.counts.not_carried_over == 1  # the PreSignUp trigger
