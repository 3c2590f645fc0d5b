"""Rebuild anywhere, as an operator runs it: the installed CLI against the local AWS server
exports a rich pool, then rebuilds it in another Region (`restore --create-target-pool`)."""

from __future__ import annotations

import boto3
import pytest
from e2e_cli import cli
from pools import TAKEOVER, looks, pool_state, rich_pool, settings

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
    assert "managed login branding: web" in dry.stdout and "log_delivery userNotification" in dry.stdout
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
    # The hosted UI's CSS, the web client's branding and the risk configuration are the source's;
    # what the other Region cannot honour is listed: the logo (never answered as bytes), log
    # delivery to this Region's group and stream, the notifications' SES identity (off there)
    expected = looks(here, source)
    risk, inherited = expected["ALL"]["risk"]
    takeover = {"Actions": {k: {**v, "Notify": False} for k, v in TAKEOVER["Actions"].items()}}
    expected["ALL"]["risk"] = expected["web"]["risk"] = (
        {**risk, "AccountTakeoverRiskConfiguration": takeover},
        inherited,
    )
    assert looks(there, new_id) == expected
    for listed in ("ui_image the pool", "log_delivery userNotification", "log_delivery userAuthEvents"):
        assert listed in rebuilt.stdout
    assert "risk_notify the pool" in rebuilt.stdout
    logs = there.get_log_delivery_configuration(UserPoolId=new_id)["LogDeliveryConfiguration"]
    assert logs["LogConfigurations"] == []
