"""The user-migration trigger against moto: both trigger sources, the snapshot fallback, refusals.

moto answers AdminInitiateAuth with ADMIN_USER_PASSWORD_AUTH (tokens, or NEW_PASSWORD_REQUIRED
for a user still on a temporary password) and NotAuthorizedException for a wrong password,
whose message is the username: the trigger must never pass it on. moto does not resolve
aliases in AdminGetUser; the alias rules are unit-tested in tests/unit/test_migrate_logic.py.
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from conftest import FakeLambdaContext, load_event, load_handler

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import (
    PoolNotFoundError,
    SignInRefusedError,
    SnapshotNotFoundError,
    UsageError,
    UserNotFoundError,
)
from cognito_backup.handlers import migrate_user_handler, parse_migration_event
from cognito_backup.migrate import MigrationSource, SourcePool, migrate_user
from cognito_backup.observability import logger, metrics
from cognito_backup.settings import Settings, get_settings
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot

PASSWORD = "Corr3ct-horse-battery!"
USER = "jane.doe"
ATTRS = {
    "email": "jane@example.com",
    "email_verified": "true",
    "given_name": "Jane",
    "custom:tenant": "t1",
}

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    SourcePool.forget_cache()


def make_source(aws: AwsClients, *, secret: bool = False) -> tuple[str, str]:
    idp = aws.cognito()
    pool = idp.create_user_pool(
        PoolName="old-pool",
        Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": True}],
        AutoVerifiedAttributes=["email"],
    )["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool,
        ClientName="migration",
        GenerateSecret=secret,
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    add_user(aws, pool, USER, ATTRS, password=PASSWORD)
    add_user(aws, pool, "other", {"email": "other@example.com"}, password="An0ther-password!")
    return pool, client


def add_user(
    aws: AwsClients, pool: str, name: str, attrs: dict[str, str], *, password: str | None = None
) -> None:
    idp = aws.cognito()
    idp.admin_create_user(
        UserPoolId=pool,
        Username=name,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attrs.items()],
        **({"TemporaryPassword": "Temp0rary-pass!"} if password is None else {}),
    )
    if password is not None:
        idp.admin_set_user_password(UserPoolId=pool, Username=name, Password=password, Permanent=True)


def event(source: str, *, user: str = USER, password: str | None = PASSWORD) -> dict[str, Any]:
    name = "migrate_user_authentication" if source == "auth" else "migrate_user_forgot_password"
    e = load_event(name)
    e["userName"] = user
    if source == "auth":
        e["request"]["password"] = password
    return e


def run(
    gateway: CognitoGateway, store: SnapshotStore, pool: str, client: str | None, raw: dict[str, Any]
) -> Any:
    source = MigrationSource(pool, client, "backups")
    return migrate_user(gateway, store, source, parse_migration_event(raw))


# ---------------------------------------------------------------------- authentication
def test_the_right_password_migrates_the_user_with_its_attributes_but_sub(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    migrated = run(gateway, store, pool, client, event("auth"))
    assert migrated.origin == "source_pool" and migrated.challenge is None
    assert migrated.response.userAttributes == ATTRS  # no sub, no username: the name typed is it
    assert migrated.response.finalUserStatus == "CONFIRMED"
    assert migrated.response.messageAction == "SUPPRESS"


def test_a_wrong_password_raises_without_naming_the_user(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    with pytest.raises(SignInRefusedError) as refused:
        run(gateway, store, pool, client, event("auth", password="wrong-Passw0rd!"))
    assert "NotAuthorizedException" in str(refused.value)
    assert USER not in str(refused.value) and refused.value.__cause__ is None  # moto's message is the name


def test_an_unknown_user_raises_without_naming_it(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    with pytest.raises(UserNotFoundError) as unknown:
        run(gateway, store, pool, client, event("auth", user="nobody-here"))
    assert "nobody-here" not in str(unknown.value)


def test_a_disabled_user_is_refused(aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore) -> None:
    pool, client = make_source(aws)
    aws.cognito().admin_disable_user(UserPoolId=pool, Username=USER)
    with pytest.raises(SignInRefusedError):
        run(gateway, store, pool, client, event("auth"))
    with pytest.raises(UserNotFoundError, match="disabled"):  # nor migrated by a password reset
        run(gateway, store, pool, client, event("forgot"))


def test_a_temporary_password_proves_the_user_who_must_then_choose_a_new_one(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    add_user(aws, pool, "invited", {"email": "invited@example.com", "email_verified": "true"})
    migrated = run(gateway, store, pool, client, event("auth", user="invited", password="Temp0rary-pass!"))
    assert migrated.challenge == "NEW_PASSWORD_REQUIRED"
    assert migrated.response.finalUserStatus == "RESET_REQUIRED"


def test_a_client_with_a_secret_is_refused_clearly(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, _ = make_source(aws)
    secret = aws.cognito().create_user_pool_client(UserPoolId=pool, ClientName="web", GenerateSecret=True)
    client = secret["UserPoolClient"]["ClientId"]
    with pytest.raises(UsageError, match="has a secret"):
        run(gateway, store, pool, client, event("auth"))
    with pytest.raises(UsageError, match="MIGRATION_SOURCE_CLIENT_ID"):
        run(gateway, store, pool, None, event("auth"))


# ---------------------------------------------------------------------- forgot password
def test_forgot_password_answers_from_the_source_pool(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    migrated = run(gateway, store, pool, client, event("forgot"))
    assert migrated.origin == "source_pool"
    assert migrated.response.userAttributes == ATTRS
    assert migrated.response.finalUserStatus is None and migrated.response.messageAction == "SUPPRESS"
    with pytest.raises(UserNotFoundError):
        run(gateway, store, pool, client, event("forgot", user="nobody-here"))


def snapshot(gateway: CognitoGateway, store: SnapshotStore, pool: str, *, incremental: bool = False) -> str:
    key = run_export(gateway, store, pool, incremental=incremental).manifest_key
    assert key
    assert validate_snapshot(store, key, record=True).valid
    return key


def test_forgot_password_answers_from_the_newest_snapshot_once_the_source_is_gone(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    snapshot(gateway, store, pool)
    # Changed after the full snapshot: the answer is the pool as of the newest (an incremental).
    idp = aws.cognito()
    idp.admin_update_user_attributes(
        UserPoolId=pool, Username=USER, UserAttributes=[{"Name": "given_name", "Value": "Janet"}]
    )
    newest = snapshot(gateway, store, pool, incremental=True)
    assert "/incremental/" in newest
    idp.delete_user_pool(UserPoolId=pool)

    migrated = run(gateway, store, pool, client, event("forgot"))
    assert migrated.origin == "snapshot" and migrated.snapshot_id == newest.split("/")[-2]
    assert migrated.response.userAttributes == {**ATTRS, "given_name": "Janet"}
    assert migrated.response.messageAction == "SUPPRESS" and migrated.response.finalUserStatus is None

    with pytest.raises(UserNotFoundError) as unknown:
        run(gateway, store, pool, client, event("forgot", user="nobody-here"))
    assert "nobody-here" not in str(unknown.value)
    # A password cannot be checked against a snapshot: sign-in refuses, the reset still works.
    with pytest.raises(PoolNotFoundError):
        run(gateway, store, pool, client, event("auth"))


def test_the_fallback_uses_only_a_validated_snapshot(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    pool, client = make_source(aws)
    older = snapshot(gateway, store, pool)
    aws.cognito().admin_update_user_attributes(
        UserPoolId=pool, Username=USER, UserAttributes=[{"Name": "given_name", "Value": "Tampered"}]
    )
    unvalidated = run_export(gateway, store, pool, incremental=True).manifest_key  # never validated
    assert unvalidated and unvalidated != older
    aws.cognito().delete_user_pool(UserPoolId=pool)

    migrated = run(gateway, store, pool, client, event("forgot"))
    assert migrated.snapshot_id == older.split("/")[-2]
    assert migrated.response.userAttributes["given_name"] == "Jane"

    # A failed verdict is passed over too; with none passed, nothing is answered.
    store.put_tags(older, {"validation": "failed"})
    with pytest.raises(SnapshotNotFoundError, match="no validated snapshot"):
        run(gateway, store, pool, client, event("forgot"))


def test_the_snapshot_fallback_resolves_a_verified_email_alias(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    idp = aws.cognito()
    pool = idp.create_user_pool(PoolName="aliased", AliasAttributes=["email"])["UserPool"]["Id"]
    add_user(aws, pool, USER, {"email": "Jane@Example.com", "email_verified": "true"}, password=PASSWORD)
    add_user(
        aws, pool, "unverified", {"email": "u@example.com", "email_verified": "false"}, password=PASSWORD
    )
    snapshot(gateway, store, pool)
    idp.delete_user_pool(UserPoolId=pool)

    migrated = run(gateway, store, pool, None, event("forgot", user="jane@example.com"))
    # The name typed was an alias: Cognito needs the real username in the answer.
    assert migrated.response.userAttributes["username"] == USER
    with pytest.raises(UserNotFoundError):  # an unverified e-mail is no alias
        run(gateway, store, pool, None, event("forgot", user="u@example.com"))


# ---------------------------------------------------------------------- the Lambda
def test_the_lambda_answers_cognito_with_the_event_and_logs_no_personal_data(
    aws: AwsClients, bucket: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    pool, client = make_source(aws)
    monkeypatch.setenv("BUCKET_NAME", bucket)
    monkeypatch.setenv("BACKUP_PREFIX", "backups")
    monkeypatch.setenv("MIGRATION_SOURCE_USER_POOL_ID", pool)
    monkeypatch.setenv("MIGRATION_SOURCE_CLIENT_ID", client)
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")  # an operator debugging: still no password
    get_settings.cache_clear()
    app = load_handler("migrate_user")
    logs = io.StringIO()
    stream = logger.registered_handler.setStream(logs)
    try:
        raw = event("auth")
        answer = app.handler(copy.deepcopy(raw), FakeLambdaContext())
        assert answer["response"]["userAttributes"] == ATTRS
        assert answer["response"]["finalUserStatus"] == "CONFIRMED"
        assert answer["response"]["messageAction"] == "SUPPRESS"
        assert answer["userName"] == USER and answer["triggerSource"] == raw["triggerSource"]
        # Cognito's own response fields the trigger leaves alone stay as they came.
        assert answer["response"]["forceAliasCreation"] is None

        forgot = app.handler(event("forgot"), FakeLambdaContext())
        assert forgot["response"]["userAttributes"] == ATTRS and "finalUserStatus" in forgot["response"]

        with pytest.raises(SignInRefusedError):
            app.handler(event("auth", password="wrong-Passw0rd!"), FakeLambdaContext())
    finally:
        logger.registered_handler.setStream(stream)
        get_settings.cache_clear()
        metrics.clear_metrics()
    out = capfd.readouterr()
    logged = logs.getvalue() + out.out + out.err
    assert logged.count('"message":"user migrated"') == 2
    assert "UserMigrationRefused" in logged  # the metric the errors alarm subtracts
    for secret in (USER, PASSWORD, "wrong-Passw0rd!", ATTRS["email"], "Jane"):
        assert secret not in logged


def test_a_malformed_event_is_refused_naming_the_field_not_the_values(aws: AwsClients, bucket: str) -> None:
    settings = Settings.from_env({"BUCKET_NAME": bucket})
    env = {"MIGRATION_SOURCE_USER_POOL_ID": "us-east-1_Gone", "MIGRATION_SOURCE_CLIENT_ID": "c"}
    bad = event("auth")
    bad["triggerSource"] = "PreSignUp_SignUp"
    with pytest.raises(UsageError, match="triggerSource") as refused:
        migrate_user_handler(bad, settings, environ=env)
    assert PASSWORD not in str(refused.value) and USER not in str(refused.value)

    no_name = event("auth")
    del no_name["userName"]
    with pytest.raises(UsageError, match="userName"):
        migrate_user_handler(no_name, settings, environ=env)
    with pytest.raises(UsageError, match=r"request\.password"):
        migrate_user_handler(event("auth", password=None), settings, environ=env)
    with pytest.raises(UsageError, match="expected a JSON object"):
        migrate_user_handler(json.dumps(event("auth")), settings, environ=env)
    with pytest.raises(UsageError, match="MIGRATION_SOURCE_USER_POOL_ID"):
        migrate_user_handler(event("auth"), settings, environ={})


def test_the_events_parse_as_the_trigger_model() -> None:
    for name in ("migrate_user_authentication", "migrate_user_forgot_password"):
        parsed = parse_migration_event(load_event(name))
        assert parsed.triggerSource.startswith("UserMigration_")
    assert parse_migration_event(load_event("migrate_user_forgot_password")).request.password is None


def test_a_source_pool_in_another_region_is_reached_there(aws: AwsClients, bucket: str) -> None:
    elsewhere = AwsClients(region="eu-west-1")
    pool, client = make_source(elsewhere)
    assert pool.startswith("eu-west-1_")
    settings = Settings.from_env({"BUCKET_NAME": bucket, "AWS_REGION": "us-east-1"})
    env = {"MIGRATION_SOURCE_USER_POOL_ID": pool, "MIGRATION_SOURCE_CLIENT_ID": client}
    try:
        answer = migrate_user_handler(event("auth"), settings, environ=env)
    finally:
        metrics.clear_metrics()
    assert answer["response"]["userAttributes"] == ATTRS


def test_a_pool_with_email_as_username_migrates_without_naming_a_username(
    aws: AwsClients, gateway: CognitoGateway, store: SnapshotStore
) -> None:
    idp = aws.cognito()
    pool = idp.create_user_pool(PoolName="by-email", UsernameAttributes=["email"])["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="m")["UserPoolClient"]["ClientId"]
    add_user(aws, pool, "jane@example.com", {"email": "jane@example.com"}, password=PASSWORD)
    migrated = run(gateway, store, pool, client, event("auth", user="jane@example.com"))
    # The new pool generates the username: the answer must not name one.
    assert "username" not in migrated.response.userAttributes
    assert migrated.response.userAttributes["email"] == "jane@example.com"
    assert migrated.response.finalUserStatus == "CONFIRMED"
