"""Full export against moto: what a snapshot captures, and that resuming changes nothing."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from typing import Any

import pytest
from export_world import USERNAMES, comparable, make_pool, read_records
from pools import BRANDING_SETTINGS, FIREHOSE, LOG_GROUP, LOGO, SES_IDENTITY, rich_pool

from cognito_backup.cognito import PAGE_LIMIT, CognitoGateway
from cognito_backup.errors import BucketNotFoundError, PoolNotFoundError, RecordTooLargeError
from cognito_backup.export import ExportOptions
from cognito_backup.models import PoolConfigRecord, UserRecord
from cognito_backup.pacing import CountdownDeadline
from cognito_backup.snapshot import run_export
from cognito_backup.store import MANIFEST_NAME, SnapshotStore


class LimitCheckingClient:
    """Wraps the boto3 client to prove no call asks for a page above Cognito's 60."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.meta = client.meta
        self.limits: list[int] = []

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            for key in ("Limit", "MaxResults"):
                if key in kwargs:
                    self.limits.append(kwargs[key])
            return fn(**kwargs)

        return call


def test_full_export_captures_users_groups_memberships_and_config(aws, store, gateway) -> None:
    # Given a pool with custom attributes (one immutable), disabled and unverified users,
    # unicode names, usernames with + . @, more than 60 groups and a group of 65 members
    pool_id = make_pool(aws.cognito())
    # When it is exported
    result = run_export(gateway, store, pool_id)
    # Then the snapshot is complete and its manifest is where the layout says
    assert result.status == "complete"
    assert result.manifest_key is not None
    assert result.manifest_key.startswith(f"backups/{pool_id}/full/")
    assert result.manifest_key.endswith(f"/{result.snapshot_id}/{MANIFEST_NAME}")
    manifest = store.read_manifest(result.manifest_key)
    assert manifest.counts.users == 76 and manifest.counts.groups == 65 and manifest.counts.memberships == 66
    records = read_records(store, manifest)
    by_type = Counter(r["type"] for r in records)
    assert by_type["user"] == 76 and by_type["group"] == 65 and by_type["membership"] == 66
    users = {r["username"]: UserRecord.model_validate(r) for r in records if r["type"] == "user"}
    assert set(USERNAMES) <= set(users)
    assert users["李雷"].attributes["custom:tenant"] == "t1"
    assert users["alice"].enabled is False and users["bob+test"].enabled is True
    assert users["alice"].attributes["email_verified"] == "false"
    assert users["alice"].attributes["phone_number_verified"] == "false"
    assert users["alice"].sub  # kept for the old -> new sub map of a restore
    assert users["bob+test"].attributes["given_name"] == "José"
    groups = {r["name"]: r for r in records if r["type"] == "group"}
    assert groups["group-07"]["precedence"] == 7
    assert groups["group-07"]["role_arn"] == "arn:aws:iam::123456789012:role/group-7"
    assert groups["group-07"]["description"] == "Group 7"
    members = {(r["group"], r["username"]) for r in records if r["type"] == "membership"}
    assert len([m for m in members if m[0] == "group-00"]) == 65
    assert ("group-01", "zoë") in members
    config = next(PoolConfigRecord.model_validate(r) for r in records if r["type"] == "pool_config")
    schema = {a["Name"]: a for a in config.user_pool["SchemaAttributes"]}
    assert schema["custom:tenant"]["Mutable"] is False
    assert config.app_clients and "ClientSecret" not in json.dumps(config.model_dump())


