"""Each role writes only its own keys: writes outside them are denied by the evaluated policy.

test_least_privilege.py proves that every call the handlers make is allowed; this file proves
the other half for S3 writes and restore targets: a PutObject, a tag or a delete that another
role's job (or an attacker's) would need is denied to each function's role, resolved from
template.yaml and evaluated together with the bucket policy (cfn_roles, iam_calls, iam_policy,
least_privilege). Every table also holds the role's own writes, allowed, so no row can pass
because nothing at all is allowed. Keys are built with store.py's own functions, so a change of
the layout that the policies do not follow fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from call_recorder import RecordedCall
from cfn_roles import Resolver, Stack, load_template
from iam_calls import AwsFacts
from least_privilege import check_role

from cognito_backup.drill import drill_key
from cognito_backup.store import (
    MANIFEST_NAME,
    RESTORE_REPORT_PREFIX,
    VALIDATION_REPORT_NAME,
    checkpoint_key,
    join_key,
    part_key,
    report_part_key,
    snapshot_dir,
    standby_key,
)

TEMPLATE = load_template()
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "cognito-backup-test"
KEY_ID = "k-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
PREFIX = "backups"
POOL = "us-east-1_Source1"
OTHER_POOL = "us-east-1_Other1"
TARGET = "us-east-1_Target1"
STANDBY = "eu-west-1_Standby1"

FULL = snapshot_dir(PREFIX, POOL, "full", "20261203T030000Z")
INCREMENTAL = snapshot_dir(PREFIX, POOL, "incremental", "20261203T040000Z")
OTHER_FULL = snapshot_dir(PREFIX, OTHER_POOL, "full", "20261203T030000Z")
WORK = join_key(PREFIX, POOL, "checkpoints", "work-20261203T040000Z") + "/"


def manifest(directory: str) -> str:
    return directory + MANIFEST_NAME


def part(directory: str) -> str:
    return part_key(directory, "users", 1)


def validation_report(directory: str) -> str:
    return directory + VALIDATION_REPORT_NAME


def restore_report(directory: str) -> str:
    return f"{directory}{RESTORE_REPORT_PREFIX}{TARGET}-20261203T050000Z.json"


def restore_report_part(directory: str) -> str:
    return report_part_key(restore_report(directory), "sub_map", 1)


def export_checkpoint(kind: str, pool: str = POOL) -> str:
    return checkpoint_key(PREFIX, pool, f"export-{kind}")


RESTORE_CHECKPOINT = checkpoint_key(PREFIX, POOL, f"restore-{TARGET}-20261203T030000Z")
RESTORE_OUTCOMES = checkpoint_key(PREFIX, POOL, f"restore-{TARGET}-20261203T030000Z-outcomes-00001")
STANDBY_MARKER = standby_key(PREFIX, POOL, STANDBY)


def stack(**parameters: Any) -> Stack:
    return Stack(
        region=REGION,
        account=ACCOUNT,
        stack_name="cognito-backup",
        parameters={"UserPoolId": POOL, "BackupPrefix": PREFIX, **parameters},
        refs={"BackupBucket": BUCKET, "BackupKey": KEY_ID},
        attributes={("BackupBucket", "Arn"): f"arn:aws:s3:::{BUCKET}", ("BackupKey", "Arn"): KEY},
    )


def s3_call(operation: str, key: str, **params: Any) -> RecordedCall:
    base: dict[str, Any] = {"Bucket": BUCKET, "Key": key}
    if operation == "PutObject":
        # What SnapshotStore.put_bytes sends with KMS_KEY_ARN set (every deployed function).
        base |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY}
    elif operation == "PutObjectTagging":
        base["Tagging"] = {"TagSet": [{"Key": "validation", "Value": "passed"}]}
    return RecordedCall("s3", operation, {**base, **params}, REGION)


def denials(function: str, call: RecordedCall, **parameters: Any) -> list[str]:
    """The denied authorisations of one call made by `function`'s role (empty: allowed)."""
    resolver = Resolver(TEMPLATE, stack(**parameters))
    role = resolver.function_role(function)
    facts = AwsFacts(
        account=ACCOUNT,
        principal=f"arn:aws:sts::{ACCOUNT}:assumed-role/cognito-backup-{role}/cognito-backup-{function}",
        bucket_default_kms_key={BUCKET: KEY},
        kms_key_arns={KEY_ID: KEY},
    )
    report = check_role(function, "write scope", resolver, [("write scope", call)], facts, BUCKET)
    assert report.authorizations, "the call was mapped to nothing"
    return report.denied


