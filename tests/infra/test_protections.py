"""The ransomware and tamper protections of template.yaml and samconfig.toml (issue 13, items 3-4).

One assertion per protection, so that removing or weakening it fails a test: the bucket
policy's encryption denies, Object Lock COMPLIANCE in production, the backup key's
break-glass deny, and the tamper rules that mail the alarm topic. How they behave for a
request is evaluated in tests/deployed (test_write_scopes, test_key_policy).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import load_template

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
STACK_KEY = {"Fn::If": ["CreateBackupKey", {"Fn::GetAtt": ["BackupKey", "Arn"]}, {"Ref": "KmsKeyArn"}]}


def statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = document["Statement"]
    return {s["Sid"]: s for s in (raw if isinstance(raw, list) else [raw])}


def parameters(env: str) -> dict[str, str]:
    """An environment's parameter_overrides of samconfig.toml, as name -> value."""
    config = tomllib.loads((REPO / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
    pairs = (p.partition("=") for p in overrides.split('" '))
    return {name.strip(): value.strip().strip('"') for name, _, value in pairs}


def prod_parameters() -> dict[str, str]:
    return parameters("prod")


def dev_parameters() -> dict[str, str]:
    return parameters("default")


# ---------------------------------------------------------------- bucket policy
BUCKET_POLICY = statements(RESOURCES["BackupBucketPolicy"]["Properties"]["PolicyDocument"])
OBJECTS = {"Fn::Sub": "${BackupBucket.Arn}/*"}


def test_the_bucket_policy_denies_sse_c() -> None:
    s = BUCKET_POLICY["DenyPutWithCustomerProvidedKey"]
    assert (s["Effect"], s["Principal"], s["Action"], s["Resource"]) == ("Deny", "*", "s3:PutObject", OBJECTS)
    assert s["Condition"] == {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}


def test_the_bucket_policy_denies_any_encryption_but_sse_kms_when_one_is_asked_for() -> None:
    s = BUCKET_POLICY["DenyPutWithOtherEncryptionThanKms"]
    assert (s["Effect"], s["Principal"], s["Action"], s["Resource"]) == ("Deny", "*", "s3:PutObject", OBJECTS)
    assert s["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
        # Without the header the bucket default (the stack's key) applies: not denied.
        "Null": {"s3:x-amz-server-side-encryption": "false"},
    }


def test_the_bucket_policy_denies_any_kms_key_but_the_stacks() -> None:
    s = BUCKET_POLICY["DenyPutWithAnotherKmsKey"]
    assert (s["Effect"], s["Principal"], s["Action"], s["Resource"]) == ("Deny", "*", "s3:PutObject", OBJECTS)
    assert s["Condition"] == {
        "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": STACK_KEY},
        "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
    }
    # The functions send that very key (KMS_KEY_ARN), so their own writes pass.
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["KMS_KEY_ARN"] == STACK_KEY


# ---------------------------------------------------------------- Object Lock
def test_compliance_mode_is_available_and_used_in_production() -> None:
    mode = TEMPLATE["Parameters"]["ObjectLockMode"]
    assert set(mode["AllowedValues"]) == {"GOVERNANCE", "COMPLIANCE"}
    prod = prod_parameters()
    assert prod["ObjectLockMode"] == "COMPLIANCE"
    retention = int(prod["ObjectLockRetentionDays"])
    # Long enough to notice an attack (above a month of daily fulls), and never beyond the life
    # of a current version, so the lifecycle, not the lock, decides when a snapshot goes.
    assert 30 <= retention <= int(prod["ExpirationDays"])
    assert int(prod["NoncurrentVersionExpirationDays"]) >= 1
    lock = RESOURCES["BackupBucket"]["Properties"]["ObjectLockConfiguration"]["Fn::If"][1]
    assert lock["Rule"]["DefaultRetention"] == {
        "Mode": {"Ref": "ObjectLockMode"},
        "Days": {"Ref": "ObjectLockRetentionDays"},
    }


# ---------------------------------------------------------------- restore targets
def test_an_empty_restore_target_list_grants_no_pool() -> None:
    assert TEMPLATE["Parameters"]["RestoreTargetUserPoolIds"]["Default"] == ""
    role = RESOURCES["RestoreFunctionRole"]["Properties"]["Policies"]
    (pools,) = [
        s for p in role for s in p["PolicyDocument"]["Statement"] if s.get("Sid") == "WriteTargetPools"
    ]
    text = str(pools["Resource"])
    assert "userpool/*" not in text and "userpool/no-restore-targets" in text
    # Production and development name their pools (dev: the dev pool, for in-place restores).
    assert prod_parameters()["RestoreTargetUserPoolIds"]
    assert dev_parameters()["RestoreTargetUserPoolIds"] == dev_parameters()["UserPoolId"]


# ---------------------------------------------------------------- backup key
def test_the_backup_key_reserves_destruction_and_policy_changes_to_the_break_glass_role() -> None:
    key = RESOURCES["BackupKey"]
    assert key["DeletionPolicy"] == "Retain" and key["UpdateReplacePolicy"] == "Retain"
    props = key["Properties"]
    # The deny fails KMS's lockout safety check unless the deployer is the break-glass role.
    assert props["BypassPolicyLockoutSafetyCheck"] is True
    assert props["EnableKeyRotation"] is True
    policy = statements({"Statement": [s for s in props["KeyPolicy"]["Statement"] if "Sid" in s]})
    root = policy["AccountAdministersTheKeyAndDelegatesUseToIamPolicies"]
    assert root["Effect"] == "Allow" and root["Action"] == "kms:*"  # never unmanageable
    deny = policy["OnlyBreakGlassMayDestroyTheKeyOrChangeThisPolicy"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Resource"] == "*"
    assert set(deny["Action"]) == {
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "kms:DisableKeyRotation",
        "kms:PutKeyPolicy",
    }
    assert deny["Condition"] == {
        "StringNotEquals": {
            "aws:PrincipalArn": {
                "Fn::If": [
                    "HasBreakGlassRole",
                    {"Ref": "BreakGlassRoleArn"},
                    {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
                ]
            }
        }
    }
    # Named as a principal too (only when given), so that it may be a role of another account.
    (allow,) = [s for s in props["KeyPolicy"]["Statement"] if "Fn::If" in s]
    condition, statement, otherwise = allow["Fn::If"]
    assert condition == "HasBreakGlassRole" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": {"Ref": "BreakGlassRoleArn"}}
    assert set(deny["Action"]) <= set(statement["Action"])
    assert TEMPLATE["Parameters"]["BreakGlassRoleArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasBreakGlassRole"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "BreakGlassRoleArn"}, ""]}]
    }