def test_no_client_or_provider_secret_reaches_any_object_in_the_bucket(aws, store, gateway) -> None:
    # Given a pool whose app client has a secret, an Apple provider with its private key and an
    # OIDC provider with a client secret
    cognito = aws.cognito()
    pool_id = make_pool(cognito, extra_users=2, groups=2, big_group=1)
    apple_key = "-----BEGIN PRIVATE KEY-----MIGTAgEAMBMGByqGSM49-----END PRIVATE KEY-----"
    cognito.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="SignInWithApple",
        ProviderType="SignInWithApple",
        ProviderDetails={
            "client_id": "com.example.app",
            "team_id": "TEAM123456",
            "key_id": "KEY1234567",
            "private_key": apple_key,
            "authorize_scopes": "email name",
        },
    )
    oidc_secret = "oidc-client-secret-value-0123456789"
    cognito.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails={
            "client_id": "corp-client",
            "client_secret": oidc_secret,
            "oidc_issuer": "https://idp.example.com",
            "authorize_scopes": "openid",
            "attributes_request_method": "GET",
        },
    )
    client_secrets = [
        cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=c["ClientId"])["UserPoolClient"].get(
            "ClientSecret"
        )
        for c in cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    ]
    assert any(client_secrets)
    # When it is exported
    result = run_export(gateway, store, pool_id)
    assert result.status == "complete"
    # Then no object (parts, manifest, index) holds any secret, in any form
    s3 = aws.s3()
    secrets = [apple_key, "MIGTAgEAMBMGByqGSM49", oidc_secret, *filter(None, client_secrets)]
    for item in s3.list_objects_v2(Bucket=store.bucket)["Contents"]:
        body = s3.get_object(Bucket=store.bucket, Key=item["Key"])["Body"].read()
        text = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode()
        for secret in secrets:
            assert secret not in text, item["Key"]
    # and the snapshot says what a rebuild must supply
    manifest = store.read_manifest(result.manifest_key)
    config = next(
        PoolConfigRecord.model_validate(r)
        for r in read_records(store, manifest)
        if r["type"] == "pool_config"
    )
    providers = {p["ProviderName"]: p for p in config.identity_providers}
    assert providers["SignInWithApple"]["ProviderDetailsOmitted"] == ["private_key"]
    assert providers["SignInWithApple"]["ProviderDetails"]["team_id"] == "TEAM123456"
    assert providers["Corp"]["ProviderDetailsOmitted"] == ["client_secret"]
    assert [c.get("GenerateSecret") for c in config.app_clients] == [True]


def test_the_hosted_ui_branding_log_delivery_and_threat_protection_are_captured(aws, store, gateway) -> None:
    # Given a pool with UI customisation, a branding, log delivery and risk configuration
    cognito = aws.cognito()
    pool_id = rich_pool(cognito, email_usernames=True)
    ids = {
        c["ClientName"]: c["ClientId"]
        for c in cognito.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]
    }
    # When it is exported
    manifest = store.read_manifest(str(run_export(gateway, store, pool_id).manifest_key))
    config = next(
        PoolConfigRecord.model_validate(r)
        for r in read_records(store, manifest)
        if r["type"] == "pool_config"
    )
    # Then the pool-wide UI customisation (its logo as the URL Cognito serves it from) and the
    # web client's own are there; the backend client inherits, so it holds none
    ui = {u["ClientId"]: u for u in config.ui_customizations}
    assert set(ui) == {"ALL", ids["web"]}
    assert ui["ALL"]["CSS"].startswith(".banner") and ui["ALL"]["ImageUrl"].startswith("https://")
    assert "ImageUrl" not in ui[ids["web"]]
    # The web client's branding, its asset bytes as base64
    branding = config.managed_login_brandings[ids["web"]]
    assert branding["Settings"] == BRANDING_SETTINGS
    assert base64.b64decode(branding["Assets"][0]["Bytes"]) == LOGO
    assert set(config.managed_login_brandings) == {ids["web"]}
    # Log delivery, and the risk configuration pool-wide and the backend client's own
    destinations = [
        c.get("CloudWatchLogsConfiguration") or c.get("FirehoseConfiguration")
        for c in config.log_delivery["LogConfigurations"]
    ]  # type: ignore[index]
    assert destinations == [{"LogGroupArn": LOG_GROUP}, {"StreamArn": FIREHOSE}]
    risk = {r["ClientId"]: r for r in config.risk_configurations}
    assert set(risk) == {"ALL", ids["backend"]}
    assert risk["ALL"]["AccountTakeoverRiskConfiguration"]["NotifyConfiguration"]["SourceArn"] == SES_IDENTITY
    assert risk[ids["backend"]]["CompromisedCredentialsRiskConfiguration"]["Actions"] == {
        "EventAction": "BLOCK"
    }


