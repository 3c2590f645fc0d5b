"""Backups outside the region (issue 12, item 4): the bucket replicates its snapshots to a
vault bucket of another region and/or account when ReplicaBucketArn is set, never deletions,
with a role that can do nothing else; docs/vault-bucket.yaml is that vault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfn_flip import load_yaml
from conftest import load_template, plain

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
VAULT: dict[str, Any] = plain(load_yaml((REPO / "docs" / "vault-bucket.yaml").read_text(encoding="utf-8")))


def by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"] if "Sid" in s}


def test_replication_is_off_unless_a_vault_and_its_key_are_given() -> None:
    assert TEMPLATE["Parameters"]["ReplicaBucketArn"]["Default"] == ""
    condition = TEMPLATE["Conditions"]["HasReplica"]["Fn::And"]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReplicaBucketArn"}, ""]}]} in condition
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReplicaKmsKeyArn"}, ""]}]} in condition
    assert TEMPLATE["Rules"]["ReplicaNeedsAKey"]["Assertions"]
    config = RESOURCES["BackupBucket"]["Properties"]["ReplicationConfiguration"]["Fn::If"]
    assert config[0] == "HasReplica" and config[2] == {"Ref": "AWS::NoValue"}
    for name in ("ReplicationRole", "ReplicationRolePolicy"):
        assert RESOURCES[name]["Condition"] == "HasReplica"


def test_every_snapshot_is_replicated_encrypted_and_no_deletion_is() -> None:
    config = RESOURCES["BackupBucket"]["Properties"]["ReplicationConfiguration"]["Fn::If"][1]
    assert config["Role"] == {"Fn::GetAtt": ["ReplicationRole", "Arn"]}
    (rule,) = config["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": {"Fn::Sub": "${BackupPrefix}/"}}
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}  # a deletion never reaches the vault
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    destination = rule["Destination"]
    assert destination["Bucket"] == {"Ref": "ReplicaBucketArn"}
    assert destination["EncryptionConfiguration"] == {"ReplicaKmsKeyID": {"Ref": "ReplicaKmsKeyArn"}}
    # In another account the replicas belong to it: an administrator here cannot delete them there.
    assert destination["AccessControlTranslation"]["Fn::If"][:2] == [
        "HasReplicaAccount",
        {"Owner": "Destination"},
    ]


def test_the_replication_role_reads_versions_and_writes_replicas_only() -> None:
    trust = RESOURCES["ReplicationRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "s3.amazonaws.com"}]
    assert "Policies" not in RESOURCES["ReplicationRole"]["Properties"]
    policy = RESOURCES["ReplicationRolePolicy"]["Properties"]
    assert policy["RoleName"] == {"Ref": "ReplicationRole"}
    actions = {
        action
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert not {a for a in actions if "Delete" in a or a.endswith("*")}
    statements = by_sid(policy["PolicyDocument"])
    assert set(statements["WriteReplicas"]["Action"]) == {
        "s3:ReplicateObject",
        "s3:ReplicateTags",
        "s3:ObjectOwnerOverrideToBucketOwner",
    }
    assert statements["WriteReplicas"]["Resource"] == {"Fn::Sub": "${ReplicaBucketArn}/${BackupPrefix}/*"}
    assert (
        "s3:GetObjectRetention" in statements["ReadVersionsToReplicate"]["Action"]
    )  # Object Lock carried over
    assert statements["EncryptReplicas"]["Resource"] == {"Ref": "ReplicaKmsKeyArn"}


def test_the_vault_is_immutable_encrypted_and_written_only_by_the_replication_role() -> None:
    resources = VAULT["Resources"]
    bucket = resources["VaultBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["ObjectLockEnabled"] is True
    assert VAULT["Parameters"]["ObjectLockMode"]["Default"] == "COMPLIANCE"
    assert bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"] == {"Ref": "ObjectLockMode"}
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["VaultKey", "Arn"]}}
    policy = by_sid(resources["VaultBucketPolicy"]["Properties"]["PolicyDocument"])
    writer = policy["SourceReplicationWritesReplicas"]
    role = "arn:${AWS::Partition}:iam::${SourceAccountId}:role/${SourceStackName}-ReplicationRole-*"
    assert writer["Condition"] == {"ArnLike": {"aws:PrincipalArn": {"Fn::Sub": role}}}
    assert not [a for s in policy.values() if s["Effect"] == "Allow" for a in s["Action"] if "Delete" in a]
    key = by_sid(resources["VaultKey"]["Properties"]["KeyPolicy"])
    assert key["SourceReplicationEncryptsReplicas"]["Condition"]["ArnLike"] == writer["Condition"]["ArnLike"]
    # Its outputs are the two parameters the backup stack takes.
    assert set(VAULT["Outputs"]) == {"VaultBucketArn", "VaultKeyArn"}
