"""`cognito-backup forget`, as a separate process, against the strict local AWS server: after it,
no object version in the bucket names the person, every snapshot still validates, a restore of
an older snapshot does not bring them back, and the ledger holds no identifier in clear."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from e2e_cli import cli

from cognito_local.seed import create_pool, seed_pool

pytestmark = pytest.mark.e2e

PERSON = "erin.forgotten"
EMAIL = "erin.forgotten@example.org"


def versions_naming(s3: Any, bucket: str, *needles: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            text = gzip.decompress(body) if v["Key"].endswith(".gz") else body
            if any(n.encode() in text.lower() for n in needles):
                found.append(v["Key"])
    return found


def ok(proc: Any) -> str:
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return str(proc.stdout)


def test_forget_erases_a_person_from_every_version_for_good(
    env: dict[str, str], clients: tuple[Any, Any]
) -> None:
    cognito, s3 = clients
    bucket = "e2e-forget"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    pool_id = create_pool(cognito, "forget-source")
    seed_pool(cognito, pool_id, users=40, groups=2)
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=PERSON,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": EMAIL}, {"Name": "given_name", "Value": "Erin"}],
    )
    group = cognito.list_groups(UserPoolId=pool_id)["Groups"][0]["GroupName"]
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=PERSON, GroupName=group)
    base = ["--bucket", bucket]

    first = ok(cli(env, "export", "--user-pool-id", pool_id, *base)).strip().splitlines()[-1]
    ok(cli(env, "validate", *base, "--manifest", first))
    cognito.admin_update_user_attributes(
        UserPoolId=pool_id, Username=PERSON, UserAttributes=[{"Name": "given_name", "Value": "Erin2"}]
    )
    incremental = ok(cli(env, "export", "--user-pool-id", pool_id, *base, "--incremental")).splitlines()[-1]
    ok(cli(env, "validate", *base, "--manifest", incremental))
    # A restore before the erasure writes its report beside the snapshot.
    scratch = create_pool(cognito, "forget-scratch")
    ok(cli(env, "restore", *base, "--manifest", incremental, "--target-user-pool-id", scratch))
    assert versions_naming(s3, bucket, PERSON, EMAIL)

    answer = json.loads(
        ok(cli(env, "forget", *base, "--user-pool-id", pool_id, "--username", PERSON, "--json"))
    )

    assert answer["status"] == "complete" and answer["people_found"] == 1
    assert answer["snapshots_rewritten"] == 2 and answer["revalidated"] == {"passed": 2, "failed": 0}
    assert versions_naming(s3, bucket, PERSON, EMAIL) == []
    assert PERSON not in json.dumps(answer) and EMAIL not in json.dumps(answer)
    for key in (first, incremental):
        ok(cli(env, "validate", *base, "--manifest", key, "--no-record"))
    ledger = s3.list_objects_v2(Bucket=bucket, Prefix=f"backups/{pool_id}/erasures/")["Contents"]
    assert len(ledger) == 1
    entry = s3.get_object(Bucket=bucket, Key=ledger[0]["Key"])["Body"].read().decode()
    assert json.loads(entry)["status"] == "complete" and len(json.loads(entry)["usernames"]) == 1
    assert PERSON not in entry and EMAIL not in entry

    # An older snapshot restored: everyone but the person.
    target = create_pool(cognito, "forget-target")
    ok(cli(env, "restore", *base, "--manifest", first, "--target-user-pool-id", target))
    restored = {u["Username"] for u in cognito.list_users(UserPoolId=target)["Users"]}
    assert PERSON not in restored and len(restored) == 40

    # Still in the live pool (no --delete-from-pool): the next export leaves them out.
    later = ok(cli(env, "export", "--user-pool-id", pool_id, *base)).splitlines()[-1]
    ok(cli(env, "validate", *base, "--manifest", later))
    assert versions_naming(s3, bucket, PERSON, EMAIL) == []