def test_a_pool_without_threat_protection_is_not_asked_for_its_risk_configuration(
    aws, store, gateway
) -> None:
    # Given an Essentials pool (no threat protection: DescribeRiskConfiguration would be refused)
    pool_id = make_pool(aws.cognito(), extra_users=1, groups=2, big_group=1)
    # When it is exported, Then it completes, with no risk configuration and no log delivery
    manifest = store.read_manifest(str(run_export(gateway, store, pool_id).manifest_key))
    config = next(
        PoolConfigRecord.model_validate(r)
        for r in read_records(store, manifest)
        if r["type"] == "pool_config"
    )
    assert config.risk_configurations == [] and config.log_delivery is None
    assert config.ui_customizations == [] and config.managed_login_brandings == {}


def test_parts_match_manifest_and_are_encrypted_and_checksummed(aws, store, gateway) -> None:
    pool_id = make_pool(aws.cognito(), extra_users=10, groups=3, big_group=5)
    result = run_export(gateway, store, pool_id, options=ExportOptions(part_max_bytes=2_000))
    assert result.manifest_key
    manifest = store.read_manifest(result.manifest_key)
    s3 = aws.s3()
    assert len({p.kind for p in manifest.parts}) == 5  # config, groups, users, memberships, state
    assert sum(1 for p in manifest.parts if p.kind == "users") > 1  # bounded parts roll over
    for part in manifest.parts:
        head = s3.head_object(Bucket=store.bucket, Key=part.key, ChecksumMode="ENABLED")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentLength"] == part.bytes
        body = s3.get_object(Bucket=store.bucket, Key=part.key)["Body"].read()
        lines = gzip.decompress(body).splitlines()
        assert len(lines) == part.records
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == part.sha256
    listed = {p.key for p in manifest.parts} | {result.manifest_key}
    under = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=store.bucket, Prefix=result.manifest_key.rsplit("/", 1)[0])[
            "Contents"
        ]
    }
    assert under == listed  # nothing stray, no checkpoint left behind