ALLOWED, DENIED = True, False

# (operation, key, allowed, why)
Row = tuple[str, str, bool, str]

FULL_EXPORT: list[Row] = [
    ("PutObject", manifest(FULL), ALLOWED, "its own manifest"),
    ("PutObject", part(FULL), ALLOWED, "its own part"),
    ("PutObject", export_checkpoint("full"), ALLOWED, "its checkpoint"),
    ("DeleteObject", part(FULL), ALLOWED, "a stray part of a crashed run"),
    ("DeleteObject", export_checkpoint("full"), ALLOWED, "its finished checkpoint"),
    ("PutObject", manifest(INCREMENTAL), DENIED, "an incremental's manifest"),
    ("PutObject", part(INCREMENTAL), DENIED, "an incremental's part"),
    ("PutObject", export_checkpoint("incremental"), DENIED, "the incremental's checkpoint"),
    ("PutObject", manifest(OTHER_FULL), DENIED, "another pool's snapshot"),
    ("PutObject", export_checkpoint("full", OTHER_POOL), DENIED, "another pool's checkpoint"),
    ("PutObject", restore_report(FULL), DENIED, "a restore report"),
    ("PutObject", restore_report_part(FULL), DENIED, "a restore report's part"),
    ("PutObject", validation_report(FULL), DENIED, "a validation report"),
    ("PutObject", RESTORE_CHECKPOINT, DENIED, "a restore checkpoint"),
    ("PutObject", STANDBY_MARKER, DENIED, "the standby marker"),
    ("PutObject", "elsewhere/" + manifest(FULL), DENIED, "a key outside the prefix"),
    ("PutObjectTagging", manifest(FULL), DENIED, "a verdict tag"),
    ("DeleteObject", manifest(FULL), DENIED, "a manifest"),
    ("DeleteObject", part(INCREMENTAL), DENIED, "an incremental's part"),
]

INCREMENTAL_EXPORT: list[Row] = [
    ("PutObject", manifest(INCREMENTAL), ALLOWED, "its own manifest"),
    ("PutObject", part(INCREMENTAL), ALLOWED, "its own part"),
    ("PutObject", export_checkpoint("incremental"), ALLOWED, "its checkpoint"),
    ("PutObject", part_key(WORK, "state", 1), ALLOWED, "its working state index"),
    # An incremental with no valid base becomes a full export (export.run_export).
    ("PutObject", manifest(FULL), ALLOWED, "the full it makes when there is no base"),
    ("PutObject", export_checkpoint("full"), ALLOWED, "that full's checkpoint"),
    ("PutObject", validation_report(FULL), ALLOWED, "the verdict of a base it validated"),
    ("PutObjectTagging", manifest(FULL), ALLOWED, "the verdict tag of that base"),
    ("DeleteObject", part(INCREMENTAL), ALLOWED, "a stray part of a crashed run"),
    ("DeleteObject", part_key(WORK, "state", 1), ALLOWED, "its working state index"),
    ("PutObject", restore_report(INCREMENTAL), DENIED, "a restore report"),
    ("PutObject", restore_report(FULL), DENIED, "a restore report beside a full"),
    ("PutObject", restore_report_part(FULL), DENIED, "a restore report's part"),
    (
        "PutObject",
        manifest(snapshot_dir(PREFIX, OTHER_POOL, "incremental", "20261203T040000Z")),
        DENIED,
        "another pool",
    ),
    ("PutObject", RESTORE_CHECKPOINT, DENIED, "a restore checkpoint"),
    ("PutObject", STANDBY_MARKER, DENIED, "the standby marker"),
    ("PutObjectTagging", manifest(OTHER_FULL), DENIED, "another pool's verdict"),
    ("DeleteObject", manifest(INCREMENTAL), DENIED, "a manifest"),
    ("DeleteObject", RESTORE_CHECKPOINT, DENIED, "a restore checkpoint"),
]

