"""The warm standby: every validated snapshot mirrored into the standby pool, in order.

Wired as template.yaml wires it: the validator publishes "Snapshot Validated"; the template's
StandbySyncRule (its pattern and input transformer, evaluated by moto's EventBridge, with an
SQS queue standing in for RestoreStateMachine, which moto's EventBridge cannot start) turns
it into the restore event; the restore handler mirrors it into the standby pool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from cfn_flip import load_yaml
from conftest import BUCKET, REPO, FakeLambdaContext, load_event

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import RestoreFailedError, SnapshotInvalidError
from cognito_backup.handlers import restore_handler, validator_handler
from cognito_backup.observability import metrics
from cognito_backup.runtime import Runtime
from cognito_backup.settings import Settings
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore, standby_key
from cognito_local.seed import create_pool, pool_state, seed_pool

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

Deliver = Callable[[str], list[dict[str, Any]]]


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """Ref and Sub of the template, with `refs` for the parameters and resources named."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return refs[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: refs[m.group(1)], value["Fn::Sub"])
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def comparable(state: Any) -> Any:
    """What a standby must equal: users (attributes, enabled), groups and memberships."""
    users = {name: (u["attributes"], u["enabled"]) for name, u in state["users"].items()}
    return users, state["groups"], state["memberships"]


@pytest.fixture
def world(aws: AwsClients, bucket: str, signing_key: str) -> dict[str, Any]:
    idp = aws.cognito()
    source = create_pool(idp, "source")
    seed_pool(idp, source, users=40, groups=3)
    standby = create_pool(idp, "standby")
    settings = Settings.model_validate(
        {
            "BUCKET_NAME": bucket,
            "USER_POOL_ID": source,
            "STANDBY_USER_POOL_ID": standby,
            "SIGNING_KEY_ARN": signing_key,
        }
    )
    return {"idp": idp, "source": source, "standby": standby, "settings": settings}


@pytest.fixture
def deliver(aws: AwsClients, world: dict[str, Any]) -> Deliver:
    """The template's StandbySyncRule on moto's default bus; returns the restore events it makes."""
    template = load_yaml((REPO / "template.yaml").read_text(encoding="utf-8"))
    rule = resolve(
        template["Resources"]["StandbySyncRule"]["Properties"],
        {
            "BackupBucket": BUCKET,
            "UserPoolId": world["source"],
            "StandbyUserPoolId": world["standby"],
            "RestoreStateMachine": "replaced-by-a-queue-below",
        },
    )
    session = boto3.session.Session(region_name="us-east-1")
    sqs, events = session.client("sqs"), session.client("events")
    queue = sqs.create_queue(QueueName="standby-sync")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="standby", EventPattern=json.dumps(rule["EventPattern"]))
    (target,) = rule["Targets"]
    events.put_targets(
        Rule="standby", Targets=[{"Id": "sync", "Arn": arn, "InputTransformer": target["InputTransformer"]}]
    )

    def validated(manifest_key: str) -> list[dict[str, Any]]:
        event = load_event("validator")
        event["detail"]["bucket"]["name"] = BUCKET
        event["detail"]["object"]["key"] = manifest_key
        validator_handler(event, world["settings"])
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for m in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]

    return validated


