"""template.yaml's roles resolve to concrete policies, as CloudFormation would make them."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_roles import Resolver, Stack, UnresolvableError, load_template

TEMPLATE = load_template()
KEY = "arn:aws:kms:us-east-1:123456789012:key/k-1"


def stack(**parameters: Any) -> Stack:
    return Stack(
        parameters={"UserPoolId": "us-east-1_Src", **parameters},
        refs={"BackupBucket": "bkt"},
        attributes={("BackupBucket", "Arn"): "arn:aws:s3:::bkt", ("BackupKey", "Arn"): KEY},
    )


def statement(resolver: Resolver, role: str, sid: str) -> dict[str, Any]:
    for p in resolver.role_policies(role):
        for s in p.statements():
            if s.get("Sid") == sid:
                return dict(s)
    raise AssertionError(f"{role} has no statement {sid}")


def test_intrinsics() -> None:
    template = {
        "Parameters": {"Ids": {"Type": "CommaDelimitedList", "Default": "a,b"}, "P": {"Type": "String"}},
        "Conditions": {
            "IsX": {"Fn::Equals": [{"Ref": "P"}, "x"]},
            "NotX": {"Fn::Not": [{"Condition": "IsX"}]},
        },
        "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}},
    }
    r = Resolver(template, Stack(parameters={"P": "x"}))
    assert r.resolve({"Fn::Join": ["-", {"Ref": "Ids"}]}) == "a-b"
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": ["_", "eu-west-1_Pool"]}]}) == "Pool"
    assert r.resolve({"Fn::If": ["IsX", "yes", {"Fn::GetAtt": ["Nope", "Arn"]}]}) == "yes"  # lazy
    assert r.resolve({"Fn::If": ["NotX", "yes", "no"]}) == "no"
    assert r.resolve({"Fn::Sub": "${AWS::Region}:${P}:${!Literal}"}) == "us-east-1:x:${Literal}"
    assert r.resolve({"Fn::Sub": ["${A}-${Q.Arn}", {"A": {"Ref": "P"}}]}) == (
        "x-arn:aws:sqs:us-east-1:123456789012:cognito-backup-Q"
    )
    assert r.resolve([1, {"Fn::If": ["IsX", {"Ref": "AWS::NoValue"}, 2]}]) == [1]
    with pytest.raises(UnresolvableError):
        r.resolve({"Fn::Base64": "x"})
    with pytest.raises(UnresolvableError):
        Resolver(template, Stack(parameters={"Nope": "x"}))


def test_export_role_resolves_to_the_pool_bucket_and_key() -> None:
    r = Resolver(TEMPLATE, stack())
    role = r.function_role("FullExportFunction")
    assert statement(r, role, "ReadSourcePool")["Resource"] == (
        "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Src"
    )
    assert statement(r, role, "WriteFullSnapshotsAndCheckpoint")["Resource"] == [
        "arn:aws:s3:::bkt/backups/us-east-1_Src/full/*",
        "arn:aws:s3:::bkt/backups/us-east-1_Src/checkpoints/export-full.json",
    ]
    assert statement(r, role, "EncryptThroughS3Only")["Resource"] == KEY
    own_key = "arn:aws:kms:eu-west-1:111122223333:key/abc"
    r = Resolver(TEMPLATE, stack(KmsKeyArn=own_key))
    assert statement(r, role, "EncryptThroughS3Only")["Resource"] == own_key
    assert r.function_environment("FullExportFunction")["KMS_KEY_ARN"] == own_key


def test_restore_targets_parameter() -> None:
    role = "RestoreFunctionRole"
    # Empty: no pool at all (both ARNs name none: a pool id always holds "_").
    nowhere = statement(Resolver(TEMPLATE, stack()), role, "WriteTargetPools")["Resource"]
    no_standby = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/no-standby"
    assert nowhere == ["arn:aws:cognito-idp:us-east-1:123456789012:userpool/no-restore-targets", no_standby]
    listed = statement(
        Resolver(TEMPLATE, stack(RestoreTargetUserPoolIds="us-east-1_A,us-east-1_B")),
        role,
        "WriteTargetPools",
    )["Resource"]
    assert listed == [
        "arn:aws:cognito-idp:*:123456789012:userpool/us-east-1_A",
        "arn:*:cognito-idp:*:*:userpool/us-east-1_B",
        no_standby,
    ]
    with_standby = statement(
        Resolver(TEMPLATE, stack(RestoreTargetUserPoolIds="us-east-1_A", StandbyUserPoolId="eu-west-1_S")),
        role,
        "WriteTargetPools",
    )["Resource"]
    assert with_standby == [
        "arn:aws:cognito-idp:*:123456789012:userpool/us-east-1_A",
        "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_S",
    ]


def test_managed_policies_of_the_template_are_included() -> None:
    names = [p.name for p in Resolver(TEMPLATE, stack()).role_policies("FullExportStateMachineRole")]
    assert "StateMachineObservabilityPolicy" in names


def test_function_environment_merges_the_globals() -> None:
    env = Resolver(TEMPLATE, stack()).function_environment("FullExportFunction")
    assert env["BUCKET_NAME"] == "bkt" and env["BACKUP_PREFIX"] == "backups"
    assert env["KMS_KEY_ARN"] == KEY and env["USER_POOL_ID"] == "us-east-1_Src"