VALIDATOR: list[Row] = [
    ("PutObject", validation_report(FULL), ALLOWED, "its report beside a full"),
    ("PutObject", validation_report(INCREMENTAL), ALLOWED, "its report beside an incremental"),
    ("PutObjectTagging", manifest(FULL), ALLOWED, "the verdict tag"),
    ("PutObjectTagging", manifest(INCREMENTAL), ALLOWED, "the verdict tag"),
    ("PutObject", manifest(FULL), DENIED, "a manifest"),
    ("PutObject", part(FULL), DENIED, "a part"),
    ("PutObject", restore_report(FULL), DENIED, "a restore report"),
    ("PutObject", restore_report_part(FULL), DENIED, "a restore report's part"),
    ("PutObject", export_checkpoint("full"), DENIED, "an export checkpoint"),
    ("PutObject", validation_report(OTHER_FULL), DENIED, "another pool's report"),
    ("PutObject", FULL + "x/" + MANIFEST_NAME, DENIED, "a manifest-like key deeper in a snapshot"),
    ("PutObjectTagging", manifest(OTHER_FULL), DENIED, "another pool's verdict"),
    ("PutObjectTagging", part(FULL), DENIED, "a part's tags"),
    ("DeleteObject", validation_report(FULL), DENIED, "any delete"),
    ("DeleteObject", manifest(FULL), DENIED, "a manifest"),
]

RESTORE: list[Row] = [
    ("PutObject", restore_report(FULL), ALLOWED, "its report beside a full"),
    ("PutObject", restore_report(INCREMENTAL), ALLOWED, "its report beside an incremental"),
    ("PutObject", restore_report_part(FULL), ALLOWED, "its report's part beside a full"),
    ("PutObject", restore_report_part(INCREMENTAL), ALLOWED, "its report's part beside an incremental"),
    ("PutObject", restore_report_part(OTHER_FULL), DENIED, "another pool's report part"),
    ("PutObject", validation_report(FULL), ALLOWED, "the verdict of a never-validated snapshot"),
    ("PutObjectTagging", manifest(INCREMENTAL), ALLOWED, "that verdict's tag"),
    ("PutObject", RESTORE_CHECKPOINT, ALLOWED, "its checkpoint"),
    ("PutObject", RESTORE_OUTCOMES, ALLOWED, "its outcomes"),
    ("DeleteObject", RESTORE_CHECKPOINT, ALLOWED, "its finished checkpoint"),
    ("DeleteObject", RESTORE_OUTCOMES, ALLOWED, "its finished outcomes"),
    ("PutObject", manifest(FULL), DENIED, "a manifest"),
    ("PutObject", part(INCREMENTAL), DENIED, "a part"),
    ("PutObject", export_checkpoint("full"), DENIED, "an export checkpoint"),
    ("PutObject", part_key(WORK, "state", 1), DENIED, "an export's working state"),
    ("PutObject", restore_report(OTHER_FULL), DENIED, "another pool's report"),
    # Matches the report pattern (IAM's * matches /), refused by the role's explicit Deny.
    (
        "PutObject",
        f"{FULL}{RESTORE_REPORT_PREFIX}x/{MANIFEST_NAME}",
        DENIED,
        "a manifest under a report name",
    ),
    ("PutObject", STANDBY_MARKER, DENIED, "a standby marker without a standby pool"),
    ("DeleteObject", part(FULL), DENIED, "a part"),
    ("DeleteObject", manifest(FULL), DENIED, "a manifest"),
    ("DeleteObject", export_checkpoint("incremental"), DENIED, "an export checkpoint"),
]

DRILL_RECORD = drill_key(PREFIX, POOL, "20261203T040000Z-abc123")

DRILL: list[Row] = [
    ("PutObject", DRILL_RECORD, ALLOWED, "its record"),
    ("PutObject", restore_report(FULL), ALLOWED, "the report of its restore"),
    ("PutObject", restore_report_part(FULL), ALLOWED, "a part of the report of its restore"),
    ("PutObject", validation_report(INCREMENTAL), ALLOWED, "the verdict of a never-validated snapshot"),
    ("PutObjectTagging", manifest(FULL), ALLOWED, "that verdict's tag"),
    ("PutObject", RESTORE_CHECKPOINT, ALLOWED, "its restore's checkpoint"),
    ("DeleteObject", RESTORE_CHECKPOINT, ALLOWED, "its restore's finished checkpoint"),
    ("PutObject", drill_key(PREFIX, OTHER_POOL, "20261203T040000Z-abc123"), DENIED, "another pool's drill"),
    ("PutObject", manifest(FULL), DENIED, "a manifest"),
    ("PutObject", part(FULL), DENIED, "a part"),
    ("PutObject", export_checkpoint("full"), DENIED, "an export checkpoint"),
    ("PutObject", STANDBY_MARKER, DENIED, "the standby marker"),
    ("PutObject", join_key(PREFIX, POOL, "drills", "x", MANIFEST_NAME), DENIED, "a manifest under drills/"),
    ("DeleteObject", DRILL_RECORD, DENIED, "its own record (records are kept)"),
    ("DeleteObject", manifest(FULL), DENIED, "a manifest"),
]