def sync(world: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    return restore_handler(event, FakeLambdaContext(), world["settings"])


def export(world: dict[str, Any], *, incremental: bool) -> str:
    rt = Runtime(world["settings"])
    key = run_export(rt.gateway, rt.store, world["source"], incremental=incremental).manifest_key
    assert key
    return key


def synced_metrics(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The standby metrics the restore handler emitted (EMF, flushed here)."""
    metrics.flush_metrics()
    out = capsys.readouterr().out
    return [name for name in ("StandbySyncSucceeded", "StandbySyncFailed") if f'"Name":"{name}"' in out]


def test_each_validated_snapshot_is_mirrored_into_the_standby_in_order(
    world: dict[str, Any],
    deliver: Deliver,
    store: SnapshotStore,
    gateway: CognitoGateway,
    capsys: pytest.CaptureFixture[str],
) -> None:
    idp, source, standby = world["idp"], world["source"], world["standby"]

    # Given the first full snapshot, validated: the rule asks for a mirror restore into the standby
    first = export(world, incremental=False)
    (event,) = deliver(first)
    assert event == {"manifest_key": first, "target_user_pool_id": standby, "dry_run": False, "mirror": True}
    metrics.clear_metrics()
    answer = sync(world, event)
    assert answer["status"] == "complete" and answer["superseded_by"] is None
    assert synced_metrics(capsys) == ["StandbySyncSucceeded"]  # StandbyBehindAlarm watches it
    assert comparable(pool_state(idp, standby)) == comparable(pool_state(idp, source))

    # When the pool changes (a user added, one disabled, one deleted) and the next snapshot passes
    users = sorted(u["Username"] for u in idp.list_users(UserPoolId=source)["Users"])
    idp.admin_create_user(UserPoolId=source, Username="late-joiner", MessageAction="SUPPRESS")
    idp.admin_disable_user(UserPoolId=source, Username=users[0])
    idp.admin_delete_user(UserPoolId=source, Username=users[1])
    second = export(world, incremental=True)
    (event,) = deliver(second)

    # Then the standby follows: equal to the source again, and the marker says which snapshot
    assert sync(world, event)["status"] == "complete"
    assert comparable(pool_state(idp, standby)) == comparable(pool_state(idp, source))
    marker = store.get_json(standby_key("backups", source, standby))
    assert marker["snapshot_id"] == second.split("/")[-2] and marker["manifest_key"] == second

    # And a sync of the older snapshot arriving late is superseded: the standby does not go back
    before = pool_state(idp, standby)
    late = sync(
        world, {"manifest_key": first, "target_user_pool_id": standby, "dry_run": False, "mirror": True}
    )
    assert late["status"] == "complete" and late["superseded_by"] == second.split("/")[-2]
    assert late["cognito_calls"] == 0 and pool_state(idp, standby) == before


def test_a_sync_that_fails_says_so_and_does_not_move_the_marker(
    world: dict[str, Any], store: SnapshotStore, capsys: pytest.CaptureFixture[str]
) -> None:
    key = export(world, incremental=False)
    event = {"manifest_key": key, "target_user_pool_id": world["standby"], "usernames": ["nobody"]}
    metrics.clear_metrics()

    with pytest.raises(RestoreFailedError):
        sync(world, event)

    assert synced_metrics(capsys) == ["StandbySyncFailed"]  # StandbySyncFailedAlarm watches it
    assert store.get_json(standby_key("backups", world["source"], world["standby"])) is None


def test_a_failed_snapshot_starts_no_sync(
    world: dict[str, Any], deliver: Deliver, store: SnapshotStore
) -> None:
    key = export(world, incremental=False)
    manifest = json.loads(store.get_bytes(key))
    manifest["counts"]["users"] += 1
    store.put_json(key, manifest)

    with pytest.raises(SnapshotInvalidError, match="is invalid"):
        deliver(key)
    # The failed verdict was published, and the rule let it pass by.
    sqs = boto3.session.Session(region_name="us-east-1").client("sqs")
    url = sqs.get_queue_url(QueueName="standby-sync")["QueueUrl"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_a_restore_into_another_pool_is_not_a_standby_sync(
    world: dict[str, Any], store: SnapshotStore, capsys: pytest.CaptureFixture[str]
) -> None:
    key = export(world, incremental=False)
    other = create_pool(world["idp"], "elsewhere")
    metrics.clear_metrics()  # what earlier tests left unflushed

    answer = sync(world, {"manifest_key": key, "target_user_pool_id": other, "dry_run": False})
    metrics.flush_metrics()

    assert answer["status"] == "complete"
    assert store.get_json(standby_key("backups", world["source"], other)) is None
    out = capsys.readouterr().out
    assert "UsersRestored" in out and "StandbySync" not in out
