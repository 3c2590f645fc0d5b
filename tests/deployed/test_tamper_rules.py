"""The tamper rules of template.yaml, executed: their patterns resolved as CloudFormation would,
matched by moto's EventBridge pattern engine against events of the shapes AWS documents
(S3 "Object Deleted" events, CloudTrail "AWS API Call via CloudTrail" management and data
events). What fires is what would reach the alarm topic.

KeysTamperedRule matches `detail.resources[].ARN`, an array of objects, which moto's engine
does not flatten; its pattern is asserted in tests/infra/test_protections.py instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfn_roles import Resolver, Stack, load_template
from moto.events.models import EventPattern

TEMPLATE = load_template()
ACCOUNT = "123456789012"
BUCKET = "cognito-backup-bucket"
POOL = "us-east-1_Source1"
FULL_RULE = "cognito-backup-FullExportStateMachineSchedule-ABC"
INCREMENTAL_RULE = "cognito-backup-IncrementalExportStateMachineSchedule-DEF"
SNAPSHOT = f"backups/{POOL}/full/2026/12/03/20261203T030000Z/"
RESOLVER = Resolver(
    TEMPLATE,
    Stack(
        account=ACCOUNT,
        parameters={"UserPoolId": POOL},
        refs={
            "BackupBucket": BUCKET,
            "FullExportStateMachineSchedule": FULL_RULE,
            "IncrementalExportStateMachineSchedule": INCREMENTAL_RULE,
        },
        attributes={("BackupBucket", "Arn"): f"arn:aws:s3:::{BUCKET}"},
    ),
)


def role_arn(role: str) -> str:
    return str(RESOLVER.resolve({"Fn::GetAtt": [role, "Arn"]}))


def fires(rule: str, event: dict[str, Any]) -> bool:
    pattern = RESOLVER.resolve(TEMPLATE["Resources"][rule]["Properties"]["EventPattern"])
    return bool(EventPattern(json.dumps(pattern), pattern).matches_event(event))


def object_deleted(key: str, reason: str = "DeleteObject", bucket: str = BUCKET) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Deleted",
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "203.0.113.15",
            "reason": reason,
            "deletion-type": "Delete Marker Created",
        },
    }


def cloudtrail(
    source: str, event_name: str, request: dict[str, Any], identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "source": f"aws.{source}",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": identity or assumed_role(f"arn:aws:iam::{ACCOUNT}:role/Administrator"),
            "eventSource": f"{source}.amazonaws.com",
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "requestParameters": request,
        },
    }


def assumed_role(issuer: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{issuer.rsplit('/', 1)[-1]}/session",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer, "accountId": ACCOUNT}},
    }


IAM_USER = {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory", "accountId": ACCOUNT}
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


# ---------------------------------------------------------------- deletions
@pytest.mark.parametrize("name", ["manifest.json", "users-00001.jsonl.gz", "validation-report.json"])
def test_a_snapshot_object_deleted_by_a_request_fires(name: str) -> None:
    assert fires("SnapshotObjectDeletedRule", object_deleted(SNAPSHOT + name))
    permanently = object_deleted(SNAPSHOT.replace("/full/", "/incremental/") + name)
    permanently["detail"]["deletion-type"] = "Permanently Deleted"
    assert fires("SnapshotObjectDeletedRule", permanently)


def test_lifecycle_expirations_and_working_state_do_not_fire() -> None:
    assert not fires(
        "SnapshotObjectDeletedRule", object_deleted(SNAPSHOT + "manifest.json", "Lifecycle Expiration")
    )
    assert not fires(
        "SnapshotObjectDeletedRule", object_deleted(f"backups/{POOL}/checkpoints/export-full.json")
    )
    assert not fires(
        "SnapshotObjectDeletedRule", object_deleted(SNAPSHOT + "manifest.json", bucket="another")
    )


# ---------------------------------------------------------------- bucket configuration
@pytest.mark.parametrize(
    "event_name",
    [
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutBucketLifecycle",
        "PutObjectLockConfiguration",
        "DeleteBucketReplication",
    ],
)
def test_bucket_configuration_changes_fire(event_name: str) -> None:
    assert fires("BucketConfigurationChangedRule", cloudtrail("s3", event_name, {"bucketName": BUCKET}))
    assert not fires(
        "BucketConfigurationChangedRule", cloudtrail("s3", event_name, {"bucketName": "another"})
    )


def test_reading_the_bucket_configuration_does_not_fire() -> None:
    assert not fires(
        "BucketConfigurationChangedRule", cloudtrail("s3", "GetBucketPolicy", {"bucketName": BUCKET})
    )


# ---------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    ("event_name", "field"),
    [("DisableRule", "name"), ("DeleteRule", "name"), ("PutRule", "name"), ("RemoveTargets", "rule")],
)
def test_export_schedules_disabled_or_changed_fire(event_name: str, field: str) -> None:
    for rule in (FULL_RULE, INCREMENTAL_RULE):
        assert fires("ExportSchedulesChangedRule", cloudtrail("events", event_name, {field: rule}))
    assert not fires(
        "ExportSchedulesChangedRule", cloudtrail("events", event_name, {field: "someone-elses-rule"})
    )
    assert not fires("ExportSchedulesChangedRule", cloudtrail("events", "DescribeRule", {"name": FULL_RULE}))


# ---------------------------------------------------------------- writes by other principals
@pytest.mark.parametrize("name", ["manifest.json", "users-00001.jsonl.gz"])
def test_a_manifest_or_part_written_by_anyone_but_an_export_role_fires(name: str) -> None:
    request = {"bucketName": BUCKET, "key": SNAPSHOT + name}
    for identity in (
        assumed_role(role_arn("ValidatorFunctionRole")),
        assumed_role(role_arn("RestoreFunctionRole")),
        assumed_role(f"arn:aws:iam::{ACCOUNT}:role/Administrator"),
        IAM_USER,
        ROOT,
    ):
        for event_name in ("PutObject", "CopyObject", "DeleteObject"):
            assert fires(
                "SnapshotWrittenByAnotherPrincipalRule", cloudtrail("s3", event_name, request, identity)
            )


def test_the_export_roles_own_writes_and_reports_do_not_fire() -> None:
    request = {"bucketName": BUCKET, "key": SNAPSHOT + "manifest.json"}
    for role in ("FullExportFunctionRole", "IncrementalExportFunctionRole"):
        event = cloudtrail("s3", "PutObject", request, assumed_role(role_arn(role)))
        assert not fires("SnapshotWrittenByAnotherPrincipalRule", event)
    report = {"bucketName": BUCKET, "key": SNAPSHOT + "validation-report.json"}
    event = cloudtrail("s3", "PutObject", report, assumed_role(role_arn("ValidatorFunctionRole")))
    assert not fires("SnapshotWrittenByAnotherPrincipalRule", event)
    read = cloudtrail("s3", "GetObject", request, IAM_USER)
    assert not fires("SnapshotWrittenByAnotherPrincipalRule", read)
