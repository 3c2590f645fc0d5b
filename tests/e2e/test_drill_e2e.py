"""`cognito-backup drill`, as a separate process, against the strict local AWS server: a drill
passes and leaves no scratch pool, a corrupted snapshot fails it and leaves none, --keep keeps
the pool."""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_cli import cli

from cognito_local.seed import create_pool, seed_pool

pytestmark = pytest.mark.e2e


def pools(cognito: Any) -> set[str]:
    return {p["Id"] for p in cognito.list_user_pools(MaxResults=60)["UserPools"]}


@pytest.fixture
def backed_up(
    env: dict[str, str], clients: tuple[Any, Any], request: pytest.FixtureRequest
) -> tuple[str, str, str]:
    """A seeded pool, exported and validated through the CLI: (bucket, pool id, manifest key)."""
    cognito, s3 = clients
    bucket = f"e2e-drill-{request.node.name.replace('_', '-')[:40]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    pool_id = create_pool(cognito, f"drilled-{request.node.name[:40]}")
    seed_pool(cognito, pool_id, users=60, groups=3)
    exported = cli(env, "export", "--user-pool-id", pool_id, "--bucket", bucket)
    assert exported.returncode == 0, exported.stderr
    key = exported.stdout.strip().splitlines()[-1]
    validated = cli(env, "validate", "--bucket", bucket, "--manifest", key)
    assert validated.returncode == 0, validated.stdout
    return bucket, pool_id, key


def test_a_drill_passes_and_leaves_no_scratch_pool(env, clients, backed_up) -> None:
    cognito, s3 = clients
    bucket, pool_id, key = backed_up
    before = pools(cognito)

    proc = cli(env, "drill", "--bucket", bucket, "--user-pool-id", pool_id, "--json")

    assert proc.returncode == 0, proc.stderr + proc.stdout
    record = json.loads(proc.stdout)
    assert record["status"] == "passed" and record["equal"] and record["manifest_key"] == key
    assert record["counts"]["users"] == record["counts"]["users_created"] == 60
    assert pools(cognito) == before  # the scratch pool is gone
    stored = json.loads(
        s3.get_object(Bucket=bucket, Key=f"backups/{pool_id}/drills/{record['drill_id']}.json")["Body"].read()
    )
    assert stored["status"] == "passed" and stored["projection"]["seconds"] > 0
    usernames = {u["Username"] for u in cognito.list_users(UserPoolId=pool_id)["Users"]}
    assert not [u for u in usernames if u in proc.stdout]


def test_a_drill_of_a_corrupted_snapshot_fails_and_leaves_no_pool(env, clients, backed_up) -> None:
    cognito, s3 = clients
    bucket, pool_id, key = backed_up
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    part = next(p for p in manifest["parts"] if p["kind"] == "users")
    s3.delete_object(Bucket=bucket, Key=part["key"], VersionId=part["version_id"])
    before = pools(cognito)

    proc = cli(env, "drill", "--bucket", bucket, "--user-pool-id", pool_id, "--manifest", key)

    assert proc.returncode == 1, proc.stdout
    assert "FAILED" in proc.stdout
    assert pools(cognito) == before


def test_keep_keeps_the_scratch_pool(env, clients, backed_up) -> None:
    cognito, _ = clients
    bucket, pool_id, _ = backed_up

    proc = cli(env, "drill", "--bucket", bucket, "--user-pool-id", pool_id, "--keep", "--json")

    assert proc.returncode == 0, proc.stderr
    scratch = json.loads(proc.stdout)["scratch_user_pool_id"]
    assert scratch in pools(cognito)
    assert len(cognito.list_users(UserPoolId=scratch)["Users"]) == 60
    cognito.delete_user_pool(UserPoolId=scratch)
