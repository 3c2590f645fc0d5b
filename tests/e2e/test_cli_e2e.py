"""The installed CLI, as a separate process, against a strict moto server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from e2e_cli import cli

from cognito_local.seed import create_pool, seed_pool

pytestmark = pytest.mark.e2e
BUCKET = "e2e-backups"


def test_export_then_list_through_the_cli(env, clients) -> None:
    cognito, s3 = clients
    s3.create_bucket(Bucket=BUCKET)
    pool_id = create_pool(cognito, "e2e")
    seeded = seed_pool(cognito, pool_id, users=150, groups=4, big_group_members=70)
    # When the pool is exported through the CLI
    proc = cli(env, "export", "--user-pool-id", pool_id, "--bucket", BUCKET)
    assert proc.returncode == 0, proc.stderr
    manifest_key = proc.stdout.strip().splitlines()[-1]
    assert manifest_key.startswith(f"backups/{pool_id}/full/") and manifest_key.endswith("/manifest.json")
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["counts"]["users"] == seeded.users
    assert manifest["counts"]["memberships"] == seeded.memberships
    # Then list shows it, in text and in JSON
    listed = cli(env, "list", "--bucket", BUCKET, "--user-pool-id", pool_id, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["manifest_key"] for r in rows] == [manifest_key]
    assert rows[0]["kind"] == "full" and rows[0]["counts"]["users"] == seeded.users
    text = cli(env, "list", "--bucket", BUCKET, "--user-pool-id", pool_id)
    assert manifest["snapshot_id"] in text.stdout


def test_json_output_and_endpoint_flag(env, local, clients) -> None:
    cognito, s3 = clients
    s3.create_bucket(Bucket="e2e-json")
    pool_id = create_pool(cognito, "e2e-json")
    seed_pool(cognito, pool_id, users=10, groups=1)
    flag_env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
    proc = cli(
        flag_env,
        "export",
        "--user-pool-id",
        pool_id,
        "--bucket",
        "e2e-json",
        "--json",
        "--endpoint-url",
        local.endpoint_url,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "complete" and result["counts"]["users"] == 10


@pytest.mark.parametrize(
    ("pool", "bucket", "message"),
    [
        ("us-east-1_nosuchpool", BUCKET, "no such user pool"),
        (None, "no-such-bucket-e2e", "no such bucket"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(env, clients, pool, bucket, message) -> None:
    cognito, s3 = clients
    if bucket == BUCKET:
        s3.create_bucket(Bucket=BUCKET)
    pool_id = pool or create_pool(cognito, "e2e-bad")
    before = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
    proc = cli(env, "export", "--user-pool-id", pool_id, "--bucket", bucket)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == before


def test_incremental_list_and_diff_through_the_cli(env, clients) -> None:
    cognito, s3 = clients
    s3.create_bucket(Bucket="e2e-chain")
    pool_id = create_pool(cognito, "e2e-chain")
    seed_pool(cognito, pool_id, users=40, groups=2)
    common = ("--user-pool-id", pool_id, "--bucket", "e2e-chain")
    full = cli(env, "export", *common)
    assert full.returncode == 0, full.stderr
    cognito.admin_create_user(UserPoolId=pool_id, Username="late.arrival", MessageAction="SUPPRESS")
    victim = cognito.list_users(UserPoolId=pool_id, Limit=1)["Users"][0]["Username"]
    cognito.admin_delete_user(UserPoolId=pool_id, Username=victim)
    inc = cli(env, "export", *common, "--incremental")
    assert inc.returncode == 0, inc.stderr
    full_key, inc_key = full.stdout.strip().splitlines()[-1], inc.stdout.strip().splitlines()[-1]
    assert "/incremental/" in inc_key
    # list shows the chain, newest first, with the base of the incremental
    rows = json.loads(cli(env, "list", "--bucket", "e2e-chain", "--user-pool-id", pool_id, "--json").stdout)
    assert [r["manifest_key"] for r in rows] == [inc_key, full_key]
    assert rows[0]["base_manifest_key"] == full_key and rows[0]["validation"] == "not validated"
    assert rows[1]["validation"] == "passed"  # validated when the incremental chose its base
    # diff names what changed
    diff = cli(
        env, "diff", "--bucket", "e2e-chain", "--from", full_key, "--to", inc_key, "--json", "--details"
    )
    assert diff.returncode == 0, diff.stderr
    result = json.loads(diff.stdout)
    assert result["users"]["added_names"] == ["late.arrival"] and result["users"]["removed_names"] == [victim]
    # validate through the CLI: exit 0, and 1 once a part is damaged
    ok = cli(env, "validate", "--bucket", "e2e-chain", "--manifest", inc_key)
    assert ok.returncode == 0 and ok.stdout.startswith("VALID")
    manifest = json.loads(s3.get_object(Bucket="e2e-chain", Key=inc_key)["Body"].read())
    s3.put_object(Bucket="e2e-chain", Key=manifest["parts"][-1]["key"], Body=b"garbage")
    bad = cli(env, "validate", "--bucket", "e2e-chain", "--manifest", inc_key)
    assert bad.returncode == 1 and bad.stdout.startswith("INVALID")
