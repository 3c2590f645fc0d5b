"""Rebuild anywhere: `restore --create-target-pool` makes the pool itself from a snapshot, in
another Region, then restores the users into it; what it cannot carry over it lists."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from pools import ACCOUNT, LOG_GROUP, TAKEOVER, looks, pool_state, rich_pool, settings

from cognito_backup import cli
from cognito_backup.cognito import CognitoGateway
from cognito_backup.models import PoolConfigRecord
from cognito_backup.pacing import Pacer
from cognito_backup.rebuild import Builder, blueprint
from cognito_backup.snapshot import run_export

OTHER_REGION = "eu-west-1"


@pytest.mark.parametrize("email_usernames", [True, False], ids=["email-usernames", "alias-attributes"])
def test_a_pool_is_rebuilt_in_another_region_with_its_settings_and_users(
    aws, store, gateway, email_usernames
) -> None:
    # Given a rich pool in us-east-1, exported
    source_idp = aws.cognito()
    source = rich_pool(source_idp, email_usernames=email_usernames)
    manifest = run_export(gateway, store, source).manifest_key
    assert manifest
    # When it is rebuilt in another Region through the CLI
    out, err = io.StringIO(), io.StringIO()
    args = [
        "restore",
        "--bucket",
        store.bucket,
        "--manifest",
        manifest,
        "--create-target-pool",
        "rebuilt",
        "--region",
        OTHER_REGION,
    ]
    code = cli.main(args, out, err)
    assert code == 0, err.getvalue() + out.getvalue()
    lines = out.getvalue().splitlines()
    new_id = next(line.split(": ", 1)[1] for line in lines if line.startswith("target_user_pool_id: "))
    assert new_id.startswith(f"{OTHER_REGION}_")
    # Then every setting, client, scope and user is there, in the other Region
    target_idp = boto3.client("cognito-idp", region_name=OTHER_REGION)
    assert settings(target_idp, new_id) == settings(source_idp, source)
    assert pool_state(target_idp, new_id) == pool_state(source_idp, source)
    domain = target_idp.describe_user_pool(UserPoolId=new_id)["UserPool"].get("Domain")
    assert domain == source_idp.describe_user_pool(UserPoolId=source)["UserPool"]["Domain"]
    # And the report maps old to new client ids and names what it did not carry over
    old_ids = {c["ClientId"] for c in source_idp.list_user_pool_clients(UserPoolId=source)["UserPoolClients"]}
    new_ids = {c["ClientId"] for c in target_idp.list_user_pool_clients(UserPoolId=new_id)["UserPoolClients"]}
    text = out.getvalue()
    for old in old_ids:
        assert f"client {old} -> " in text
    assert any(f"-> {new}" in text for new in new_ids)
    assert "lambda_trigger PreSignUp" in text
    assert "@example.com" not in err.getvalue()

    # And a second run continues into the same pool instead of making another
    again = io.StringIO()
    assert cli.main(args, again, io.StringIO()) == 0
    assert f"target_user_pool_id: {new_id}" in again.getvalue()
    assert len(target_idp.list_user_pools(MaxResults=60)["UserPools"]) == 1
    assert len(target_idp.list_user_pool_clients(UserPoolId=new_id)["UserPoolClients"]) == 2


def test_the_dry_run_shows_the_pool_it_would_create_and_creates_nothing(aws, store, gateway) -> None:
    source = rich_pool(aws.cognito(), email_usernames=True)
    manifest = run_export(gateway, store, source).manifest_key
    out = io.StringIO()
    args = [
        "restore",
        "--bucket",
        store.bucket,
        "--manifest",
        str(manifest),
        "--create-target-pool",
        "dry",
        "--region",
        OTHER_REGION,
        "--dry-run",
        "--json",
    ]
    assert cli.main(args, out, io.StringIO()) == 0
    summary = json.loads(out.getvalue())["create_target_pool"]
    assert summary["pool_name"] == "dry" and summary["region"] == OTHER_REGION
    assert sorted(summary["app_clients"]) == ["backend", "web"]
    assert summary["resource_servers"] == ["https://api.example.com"]
    assert summary["create_user_pool"]["UsernameAttributes"] == ["email"]
    assert (
        boto3.client("cognito-idp", region_name=OTHER_REGION).list_user_pools(MaxResults=60)["UserPools"]
        == []
    )


def test_a_pool_of_that_name_not_made_from_the_snapshot_is_not_touched(aws, store, gateway) -> None:
    source = rich_pool(aws.cognito(), email_usernames=True)
    manifest = run_export(gateway, store, source).manifest_key
    other = boto3.client("cognito-idp", region_name=OTHER_REGION)
    other.create_user_pool(PoolName="taken")
    err = io.StringIO()
    args = [
        "restore",
        "--bucket",
        store.bucket,
        "--manifest",
        str(manifest),
        "--create-target-pool",
        "taken",
        "--region",
        OTHER_REGION,
    ]
    assert cli.main(args, io.StringIO(), err) == 2
    assert "already exists" in err.getvalue()
    (pool,) = other.list_user_pools(MaxResults=60)["UserPools"]
    assert other.list_users(UserPoolId=pool["Id"])["Users"] == []


def test_a_provider_without_its_secret_is_listed_and_with_it_is_created(aws, store, gateway) -> None:
    cognito = aws.cognito()
    source = rich_pool(cognito, email_usernames=True)
    cognito.create_identity_provider(
        UserPoolId=source,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails={
            "client_id": "corp",
            "client_secret": "s3cr3t",
            "oidc_issuer": "https://idp.example.com",
            "authorize_scopes": "openid",
            "attributes_request_method": "GET",
        },
        AttributeMapping={"email": "email"},
    )
    snapshot = run_export(gateway, store, source)
    config = next(
        r
        for p in store.read_manifest(str(snapshot.manifest_key)).parts
        if p.kind == "config"
        for r in store.iter_records(p)
        if isinstance(r, PoolConfigRecord)
    )
    without = blueprint(config, pool_name="a", snapshot_id="s", region=OTHER_REGION, account=ACCOUNT)
    assert without.identity_providers == []
    assert [(r.kind, r.name) for r in without.references if r.kind == "identity_provider"] == [
        ("identity_provider", "Corp")
    ]
    secrets = {"Corp": {"client_secret": "supplied"}}
    plan = blueprint(
        config, pool_name="b", snapshot_id="s", region=OTHER_REGION, account=ACCOUNT, idp_secrets=secrets
    )
    target_gw = CognitoGateway(
        boto3.client("cognito-idp", region_name=OTHER_REGION), Pacer(quotas={}), base_delay=0
    )
    result = Builder(target_gw).build(plan)
    provider = target_gw.call(
        "describe_identity_provider", UserPoolId=result.user_pool_id, ProviderName="Corp"
    )
    assert provider["IdentityProvider"]["ProviderDetails"]["client_secret"] == "supplied"
    assert result.created["identity_providers"] == 1 and len(result.client_ids) == 2


def test_references_of_another_region_or_account_are_listed_not_set() -> None:
    config = PoolConfigRecord(
        user_pool={
            "Name": "p",
            "EmailConfiguration": {
                "EmailSendingAccount": "DEVELOPER",
                "SourceArn": f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com",
                "ReplyToEmailAddress": "help@example.com",
            },
            "SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::999999999999:role/sms", "ExternalId": "x"},
            "LambdaConfig": {"PostConfirmation": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"},
        },
        app_clients=[{"ClientId": "c", "ClientName": "c", "AnalyticsConfiguration": {"ApplicationId": "a"}}],
        domain={"Domain": "auth.example.com", "CustomDomainConfig": {"CertificateArn": "arn:aws:acm:..."}},
    )
    plan = blueprint(config, pool_name="n", snapshot_id="s", region=OTHER_REGION, account=ACCOUNT)
    assert plan.create_pool["EmailConfiguration"] == {
        "ReplyToEmailAddress": "help@example.com",
        "EmailSendingAccount": "COGNITO_DEFAULT",
    }
    assert "SmsConfiguration" not in plan.create_pool and "LambdaConfig" not in plan.create_pool
    assert plan.domain is None
    kinds = sorted(r.kind for r in plan.references)
    assert kinds == ["analytics", "domain", "email", "lambda_trigger", "sms"]
    # The same SES identity in its own Region and account is honoured
    here = blueprint(config, pool_name="n", snapshot_id="s", region="us-east-1", account=ACCOUNT)
    assert here.create_pool["EmailConfiguration"]["SourceArn"].endswith("identity/example.com")


def rebuild_with_the_cli(store, manifest: str, name: str, region: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["restore", "--bucket", store.bucket, "--manifest", manifest, "--create-target-pool", name]
    code = cli.main([*args, "--region", region], out, err)
    assert code == 0, err.getvalue() + out.getvalue()
    lines = out.getvalue().splitlines()
    return next(
        line.split(": ", 1)[1] for line in lines if line.startswith("target_user_pool_id: ")
    ), out.getvalue()


def test_the_looks_and_threat_protection_are_rebuilt_in_another_region_and_the_rest_listed(
    aws, store, gateway
) -> None:
    # Given a rich pool (UI customisation with a logo, a branding, log delivery to this Region,
    # threat protection notifying through this Region's SES), exported
    source_idp = aws.cognito()
    source = rich_pool(source_idp, email_usernames=True)
    manifest = str(run_export(gateway, store, source).manifest_key)
    # When it is rebuilt in another Region
    new_id, text = rebuild_with_the_cli(store, manifest, "rebuilt", OTHER_REGION)
    target_idp = boto3.client("cognito-idp", region_name=OTHER_REGION)
    # Then the CSS, the branding (assets and all) and the risk settings are the source's, but for
    # the notifications, which needed the source Region's SES identity: off, and listed
    expected = looks(source_idp, source)
    risk, inherited = expected["ALL"]["risk"]
    takeover = {k: v for k, v in TAKEOVER.items() if k != "NotifyConfiguration"}
    takeover["Actions"] = {k: {**v, "Notify": False} for k, v in TAKEOVER["Actions"].items()}
    expected["ALL"]["risk"] = ({**risk, "AccountTakeoverRiskConfiguration": takeover}, inherited)
    for name in ("web",):  # the web client inherits the pool's risk configuration
        expected[name]["risk"] = expected["ALL"]["risk"]
    assert looks(target_idp, new_id) == expected
    assert "risk_notify the pool" in text
    # The logo was not carried (Cognito never answers its bytes): listed
    assert "ImageUrl" not in target_idp.get_ui_customization(UserPoolId=new_id)["UICustomization"]
    assert "ui_image the pool" in text
    # Log delivery to the source Region's group and stream: listed, not set
    assert (
        target_idp.get_log_delivery_configuration(UserPoolId=new_id)["LogDeliveryConfiguration"][
            "LogConfigurations"
        ]
        == []
    )
    assert "log_delivery userNotification" in text and "log_delivery userAuthEvents" in text
    # The dry run had said so
    out = io.StringIO()
    args = ["restore", "--bucket", store.bucket, "--manifest", manifest, "--create-target-pool", "dry"]
    assert cli.main([*args, "--region", OTHER_REGION, "--dry-run"], out, io.StringIO()) == 0
    assert "managed login branding: web" in out.getvalue()
    assert "risk configuration: the pool, backend" in out.getvalue()
    assert "log delivery: -" in out.getvalue()


def test_in_its_own_region_log_delivery_and_notifications_are_kept(aws, store, gateway) -> None:
    # Given a rich pool exported, its source still there (the domain prefix is still its own)
    source_idp = aws.cognito()
    source = rich_pool(source_idp, email_usernames=True)
    manifest = str(run_export(gateway, store, source).manifest_key)
    # When it is rebuilt beside it, in the same Region and account
    new_id, text = rebuild_with_the_cli(store, manifest, "beside", "us-east-1")
    # Then log delivery and the notifications' SES identity are the source's
    logs = source_idp.get_log_delivery_configuration(UserPoolId=new_id)["LogDeliveryConfiguration"]
    assert logs["LogConfigurations"][0]["CloudWatchLogsConfiguration"]["LogGroupArn"] == LOG_GROUP
    assert logs == {
        **source_idp.get_log_delivery_configuration(UserPoolId=source)["LogDeliveryConfiguration"],
        "UserPoolId": new_id,
    }
    assert looks(source_idp, new_id)["ALL"]["risk"] == looks(source_idp, source)["ALL"]["risk"]
    # And the UI customisation, which needs a domain (the prefix is taken): listed, not set
    assert "domain rich-" in text and "ui_customization the pool: not set" in text
    assert looks(source_idp, new_id)["web"]["branding"] == looks(source_idp, source)["web"]["branding"]


def test_threat_protection_and_looks_of_a_client_not_recreated_are_listed() -> None:
    config = PoolConfigRecord(
        user_pool={"Name": "p", "UserPoolTier": "ESSENTIALS"},
        app_clients=[{"ClientId": "c", "ClientName": "web"}],
        ui_customizations=[{"ClientId": "ALL", "CSS": "a {}", "ImageUrl": "https://x/logo.png"}],
        managed_login_brandings={
            "c": {
                "UseCognitoProvidedValues": False,
                "Settings": {},
                "AssetsOmitted": [{"Category": "PAGE_BACKGROUND", "ColorMode": "DARK", "Extension": "PNG"}],
            }
        },
        risk_configurations=[
            {"ClientId": "ALL", "RiskExceptionConfiguration": {"BlockedIPRangeList": ["1.2.3.4/32"]}}
        ],
        log_delivery={
            "LogConfigurations": [
                {
                    "LogLevel": "ERROR",
                    "EventSource": "userNotification",
                    "S3Configuration": {"BucketArn": "arn:aws:s3:::b"},
                }
            ]
        },
    )
    plan = blueprint(config, pool_name="n", snapshot_id="s", region=OTHER_REGION, account=ACCOUNT)
    # No Plus plan in the new pool: the risk configuration is listed, not sent
    assert plan.risk_configurations == []
    # An S3 bucket's ARN names no Region or account: from elsewhere, it is listed
    assert plan.log_delivery is None
    # A branding image the snapshot could not hold is named
    kinds = sorted(r.kind for r in plan.references)
    assert kinds == ["log_delivery", "managed_login_branding", "risk_configuration", "ui_image"]
    assert "web/PAGE_BACKGROUND-DARK" in [r.name for r in plan.references]
    assert plan.ui_customizations == [("ALL", {"CSS": "a {}"})]
    assert plan.managed_login_brandings == [("c", {"UseCognitoProvidedValues": False, "Settings": {}})]


def test_the_restore_lambda_rebuilds_the_pool_and_continues_into_it(
    aws, store, gateway, signing_key, lambda_context
) -> None:
    from cognito_backup.handlers import restore_handler
    from cognito_backup.rebuild import SOURCE_TAG
    from cognito_backup.settings import Settings

    # Given a rich pool exported, and the restore Lambda's environment
    cognito = aws.cognito()
    source = rich_pool(cognito, email_usernames=False)
    key = str(run_export(gateway, store, source).manifest_key)
    env = Settings.model_validate({"BUCKET_NAME": store.bucket, "SIGNING_KEY_ARN": signing_key})
    event = {"manifest_key": key, "create_target_pool_name": "from-the-lambda"}
    # When the event asks for a dry run, then for the rebuild, then again (the state machine's
    # next step)
    shown = restore_handler({**event, "dry_run": True}, lambda_context, env)
    assert shown["dry_run"] is True and sorted(shown["create_target_pool"]["app_clients"]) == [
        "backend",
        "web",
    ]
    assert [p["Name"] for p in cognito.list_user_pools(MaxResults=60)["UserPools"]] == ["rich"]
    made = restore_handler(event, lambda_context, env)
    again = restore_handler(event, lambda_context, env)
    # Then the pool is made once, tagged with its snapshot, equal to the source, and the answer
    # maps the client ids and names what was not carried over (ids and names, no user)
    new_id = made["target_user_pool_id"]
    assert made["status"] == "complete" and made["rebuild"]["created_pool"] is True
    assert again["target_user_pool_id"] == new_id and again["rebuild"]["created_pool"] is False
    tags = cognito.describe_user_pool(UserPoolId=new_id)["UserPool"]["UserPoolTags"]
    assert tags[SOURCE_TAG] == layout_id(key)
    assert settings(cognito, new_id) == settings(cognito, source)
    assert pool_state(cognito, new_id) == pool_state(cognito, source)
    assert len(made["rebuild"]["client_ids"]) == 2
    assert {r["kind"] for r in made["rebuild"]["not_carried_over"]} >= {"lambda_trigger", "domain"}
    assert "@example.com" not in json.dumps(made)


@pytest.mark.parametrize(
    "targets",
    [{}, {"target_user_pool_id": "us-east-1_Abc", "create_target_pool_name": "both"}],
    ids=["neither", "both"],
)
def test_the_restore_event_names_exactly_one_target(targets, lambda_context, signing_key) -> None:
    from cognito_backup.errors import UsageError
    from cognito_backup.handlers import restore_handler
    from cognito_backup.settings import Settings

    env = Settings.model_validate({"BUCKET_NAME": "b-u-c", "SIGNING_KEY_ARN": signing_key})
    event = {
        "manifest_key": "backups/us-east-1_Abc/full/2026/11/21/20261121T230000Z/manifest.json",
        **targets,
    }
    with pytest.raises(UsageError, match="exactly one of target_user_pool_id and create_target_pool_name"):
        restore_handler(event, lambda_context, env)


def test_the_sample_event_parses() -> None:
    from conftest import load_event

    from cognito_backup.handlers import parse_restore_event

    request = parse_restore_event(load_event("restore_create_pool"))
    assert request.create_target_pool_name == "identity-rebuilt" and request.target_user_pool_id is None


def layout_id(key: str) -> str:
    from cognito_backup.store import layout_snapshot_id

    return layout_snapshot_id(key)


@pytest.mark.parametrize("damage", ["failed-verdict", "never-validated-and-invalid"])
def test_no_pool_is_created_from_a_snapshot_that_does_not_validate(aws, store, gateway, damage) -> None:
    source = rich_pool(aws.cognito(), email_usernames=True)
    key = str(run_export(gateway, store, source).manifest_key)
    s3 = aws.s3()
    if damage == "failed-verdict":
        s3.put_object_tagging(
            Bucket=store.bucket, Key=key, Tagging={"TagSet": [{"Key": "validation", "Value": "failed"}]}
        )
    else:
        part = next(p for p in store.read_manifest(key).parts if p.kind == "users")
        s3.delete_object(Bucket=store.bucket, Key=part.key, VersionId=part.version_id)
    err = io.StringIO()
    args = [
        "restore",
        "--bucket",
        store.bucket,
        "--manifest",
        key,
        "--create-target-pool",
        "never",
        "--region",
        OTHER_REGION,
    ]
    assert cli.main(args, io.StringIO(), err) != 0
    assert "valid" in err.getvalue()
    assert (
        boto3.client("cognito-idp", region_name=OTHER_REGION).list_user_pools(MaxResults=60)["UserPools"]
        == []
    )