# ---------------------------------------------------------------- tamper alarms
TOPIC = {"Ref": "AlarmTopic"}


def rule(name: str) -> dict[str, Any]:
    resource = RESOURCES[name]
    assert resource["Type"] == "AWS::Events::Rule"
    assert "Condition" not in resource, f"{name} must exist in every deployment"
    props: dict[str, Any] = resource["Properties"]
    assert [t["Arn"] for t in props["Targets"]] == [TOPIC], name
    assert props.get("State", "ENABLED") == "ENABLED"
    return props["EventPattern"]


def test_the_alarm_topic_accepts_eventbridge_and_cloudwatch_only_for_this_account() -> None:
    (policy,) = [r for r in RESOURCES.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    assert policy["Properties"]["Topics"] == [TOPIC]
    found = statements(policy["Properties"]["PolicyDocument"])
    for sid, service in (("TamperRulesPublish", "events"), ("CloudWatchAlarmsPublish", "cloudwatch")):
        s = found[sid]
        assert s["Principal"] == {"Service": f"{service}.amazonaws.com"} and s["Action"] == "sns:Publish"
        assert s["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # The topic is encrypted with OpsKey: EventBridge must be able to use it.
    assert RESOURCES["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["OpsKey", "Arn"]}
    ops = statements(RESOURCES["OpsKey"]["Properties"]["KeyPolicy"])[
        "EventBridgePublishesToTheEncryptedTopic"
    ]
    assert ops["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(ops["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_bucket_policy_lifecycle_lock_and_replication_changes_alarm() -> None:
    pattern = rule("BucketConfigurationChangedRule")
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    detail = pattern["detail"]
    assert detail["requestParameters"] == {"bucketName": [{"Ref": "BackupBucket"}]}
    assert {
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "PutBucketLifecycle",  # CloudTrail's name of PutBucketLifecycleConfiguration
        "DeleteBucketLifecycle",
        "PutObjectLockConfiguration",
        "PutBucketReplication",
        "DeleteBucketReplication",
        "PutBucketVersioning",
        "PutBucketEncryption",
        "PutBucketNotification",
    } <= set(detail["eventName"])


def test_key_deletion_disabling_and_policy_changes_alarm() -> None:
    pattern = rule("KeysTamperedRule")
    assert pattern["source"] == ["aws.kms"] and pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    detail = pattern["detail"]
    assert {"ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy"} <= set(detail["eventName"])
    assert STACK_KEY in detail["resources"]["ARN"]
    assert {"Fn::GetAtt": ["OpsKey", "Arn"]} in detail["resources"]["ARN"]
    assert {"Fn::GetAtt": ["SigningKey", "Arn"]} in detail["resources"]["ARN"]  # no verify, no restore


def test_disabled_or_changed_export_schedules_alarm() -> None:
    pattern = rule("ExportSchedulesChangedRule")
    assert pattern["source"] == ["aws.events"]
    detail = pattern["detail"]
    assert {"DisableRule", "DeleteRule", "PutRule", "RemoveTargets"} <= set(detail["eventName"])
    # The rules SAM makes from the state machines' Schedule events, whichever field names them.
    rules = [{"Ref": "FullExportStateMachineSchedule"}, {"Ref": "IncrementalExportStateMachineSchedule"}]
    assert detail["$or"] == [{"requestParameters": {"name": rules}}, {"requestParameters": {"rule": rules}}]
    for sm in ("FullExportStateMachine", "IncrementalExportStateMachine"):
        assert RESOURCES[sm]["Properties"]["Events"]["Schedule"]["Type"] == "Schedule"


def test_snapshot_deletions_outside_the_lifecycle_alarm() -> None:
    pattern = rule("SnapshotObjectDeletedRule")
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Deleted"]
    detail = pattern["detail"]
    assert detail["bucket"] == {"name": [{"Ref": "BackupBucket"}]}
    # Requests only: the lifecycle's expirations carry reason "Lifecycle Expiration".
    assert detail["reason"] == ["DeleteObject"]
    assert detail["object"]["key"] == [
        {"wildcard": {"Fn::Sub": "${BackupPrefix}/*/full/*"}},
        {"wildcard": {"Fn::Sub": "${BackupPrefix}/*/incremental/*"}},
    ]
    bucket = RESOURCES["BackupBucket"]["Properties"]["NotificationConfiguration"]
    assert bucket == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_snapshot_writes_by_anyone_but_the_export_and_erasure_roles_alarm() -> None:
    pattern = rule("SnapshotWrittenByAnotherPrincipalRule")
    detail = pattern["detail"]
    assert {"PutObject", "CopyObject", "CompleteMultipartUpload", "DeleteObject"} <= set(detail["eventName"])
    assert detail["requestParameters"]["bucketName"] == [{"Ref": "BackupBucket"}]
    assert detail["requestParameters"]["key"] == [
        {"wildcard": {"Fn::Sub": "${BackupPrefix}/*/manifest.json"}},
        {"wildcard": {"Fn::Sub": "${BackupPrefix}/*.jsonl.gz"}},
    ]
    not_a_role, another_role = detail["$or"]
    assert not_a_role == {"userIdentity": {"type": [{"anything-but": "AssumedRole"}]}}
    issuer = another_role["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    assert issuer == [
        {
            "anything-but": [
                {"Fn::GetAtt": ["FullExportFunctionRole", "Arn"]},
                {"Fn::GetAtt": ["IncrementalExportFunctionRole", "Arn"]},
                {"Fn::GetAtt": ["ForgetFunctionRole", "Arn"]},
            ]
        }
    ]