CASES = [
    pytest.param(fn, op, key, allowed, id=f"{fn}: {op} {why} {'allowed' if allowed else 'denied'}")
    for fn, rows in (
        ("FullExportFunction", FULL_EXPORT),
        ("IncrementalExportFunction", INCREMENTAL_EXPORT),
        ("ValidatorFunction", VALIDATOR),
        ("RestoreFunction", RESTORE),
        ("DrillFunction", DRILL),
    )
    for op, key, allowed, why in rows
]


@pytest.mark.parametrize(("function", "operation", "key", "allowed"), CASES)
def test_each_role_writes_only_its_own_keys(function: str, operation: str, key: str, allowed: bool) -> None:
    denied = denials(function, s3_call(operation, key), RestoreTargetUserPoolIds=TARGET)
    if allowed:
        assert denied == [], denied
    else:
        assert any(f"s3:{operation} on arn:aws:s3:::{BUCKET}/{key}" in d for d in denied), denied


def test_the_standby_marker_is_written_only_with_a_standby_pool() -> None:
    call = s3_call("PutObject", STANDBY_MARKER)
    assert denials("RestoreFunction", call, StandbyUserPoolId=STANDBY) == []
    other = s3_call("PutObject", standby_key(PREFIX, POOL, "eu-west-1_Elsewhere1"))
    assert denials("RestoreFunction", other, StandbyUserPoolId=STANDBY)


@pytest.mark.parametrize("function", ["FullExportFunction", "ValidatorFunction", "RestoreFunction"])
def test_the_bucket_policy_refuses_every_encryption_but_the_stacks_key(function: str) -> None:
    own = {
        "FullExportFunction": manifest(FULL),
        "ValidatorFunction": validation_report(FULL),
        "RestoreFunction": restore_report(FULL),
    }[function]
    sse_c = RecordedCall(
        "s3",
        "PutObject",
        {"Bucket": BUCKET, "Key": own, "SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k"},
        REGION,
    )
    assert any("explicit-deny" in d for d in denials(function, sse_c, RestoreTargetUserPoolIds=TARGET))
    other_key = s3_call("PutObject", own, SSEKMSKeyId=f"arn:aws:kms:{REGION}:999999999999:key/attacker")
    assert any("explicit-deny" in d for d in denials(function, other_key, RestoreTargetUserPoolIds=TARGET))
    s3_managed = RecordedCall(
        "s3", "PutObject", {"Bucket": BUCKET, "Key": own, "ServerSideEncryption": "AES256"}, REGION
    )
    assert any("explicit-deny" in d for d in denials(function, s3_managed, RestoreTargetUserPoolIds=TARGET))
    # No header at all: the bucket default (the stack's key) applies, as the CLI may rely on.
    default = RecordedCall("s3", "PutObject", {"Bucket": BUCKET, "Key": own}, REGION)
    assert denials(function, default, RestoreTargetUserPoolIds=TARGET) == []
    assert denials(function, s3_call("PutObject", own), RestoreTargetUserPoolIds=TARGET) == []


def create_user(pool: str) -> RecordedCall:
    return RecordedCall("cognito-idp", "AdminCreateUser", {"UserPoolId": pool, "Username": "u"}, REGION)


@pytest.mark.parametrize("pool", [POOL, TARGET, OTHER_POOL])
def test_an_empty_restore_target_list_grants_no_pool(pool: str) -> None:
    denied = denials("RestoreFunction", create_user(pool))
    assert denied and "implicit-deny" in denied[0], denied


def test_listed_restore_targets_are_exactly_the_pools_granted() -> None:
    listed = {"RestoreTargetUserPoolIds": f"{TARGET},{OTHER_POOL}"}
    assert denials("RestoreFunction", create_user(TARGET), **listed) == []
    assert denials("RestoreFunction", create_user(OTHER_POOL), **listed) == []
    # An in-place restore into the source pool needs the source listed too.
    assert denials("RestoreFunction", create_user(POOL), **listed)
    assert denials("RestoreFunction", create_user(POOL), RestoreTargetUserPoolIds=f"{TARGET},{POOL}") == []
    assert denials("RestoreFunction", create_user("us-east-1_Unlisted1"), **listed)
