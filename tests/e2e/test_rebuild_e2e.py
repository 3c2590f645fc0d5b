"""Rebuild anywhere, as an operator runs it: the installed CLI against the local AWS server
exports a rich pool, then rebuilds it in another Region (`restore --create-target-pool`)."""

from __future__ import annotations

import boto3
import pytest
from e2e_cli import cli
from pools import pool_state, rich_pool, settings

from cognito_local.server import LocalAws

pytestmark = pytest.mark.e2e
BUCKET = "rebuild-backups"
OTHER_REGION = "eu-central-1"


def test_a_pool_exported_here_is_rebuilt_in_another_region_equal(
    local: LocalAws, env: dict[str, str]
) -> None:
    session = boto3.session.Session(aws_access_key_id="e2e", aws_secret_access_key="e2e")
    here = session.client("cognito-idp", endpoint_url=local.endpoint_url, region_name="us-east-1")
    there = session.client("cognito-idp", endpoint_url=local.endpoint_url, region_name=OTHER_REGION)
    session.client("s3", endpoint_url=local.endpoint_url, region_name="us-east-1").create_bucket(
        Bucket=BUCKET
    )
    source = rich_pool(here, email_usernames=False)

    exported = cli(env, "export", "--user-pool-id", source, "--bucket", BUCKET)
    assert exported.returncode == 0, exported.stderr
    manifest = exported.stdout.strip().splitlines()[-1]

    dry = cli(
        env,
        "restore",
        "--bucket",
        BUCKET,
        "--manifest",
        manifest,
        "--create-target-pool",
        "dr",
        "--region",
        OTHER_REGION,
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "would create pool 'dr'" in dry.stdout and "lambda_trigger PreSignUp" in dry.stdout
    assert there.list_user_pools(MaxResults=60)["UserPools"] == []

    rebuilt = cli(
        env,
        "restore",
        "--bucket",
        BUCKET,
        "--manifest",
        manifest,
        "--create-target-pool",
        "dr",
        "--region",
        OTHER_REGION,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr + rebuilt.stdout
    new_id = next(
        line.split(": ", 1)[1]
        for line in rebuilt.stdout.splitlines()
        if line.startswith("target_user_pool_id: ")
    )
    assert new_id.startswith(OTHER_REGION)
    assert settings(there, new_id) == settings(here, source)
    assert pool_state(there, new_id) == pool_state(here, source)
    assert "@example.com" not in rebuilt.stderr