def test_kms_key_is_used_when_configured(aws, bucket, gateway, signing) -> None:
    key_arn = aws._session.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    store = SnapshotStore(aws.s3(), bucket, key_arn, signing)
    pool_id = make_pool(aws.cognito(), extra_users=1, groups=2, big_group=1)
    result = run_export(gateway, store, pool_id)
    assert result.manifest_key
    head = aws.s3().head_object(Bucket=bucket, Key=result.manifest_key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn


def test_no_call_asks_for_more_than_60(aws, store) -> None:
    pool_id = make_pool(aws.cognito())
    client = LimitCheckingClient(aws.cognito())
    gw = CognitoGateway(client, base_delay=0.0)
    gw._pacer.quotas.clear()
    run_export(gw, store, pool_id)
    assert client.limits and max(client.limits) <= PAGE_LIMIT


@pytest.mark.parametrize("checks", [1, 2, 3, 7])
def test_export_cut_by_deadline_resumes_to_the_same_content(aws, store, gateway, checks) -> None:
    # Given a reference snapshot taken in one go
    pool_id = make_pool(aws.cognito())
    reference = run_export(gateway, store, pool_id, options=ExportOptions(prefix="ref"))
    assert reference.manifest_key
    expected = comparable(
        [
            r
            for r in read_records(store, store.read_manifest(reference.manifest_key))
            if r["type"] != "pool_config"
        ]
    )
    # When the export is cut every few steps, and continued by later calls
    options = ExportOptions(prefix="cut", part_max_bytes=3_000, parallelism=2)
    results = [run_export(gateway, store, pool_id, deadline=CountdownDeadline(checks), options=options)]
    while results[-1].status != "complete":
        assert len(results) < 200
        results.append(
            run_export(gateway, store, pool_id, deadline=CountdownDeadline(checks), options=options)
        )
    # Then it took several calls, all on one snapshot, and the content is the same
    assert len(results) > 2
    assert len({r.snapshot_id for r in results}) == 1
    assert results[-1].invocations == len(results)
    final = results[-1]
    assert final.manifest_key
    manifest = store.read_manifest(final.manifest_key)
    got = comparable([r for r in read_records(store, manifest) if r["type"] != "pool_config"])
    assert got == expected
    assert manifest.counts == store.read_manifest(reference.manifest_key).counts
    assert sum(p.records for p in manifest.parts if p.kind == "users") == manifest.counts.users


def test_crash_between_checkpoints_is_redone_without_strays(aws, store, gateway, monkeypatch) -> None:
    pool_id = make_pool(aws.cognito(), extra_users=40, groups=3, big_group=10)
    options = ExportOptions(part_max_bytes=1_500, parallelism=1)
    # Given an export that checkpoints, then crashes after writing more parts
    first = run_export(gateway, store, pool_id, deadline=CountdownDeadline(2), options=options)
    assert first.status == "incomplete"
    real_page = gateway.list_users_page
    calls = {"n": 0}

    def crashing_page(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("Lambda killed")
        return real_page(*args, **kwargs)

    monkeypatch.setattr(gateway, "list_users_page", crashing_page)
    with pytest.raises(RuntimeError):
        run_export(gateway, store, pool_id, options=options)
    monkeypatch.setattr(gateway, "list_users_page", real_page)
    # When it runs again
    final = run_export(gateway, store, pool_id, options=options)
    # Then it finishes the same snapshot, with every user once and no part it does not list
    assert final.status == "complete" and final.snapshot_id == first.snapshot_id and final.manifest_key
    manifest = store.read_manifest(final.manifest_key)
    usernames = [r["username"] for r in read_records(store, manifest) if r["type"] == "user"]
    assert len(usernames) == len(set(usernames)) == 46
    folder = final.manifest_key.rsplit("/", 1)[0]
    keys = {o["Key"] for o in aws.s3().list_objects_v2(Bucket=store.bucket, Prefix=folder)["Contents"]}
    assert keys == {p.key for p in manifest.parts} | {final.manifest_key}


def test_missing_pool_or_bucket_fails_before_any_write(aws, bucket, gateway, signing) -> None:
    store = SnapshotStore(aws.s3(), bucket, signing=signing)
    with pytest.raises(PoolNotFoundError, match="no such user pool"):
        run_export(gateway, store, "us-east-1_doesnotexist")
    assert aws.s3().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    pool_id = make_pool(aws.cognito(), extra_users=1, groups=2, big_group=1)
    with pytest.raises(BucketNotFoundError, match="no such bucket"):
        run_export(gateway, SnapshotStore(aws.s3(), "no-such-bucket-here", signing=signing), pool_id)


def test_the_bucket_default_kms_key_is_followed_when_none_is_given(aws, bucket, gateway, signing) -> None:
    # Given a bucket whose default encryption is a KMS key (as the template makes it)
    key_arn = aws._session.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    aws.s3().put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
            ]
        },
    )
    store = SnapshotStore(aws.s3(), bucket, signing=signing)
    # When no key is configured, the store follows the bucket's
    store.use_bucket_default_key()
    assert store.kms_key_arn == key_arn
    result = run_export(gateway, store, make_pool(aws.cognito(), extra_users=1, groups=2, big_group=1))
    assert result.manifest_key
    assert aws.s3().head_object(Bucket=bucket, Key=result.manifest_key)["SSEKMSKeyId"] == key_arn
    # and a bucket with SSE-S3 only keeps SSE-S3
    plain = SnapshotStore(aws.s3(), bucket, None)
    aws.s3().delete_bucket_encryption(Bucket=bucket)
    plain.use_bucket_default_key()
    assert plain.kms_key_arn is None


def test_a_configuration_too_large_to_read_back_stops_the_export_before_a_manifest(
    aws, store, gateway
) -> None:
    # Given a pool whose configuration record is over the 1 MiB a reader accepts a line to be
    # (twelve clients with 100 callback URLs of ~1,000 characters: Cognito's own limits allow it)
    cognito = aws.cognito()
    pool_id = make_pool(cognito, extra_users=1, groups=2, big_group=1)
    urls = [f"https://app.example.com/{i:03d}/" + "c" * 990 for i in range(100)]
    for n in range(12):
        cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName=f"client-{n}", CallbackURLs=urls, AllowedOAuthFlows=["code"]
        )
    # When it is exported
    with pytest.raises(RecordTooLargeError, match=r"a config record is [\d,]+ bytes, over the 1,048,576"):
        run_export(gateway, store, pool_id)
    # Then no manifest says there is a snapshot, and the error names no client or URL
    keys = [o["Key"] for o in aws.s3().list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    assert not [k for k in keys if k.endswith(MANIFEST_NAME)]
