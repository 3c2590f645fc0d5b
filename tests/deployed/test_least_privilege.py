"""Each Lambda's role in template.yaml allows every AWS call its handler makes, and no more.

Each function's real handler (functions/<name>/app.py) runs realistic scenarios against moto,
with the environment template.yaml gives it (bucket, prefix, KMS key, pool), a bucket whose
default encryption is a real moto KMS key, as deployed. Every call its clients make is
recorded (call_recorder), mapped to what IAM authorises (iam_calls) and evaluated against the
function's own role resolved from template.yaml (cfn_roles, iam_policy) for the default
parameters, with KmsKeyArn set, and with RestoreTargetUserPoolIds set (the restore's targets are
listed in every variant: an empty list grants no pool). The test fails on any
denied call, and on any grant that no scenario used unless the role's
Metadata.UnexercisedGrants says why it stays (least_privilege).
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from call_recorder import RecordedCall, record_calls
from cfn_roles import Resolver, Stack, load_template
from conftest import BUCKET, REPO, FakeLambdaContext, load_event
from iam_calls import AwsFacts, created_pool_tags
from least_privilege import RoleReport, check_role, problems

from cognito_backup import pacing
from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import (
    RestoreRefusedError,
    SignInRefusedError,
    SnapshotInvalidError,
    UserNotFoundError,
)
from cognito_backup.migrate import SourcePool
from cognito_backup.observability import metrics
from cognito_backup.pacing import CountdownDeadline, Deadline, Pacer
from cognito_backup.settings import get_settings
from cognito_backup.signing import KmsMac, ManifestSigning
from cognito_backup.snapshot import run_export
from cognito_backup.store import SnapshotStore
from cognito_backup.validate import validate_snapshot
from cognito_local.faults import Faults
from cognito_local.inprocess import strict_cognito
from cognito_local.keys import create_signing_key
from cognito_local.seed import create_pool, seed_pool

# Handlers that publish no metric (an ignored event) make Powertools warn.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
STACK = "cognito-backup"
APPS = {
    "FullExportFunction": "full_export",
    "IncrementalExportFunction": "incremental_export",
    "ValidatorFunction": "validator",
    "RestoreFunction": "restore",
    "MigrateUserFunction": "migrate_user",
    "DrillFunction": "drill",
    "ForgetFunction": "forget",
}
TEMPLATE = load_template()


def load_app(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"deployed_{name}_app", REPO / "functions" / name / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Deployment:
    """moto set up as the stack would be: a KMS key, the versioned bucket encrypted with it,
    the source pool; and the calls each function's handler made, by scenario."""

    aws: AwsClients
    monkeypatch: pytest.MonkeyPatch
    key_arn: str
    key_id: str
    signing_arn: str  # the SigningKey (HMAC_256) that signs and verifies manifests
    source: str
    calls: dict[str, list[tuple[str, RecordedCall]]] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    # Parameters every variant of the stack gets (the migration trigger exists only with its own).
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> SnapshotStore:
        return SnapshotStore(
            self.aws.s3(), BUCKET, self.key_arn, ManifestSigning(KmsMac(self.aws.kms(), self.signing_arn))
        )

    @property
    def gateway(self) -> CognitoGateway:
        return CognitoGateway(self.aws.cognito(), Pacer(quotas={}), base_delay=0.0)

    def stack(self, **parameters: Any) -> Stack:
        return Stack(
            region=REGION,
            account=ACCOUNT,
            stack_name=STACK,
            parameters={"UserPoolId": self.source, **self.parameters, **parameters},
            refs={
                "BackupBucket": BUCKET,
                "BackupKey": self.key_id,
                "SigningKey": self.signing_arn.rsplit("/", 1)[-1],
            },
            attributes={
                ("BackupBucket", "Arn"): f"arn:aws:s3:::{BUCKET}",
                ("BackupKey", "Arn"): self.key_arn,
                ("SigningKey", "Arn"): self.signing_arn,
            },
        )

    def variants(self) -> dict[str, Stack]:
        """The parameter sets checked. An empty RestoreTargetUserPoolIds grants no pool, so the
        restores here are checked with their targets listed (as a deployment must list them)."""
        listed = {"RestoreTargetUserPoolIds": ",".join(self.targets)} if self.targets else {}
        return {
            "default parameters" + (" but the targets listed" if listed else ""): self.stack(**listed),
            "KmsKeyArn set": self.stack(KmsKeyArn=self.key_arn, **listed),
            "RestoreTargetUserPoolIds set": self.stack(
                RestoreTargetUserPoolIds=",".join(self.targets or ["x_y"])
            ),
        }

    def facts(self, function: str) -> AwsFacts:
        role = Resolver(TEMPLATE, self.stack()).function_role(function)
        return AwsFacts(
            account=ACCOUNT,
            principal=f"arn:aws:sts::{ACCOUNT}:assumed-role/{STACK}-{role}/{STACK}-{function}",
            bucket_default_kms_key={BUCKET: self.key_arn},
            kms_key_arns={self.key_id: self.key_arn, self.signing_arn.rsplit("/", 1)[-1]: self.signing_arn},
            # The pools the function made (a drill's scratch pools, deleted since): their tags.
            pool_tags=created_pool_tags(c for _, c in self.calls.get(function, [])),
        )

    def invoke(
        self,
        function: str,
        scenario: str,
        event: dict[str, Any],
        *,
        remaining_ms: int = 900_000,
        deadline: Callable[[], Deadline] | None = None,
        raises: type[BaseException] | None = None,
    ) -> dict[str, Any]:
        """The function's handler with the template's environment; its calls recorded."""
        env = Resolver(TEMPLATE, self.stack()).function_environment(function)
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "0")
        get_settings.cache_clear()
        app = load_app(APPS[function])
        context = FakeLambdaContext(function_name=f"{STACK}-{function}", remaining_ms=remaining_ms)
        with pytest.MonkeyPatch.context() as mp:
            if deadline is not None:
                make = deadline
                mp.setattr(pacing.Deadline, "from_lambda_context", classmethod(lambda cls, *a, **k: make()))
            with record_calls() as log:
                try:
                    if raises is None:
                        result: dict[str, Any] = app.handler(event, context)
                    else:
                        with pytest.raises(raises):
                            app.handler(event, context)
                        result = {}
                finally:
                    get_settings.cache_clear()
                    metrics.clear_metrics()
        self.calls.setdefault(function, []).extend((scenario, c) for c in log.calls)
        return result

    def check(self, function: str) -> tuple[list[RoleReport], list[str]]:
        reports = [
            check_role(
                function, name, Resolver(TEMPLATE, stack), self.calls[function], self.facts(function), BUCKET
            )
            for name, stack in self.variants().items()
        ]
        return reports, problems(reports, TEMPLATE)


@pytest.fixture
def deployment(aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    key = boto3.client("kms", region_name=REGION).create_key(Description="backups")["KeyMetadata"]
    s3 = aws.s3()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key["Arn"],
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    idp = aws.cognito()
    # On the Plus plan with threat protection on: the export reads its risk configuration.
    plus = {"UserPoolTier": "PLUS", "UserPoolAddOns": {"AdvancedSecurityMode": "AUDIT"}}
    source = create_pool(idp, "source-pool", settings=plus)
    seed_pool(idp, source, users=40, groups=3, confirmed_share=0.5)
    # What the pool's configuration export reads: an app client, an identity provider, a
    # resource server and a domain; the hosted UI's look, a branding, log delivery, risk settings.
    web = idp.create_user_pool_client(UserPoolId=source, ClientName="web")["UserPoolClient"]["ClientId"]
    idp.create_identity_provider(
        UserPoolId=source,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "id", "client_secret": "secret", "authorize_scopes": "email"},
    )
    idp.create_resource_server(UserPoolId=source, Identifier="https://api.example.com", Name="api")
    idp.create_user_pool_domain(UserPoolId=source, Domain="source-pool-auth")
    idp.set_ui_customization(UserPoolId=source, ClientId=web, CSS=".banner-customizable {color: #036}")
    idp.create_managed_login_branding(UserPoolId=source, ClientId=web, UseCognitoProvidedValues=True)
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/cognito/source-pool"
    idp.set_log_delivery_configuration(
        UserPoolId=source,
        LogConfigurations=[
            {
                "LogLevel": "ERROR",
                "EventSource": "userNotification",
                "CloudWatchLogsConfiguration": {"LogGroupArn": log_group},
            }
        ],
    )
    idp.set_risk_configuration(
        UserPoolId=source, CompromisedCredentialsRiskConfiguration={"Actions": {"EventAction": "BLOCK"}}
    )
    linked = [{"userId": "g-1", "providerName": "Google", "providerType": "Google", "primary": "false"}]
    idp.admin_create_user(
        UserPoolId=source,
        Username="linked",
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": "linked@example.com"},
            {"Name": "identities", "Value": json.dumps(linked)},
        ],
    )
    idp.admin_set_user_password(
        UserPoolId=source, Username="linked", Password="Sup3r-secret!", Permanent=True
    )
    signing = create_signing_key(boto3.client("kms", region_name=REGION))
    yield Deployment(aws, monkeypatch, key["Arn"], key["KeyId"], signing, source)
    get_settings.cache_clear()


# The one KMS call each function makes on the SigningKey: the exports sign (and check a base by
# signing it again), the others verify. The recorder must see it, or the role is not checked.
MAC_CALLS = {
    "FullExportFunction": {"GenerateMac"},
    "IncrementalExportFunction": {"GenerateMac"},
    "ValidatorFunction": {"VerifyMac"},
    "RestoreFunction": {"VerifyMac"},
    "MigrateUserFunction": {"VerifyMac"},  # the snapshot fallback reads a snapshot
    "DrillFunction": {"VerifyMac"},  # it checks the snapshot it restores
    # It signs the snapshots it rewrites and derives the ledger's hash key; its revalidation verifies.
    "ForgetFunction": {"GenerateMac", "VerifyMac"},
}


def assert_least_privilege(d: Deployment, function: str) -> None:
    kms = {c.operation for _, c in d.calls[function] if c.service == "kms"}
    assert kms == MAC_CALLS[function], f"{function} called KMS for {kms}"
    reports, found = d.check(function)
    assert all(r.authorizations for r in reports), f"{function}: no call was recorded"
    assert not found, "\n".join(found)


def scheduled(name: str) -> dict[str, Any]:
    return load_event(name)


def manifest_event(key: str) -> dict[str, Any]:
    event = load_event("validator")
    event["detail"]["bucket"]["name"] = BUCKET
    event["detail"]["object"]["key"] = key
    return event


def change_the_pool(d: Deployment, n: int) -> None:
    """Setup between two incrementals (not recorded): a user added, changed, removed."""
    idp = d.aws.cognito()
    users = [u["Username"] for u in idp.list_users(UserPoolId=d.source)["Users"] if u["Username"] != "linked"]
    groups = [g["GroupName"] for g in idp.list_groups(UserPoolId=d.source)["Groups"]]
    idp.admin_create_user(UserPoolId=d.source, Username=f"new-{n}", MessageAction="SUPPRESS")
    idp.admin_add_user_to_group(UserPoolId=d.source, Username=f"new-{n}", GroupName=groups[0])
    idp.admin_update_user_attributes(
        UserPoolId=d.source,
        Username=users[0],
        UserAttributes=[{"Name": "given_name", "Value": f"Changed{n}"}],
    )
    idp.admin_delete_user(UserPoolId=d.source, Username=users[1])


def erase_someone(d: Deployment) -> str:
    """Setup (not recorded): a `forget` of one user of the source pool, who stays in the pool."""
    from cognito_backup.forget import Forget

    person = sorted(
        u["Username"]
        for u in d.aws.cognito().list_users(UserPoolId=d.source)["Users"]
        if u["Username"] != "linked"
    )[0]
    from cognito_backup.errors import EraseIncompleteError

    try:
        Forget(d.store, d.source, prefix="backups", usernames=[person]).run()
    except EraseIncompleteError as exc:  # a scenario's tampered snapshot cannot be read: left unchecked
        assert "0 object version(s) still name" in str(exc), str(exc)
    return person


# ---------------------------------------------------------------------- exports
def test_full_export_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    d = deployment
    done = d.invoke("FullExportFunction", "full export", scheduled("full_export"))
    assert done["status"] == "complete"
    # Cut at its first boundary (no time left), then continued from the checkpoint.
    cut = d.invoke(
        "FullExportFunction", "full export cut at the deadline", scheduled("full_export"), remaining_ms=0
    )
    assert cut["status"] == "incomplete"
    resumed = d.invoke("FullExportFunction", "full export resumed", scheduled("full_export"))
    assert resumed["status"] == "complete" and resumed["invocations"] == 2
    # With an erasure in the ledger: entries read and checked, the hash key derived (GenerateMac).
    erased = erase_someone(d)
    after = d.invoke("FullExportFunction", "full export after an erasure", scheduled("full_export"))
    assert after["status"] == "complete" and after["counts"]["users"] == resumed["counts"]["users"] - 1, (
        erased
    )

    assert_least_privilege(d, "FullExportFunction")


def test_incremental_export_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    d = deployment
    first = d.invoke(
        "IncrementalExportFunction", "incremental without a base (a full)", scheduled("incremental_export")
    )
    assert first["kind"] == "full"
    change_the_pool(d, 1)
    after_full = d.invoke(
        "IncrementalExportFunction", "incremental after a full", scheduled("incremental_export")
    )
    assert after_full["kind"] == "incremental" and after_full["status"] == "complete"
    change_the_pool(d, 2)
    cut = d.invoke(
        "IncrementalExportFunction",
        "incremental after an incremental, cut mid-listing",
        scheduled("incremental_export"),
        deadline=lambda: CountdownDeadline(6),
    )
    assert cut["status"] == "incomplete" and cut["kind"] == "incremental"
    resumed = d.invoke("IncrementalExportFunction", "incremental resumed", scheduled("incremental_export"))
    assert resumed["status"] == "complete" and resumed["base_manifest_key"] == after_full["manifest_key"]

    assert_least_privilege(d, "IncrementalExportFunction")


# ---------------------------------------------------------------------- validator
def test_validator_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    d = deployment
    full = run_export(d.gateway, d.store, d.source).manifest_key
    change_the_pool(d, 1)
    incremental = run_export(d.gateway, d.store, d.source, incremental=True).manifest_key
    assert full and incremental and "/incremental/" in incremental

    # The incremental first: its base has no verdict yet, so it is validated along.
    inc = d.invoke("ValidatorFunction", "incremental, base not yet validated", manifest_event(incremental))
    assert inc["verdict"] == "passed"
    assert d.invoke("ValidatorFunction", "full", manifest_event(full))["verdict"] == "passed"
    assert (
        d.invoke("ValidatorFunction", "incremental again", manifest_event(incremental))["verdict"] == "passed"
    )
    ignored = d.invoke(
        "ValidatorFunction", "a data part (ignored)", manifest_event(full[:-13] + "users-00001.jsonl.gz")
    )
    assert ignored["status"] == "ignored"
    # A forged manifest (changed after it was signed): VerifyMac refuses it, the verdict is failed.
    forged = json.loads(d.store.get_bytes(incremental))
    forged["counts"]["users"] += 1
    d.store.put_json(incremental, forged)
    d.invoke(
        "ValidatorFunction", "forged incremental", manifest_event(incremental), raises=SnapshotInvalidError
    )
    # An invalid snapshot, signed (a buggy export): the verdict is recorded, then the invocation fails.
    manifest = d.store.read_manifest(full)
    manifest.counts.users += 1
    d.store.put_json(full, d.store.signing.sign(manifest))
    d.invoke("ValidatorFunction", "invalid full", manifest_event(full), raises=SnapshotInvalidError)

    assert_least_privilege(d, "ValidatorFunction")


# ---------------------------------------------------------------------- restore
def restore_event(manifest: str, target: str, **options: Any) -> dict[str, Any]:
    return {"manifest_key": manifest, "target_user_pool_id": target, **options}


def new_target(d: Deployment, name: str, *, bare: bool = False) -> str:
    """A target pool with the source's username settings; `bare`: without its custom attributes."""
    idp = d.aws.cognito()
    if bare:
        target = idp.create_user_pool(PoolName=name, AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    else:
        target = create_pool(idp, name)
    d.targets.append(target)
    return target


def diverge(d: Deployment, target: str) -> None:
    """A target holding some of the snapshot's users, changed: the overwrite has work to do."""
    idp = d.aws.cognito()
    users = [u for u in idp.list_users(UserPoolId=d.source)["Users"] if u["Username"] != "linked"][:3]
    groups = [g["GroupName"] for g in idp.list_groups(UserPoolId=d.source)["Groups"]]
    idp.create_group(UserPoolId=target, GroupName=groups[0], Description="another description")
    idp.create_group(UserPoolId=target, GroupName="only-in-target")
    for u in users:
        attrs = {a["Name"]: a["Value"] for a in u["Attributes"] if a["Name"] not in ("sub",)}
        attrs["given_name"] = "Different"
        attrs["nickname"] = "not-in-the-snapshot"  # the overwrite removes it
        idp.admin_create_user(
            UserPoolId=target,
            Username=u["Username"],
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": k, "Value": v} for k, v in attrs.items()],
        )
        idp.admin_add_user_to_group(UserPoolId=target, Username=u["Username"], GroupName="only-in-target")
        if u["Enabled"]:
            idp.admin_disable_user(UserPoolId=target, Username=u["Username"])


def give_the_source_what_a_rebuild_makes(d: Deployment) -> str:
    """Setup (not recorded): beside the fixture's client, Google provider (its secret never
    backed up: listed, not made), resource server and domain, a provider without a secret and
    TOTP MFA. Answers the domain."""
    idp = d.aws.cognito()
    idp.create_identity_provider(
        UserPoolId=d.source,
        ProviderName="Corp",
        ProviderType="SAML",
        ProviderDetails={"MetadataURL": "https://idp.example.com/md"},
    )
    idp.set_user_pool_mfa_config(
        UserPoolId=d.source, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
    )
    return "source-pool-auth"


def test_restore_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    d = deployment
    domain = give_the_source_what_a_rebuild_makes(d)
    full = run_export(d.gateway, d.store, d.source).manifest_key
    change_the_pool(d, 1)
    incremental = run_export(d.gateway, d.store, d.source, incremental=True).manifest_key
    assert full and incremental
    idp = d.aws.cognito()
    members = idp.list_users_in_group(
        UserPoolId=d.source, GroupName=idp.list_groups(UserPoolId=d.source)["Groups"][1]["GroupName"]
    )["Users"]
    group = idp.list_groups(UserPoolId=d.source)["Groups"][1]["GroupName"]

    # A bare target: custom attributes, groups and users all to be made; Google to re-link.
    bare = new_target(d, "bare-target", bare=True)
    idp.create_identity_provider(
        UserPoolId=bare,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "id", "client_secret": "secret", "authorize_scopes": "email"},
    )
    plan = d.invoke("RestoreFunction", "dry run (never validated)", restore_event(full, bare, dry_run=True))
    assert plan["dry_run"] is True
    whole = d.invoke("RestoreFunction", "full restore", restore_event(full, bare))
    assert whole["status"] == "complete", whole["failures"]

    resumed_target = new_target(d, "resumed-target")
    cut = d.invoke(
        "RestoreFunction", "restore cut at once", restore_event(incremental, resumed_target), remaining_ms=0
    )
    assert cut["status"] == "incomplete"
    groups = len(idp.list_groups(UserPoolId=d.source)["Groups"])
    cut = d.invoke(
        "RestoreFunction",
        "restore cut after its users",
        restore_event(incremental, resumed_target),
        deadline=lambda: CountdownDeadline(groups),  # the check after its one chunk of users
    )
    assert cut["status"] == "incomplete"
    done = d.invoke("RestoreFunction", "restore resumed", restore_event(incremental, resumed_target))
    assert done["status"] == "complete" and done["invocations"] == 3, done["failures"]

    changed = new_target(d, "overwrite-target")
    diverge(d, changed)
    over = d.invoke("RestoreFunction", "overwrite", restore_event(full, changed, conflict_policy="overwrite"))
    assert over["status"] == "complete" and over["counts"]["overwritten"] == 3, over["failures"]

    # Lost answers: AdminCreateUser acts, then answers 500; the retry's UsernameExists makes the
    # restore read the user and its groups back (AdminGetUser, AdminListGroupsForUser).
    lossy = new_target(d, "lost-answers-target")
    lost = Faults(rate=0.5, after_effect=1.0, seed=3, operations=frozenset({"AdminCreateUser"}))
    with strict_cognito(enforce_quotas=False, faults=lost) as engine:
        found = d.invoke("RestoreFunction", "lost answers", restore_event(full, lossy))
    assert found["status"] == "complete" and engine.stats()["faults"]["total"]["after"] > 0, found

    mirrored = new_target(d, "mirror-target")
    diverge(d, mirrored)
    idp.admin_create_user(UserPoolId=mirrored, Username="not-in-the-snapshot", MessageAction="SUPPRESS")
    mirror = d.invoke("RestoreFunction", "mirror", restore_event(full, mirrored, mirror=True))
    assert mirror["status"] == "complete" and mirror["counts"]["users_deleted"] == 1, mirror
    assert mirror["counts"]["groups_deleted"] == 1

    subset = new_target(d, "subset-target")
    some = d.invoke(
        "RestoreFunction", "by usernames", restore_event(full, subset, usernames=[members[0]["Username"]])
    )
    assert some["status"] == "complete" and some["counts"]["created"] == 1
    by_group = d.invoke("RestoreFunction", "by group", restore_event(full, subset, groups=[group]))
    assert by_group["status"] == "complete" and by_group["counts"]["memberships_added"] > 0

    # A forged manifest: VerifyMac refuses it before anything is written.
    forged = json.loads(d.store.get_bytes(incremental))
    forged["tool_version"] = "forged"
    d.store.put_json(incremental, forged)
    d.invoke(
        "RestoreFunction", "forged manifest", restore_event(incremental, subset), raises=RestoreRefusedError
    )

    # create_target_pool_name: the pool made from the snapshot (the source pool gone, so its
    # domain prefix is free), tagged, then restored; a later step continues into the same pool.
    idp.delete_user_pool_domain(UserPoolId=d.source, Domain=domain)
    rebuild = {"manifest_key": full, "create_target_pool_name": "rebuilt-by-the-lambda"}
    shown = d.invoke("RestoreFunction", "rebuild, dry run", {**rebuild, "dry_run": True})
    assert shown["create_target_pool"]["pool_name"] == "rebuilt-by-the-lambda"
    made = d.invoke("RestoreFunction", "rebuild", rebuild)
    assert made["status"] == "complete" and made["rebuild"]["created_pool"], made
    assert made["rebuild"]["created"] == {
        "resource_servers": 1,
        "identity_providers": 1,
        "app_clients": 1,
        "domain": 1,
        "ui_customizations": 1,
        "managed_login_brandings": 1,
        "log_delivery": 1,
        "risk_configurations": 1,
    }, made["rebuild"]
    again = d.invoke("RestoreFunction", "rebuild continued", rebuild)
    assert (
        again["target_user_pool_id"] == made["target_user_pool_id"] and not again["rebuild"]["created_pool"]
    )

    # With an erasure in the ledger, every restore reads and verifies its entries first.
    erase_someone(d)
    erased = d.invoke("RestoreFunction", "dry run after an erasure", restore_event(full, bare, dry_run=True))
    assert erased["dry_run"] is True

    assert_least_privilege(d, "RestoreFunction")


def test_restore_targets_parameter_narrows_the_role(deployment: Deployment) -> None:
    """With RestoreTargetUserPoolIds naming another pool, the same restore is denied."""
    d = deployment
    full = run_export(d.gateway, d.store, d.source).manifest_key
    assert full
    target = create_pool(d.aws.cognito(), "not-listed")
    d.invoke("RestoreFunction", "restore", restore_event(full, target))
    stack = d.stack(RestoreTargetUserPoolIds="us-east-1_Other1,us-east-1_Other2")
    report = check_role(
        "RestoreFunction",
        "other targets",
        Resolver(TEMPLATE, stack),
        d.calls["RestoreFunction"],
        d.facts("RestoreFunction"),
        BUCKET,
    )
    denied = "\n".join(report.denied)
    assert (
        f"cognito-idp:AdminCreateUser on arn:aws:cognito-idp:us-east-1:{ACCOUNT}:userpool/{target}" in denied
    )
    assert "s3:" not in denied  # the bucket side is the same


def test_the_standby_pool_is_a_restore_target_whatever_the_list_says(deployment: Deployment) -> None:
    """StandbyUserPoolId adds the standby (any region) to the role's pools, and only it."""
    d = deployment
    full = run_export(d.gateway, d.store, d.source).manifest_key
    assert full
    standby = create_pool(d.aws.cognito(), "standby")
    d.invoke("RestoreFunction", "standby sync", restore_event(full, standby))
    listed = "us-east-1_Other1"

    def denied(**parameters: Any) -> str:
        report = check_role(
            "RestoreFunction",
            "standby",
            Resolver(TEMPLATE, d.stack(**parameters)),
            d.calls["RestoreFunction"],
            d.facts("RestoreFunction"),
            BUCKET,
        )
        return "\n".join(report.denied)

    assert denied(RestoreTargetUserPoolIds=listed, StandbyUserPoolId=standby) == ""
    assert f"userpool/{standby}" in denied(RestoreTargetUserPoolIds=listed)
    assert f"userpool/{standby}" in denied(RestoreTargetUserPoolIds=listed, StandbyUserPoolId="eu-west-1_Zz9")


def _without(template: dict[str, Any], role: str, action: str) -> dict[str, Any]:
    changed = copy.deepcopy(template)
    for p in changed["Resources"][role]["Properties"]["Policies"]:
        for s in p["PolicyDocument"]["Statement"]:
            if isinstance(s["Action"], list) and action in s["Action"]:
                s["Action"].remove(action)
    return changed


def test_the_check_finds_a_missing_grant_and_an_unused_one(deployment: Deployment) -> None:
    """The check itself: a grant taken away is a denied call; a grant added is unexercised."""
    d = deployment
    run_export(d.gateway, d.store, d.source)
    d.invoke("IncrementalExportFunction", "incremental after a full", scheduled("incremental_export"))
    role = "IncrementalExportFunctionRole"

    taken = _without(TEMPLATE, role, "s3:GetObjectVersion")
    report = check_role(
        "IncrementalExportFunction",
        "without GetObjectVersion",
        Resolver(taken, d.stack()),
        d.calls["IncrementalExportFunction"],
        d.facts("IncrementalExportFunction"),
        BUCKET,
    )
    assert any("GetObject: s3:GetObjectVersion on arn:aws:s3:::" in x for x in report.denied), report.denied

    added = copy.deepcopy(TEMPLATE)
    statements = added["Resources"][role]["Properties"]["Policies"][1]["PolicyDocument"]["Statement"]
    statements[0]["Action"].append("cognito-idp:AdminDeleteUser")
    reports = [
        check_role(
            "IncrementalExportFunction",
            "with AdminDeleteUser",
            Resolver(added, d.stack()),
            d.calls["IncrementalExportFunction"],
            d.facts("IncrementalExportFunction"),
            BUCKET,
        )
    ]
    found = problems(reports, added)
    assert found == [
        "IncrementalExportFunction (IncrementalExportFunctionRole): grant never exercised and not explained "
        "in Metadata.UnexercisedGrants: ReadSourcePool: cognito-idp:AdminDeleteUser on "
        f"arn:aws:cognito-idp:us-east-1:{ACCOUNT}:userpool/{d.source} (IncrementalExportFunctionRole/export)"
    ]


# ---------------------------------------------------------------------- migration trigger
def test_migrate_user_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    d = deployment
    SourcePool.forget_cache()  # what a cold container reads: the client, the pool's settings
    idp = d.aws.cognito()
    # An old pool whose users sign in with their e-mail: AdminGetUser finds them by it, and the
    # trigger reads the pool's sign-in settings (DescribeUserPool) to answer right.
    old = create_pool(idp, "old-pool", username_attributes=["email"])
    client = idp.create_user_pool_client(
        UserPoolId=old, ClientName="migration", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    email, password = "jane@example.com", "Old-passw0rd!"
    idp.admin_create_user(
        UserPoolId=old,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=old, Username=email, Password=password, Permanent=True)
    d.parameters.update(MigrationSourceUserPoolId=old, MigrationSourceClientId=client)

    sign_in = load_event("migrate_user_authentication")
    sign_in["userName"], sign_in["request"]["password"] = email, password
    migrated = d.invoke("MigrateUserFunction", "sign-in", sign_in)
    assert migrated["response"]["finalUserStatus"] == "CONFIRMED"
    assert "sub" not in migrated["response"]["userAttributes"]
    wrong = {**sign_in, "request": {**sign_in["request"], "password": "Wrong-passw0rd!"}}
    d.invoke("MigrateUserFunction", "wrong password", wrong, raises=SignInRefusedError)
    reset = {**load_event("migrate_user_forgot_password"), "userName": email}
    from_pool = d.invoke("MigrateUserFunction", "reset from the pool", reset)
    assert from_pool["response"]["messageAction"] == "SUPPRESS"

    # The old pool gone: a reset answers from its newest validated snapshot.
    snapshot = run_export(d.gateway, d.store, old).manifest_key
    assert snapshot and validate_snapshot(d.store, snapshot, record=True).valid
    idp.delete_user_pool(UserPoolId=old)
    from_snapshot = d.invoke("MigrateUserFunction", "reset from the snapshot", reset)
    assert from_snapshot["response"]["userAttributes"]["email"] == email
    unknown = {**reset, "userName": "nobody@example.com"}
    d.invoke("MigrateUserFunction", "unknown in the snapshot", unknown, raises=UserNotFoundError)

    assert_least_privilege(d, "MigrateUserFunction")


# ---------------------------------------------------------------------- restore drill
def corrupt_manifest(d: Deployment, manifest_key: str) -> None:
    """Setup (not recorded): the manifest rewritten with a wrong digest for its users part."""
    manifest = json.loads(d.store.get_bytes(manifest_key))
    next(p for p in manifest["parts"] if p["kind"] == "users")["sha256"] = "0" * 64
    d.store.put_bytes(manifest_key, json.dumps(manifest).encode())


def pool_ids(d: Deployment) -> set[str]:
    return {p["Id"] for p in d.aws.cognito().list_user_pools(MaxResults=60)["UserPools"]}


def test_drill_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    from cognito_backup.errors import DrillFailedError

    d = deployment
    # MFA on: the scratch pool gets it too (SetUserPoolMfaConfig).
    d.aws.cognito().set_user_pool_mfa_config(
        UserPoolId=d.source, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
    )
    run_export(d.gateway, d.store, d.source)
    change_the_pool(d, 1)
    # The incremental export validates its base: the full has a verdict, the incremental none.
    incremental = run_export(d.gateway, d.store, d.source, incremental=True).manifest_key
    full = run_export(d.gateway, d.store, d.source).manifest_key  # a second full, never validated
    assert full and incremental
    before = pool_ids(d)

    # Snapshots never validated, named: the restore's preflight records their verdicts.
    started = d.invoke("DrillFunction", "drill start (incremental)", {"manifest_key": incremental})
    assert started["status"] == "incomplete" and started["scratch_user_pool_id"]
    done = d.invoke("DrillFunction", "drill step", started)
    assert done["status"] == "complete" and done["equal"] and done["scratch_pool_deleted"], done
    started = d.invoke("DrillFunction", "drill start (full)", {"manifest_key": full})
    cut = d.invoke("DrillFunction", "drill step cut at once", started, remaining_ms=0)
    assert cut["status"] == "incomplete"
    done = d.invoke("DrillFunction", "drill step resumed", cut)
    assert done["status"] == "complete" and done["equal"], done

    # The schedule's drill (the newest snapshot that passed), aborted as after a crashed step.
    started = d.invoke("DrillFunction", "drill start (scheduled)", scheduled("drill"))
    aborted = d.invoke("DrillFunction", "drill abort", {"abort": True, "event": started})
    assert aborted["status"] == "failed" and aborted["scratch_pool_deleted"]

    # Lost answers: AdminCreateUser acts, then answers 500; the retry's UsernameExists makes the
    # restore read the user back (AdminGetUser).
    lost = Faults(rate=0.5, after_effect=1.0, seed=3, operations=frozenset({"AdminCreateUser"}))
    started = d.invoke("DrillFunction", "drill start (lost answers)", {"manifest_key": full})
    with strict_cognito(enforce_quotas=False, faults=lost) as engine:
        done = d.invoke("DrillFunction", "drill step (lost answers)", started)
    assert done["status"] == "complete" and engine.stats()["faults"]["total"]["after"] > 0, done

    checked = d.invoke("DrillFunction", "daily check", {"check": True})
    assert checked["full_age_seconds"] is not None and checked["drill_overdue"] is False

    # A corrupted snapshot fails the drill before any pool exists.
    corrupt_manifest(d, full)
    d.invoke(
        "DrillFunction", "drill of a corrupted snapshot", {"manifest_key": full}, raises=DrillFailedError
    )

    assert pool_ids(d) == before
    assert_least_privilege(d, "DrillFunction")


def test_the_drill_role_cannot_touch_a_pool_without_the_drill_tag(deployment: Deployment) -> None:
    """The same calls on the source pool (no drill tag) are denied: the tag is the boundary."""
    d = deployment
    calls = [
        RecordedCall("cognito-idp", op, {"UserPoolId": d.source}, REGION)
        for op in ("DeleteUserPool", "AdminCreateUser", "DescribeUserPool")
    ]
    calls.append(RecordedCall("cognito-idp", "CreateUserPool", {"PoolName": "x", "UserPoolTags": {}}, REGION))
    report = check_role(
        "DrillFunction",
        "default",
        Resolver(TEMPLATE, d.stack()),
        [("untagged", c) for c in calls],
        d.facts("DrillFunction"),
        BUCKET,
    )
    assert len(report.denied) == len(calls), report.denied


# ---------------------------------------------------------------------- erasure
def test_forget_role_allows_exactly_what_the_handler_calls(deployment: Deployment) -> None:
    from cognito_backup.errors import ForgetRefusedError
    from cognito_backup.store import checkpoint_key

    d = deployment
    full = run_export(d.gateway, d.store, d.source).manifest_key
    assert full and validate_snapshot(d.store, full).valid
    change_the_pool(d, 1)
    incremental = run_export(d.gateway, d.store, d.source, incremental=True).manifest_key
    assert incremental
    idp = d.aws.cognito()
    person = next(
        u["Username"] for u in idp.list_users(UserPoolId=d.source)["Users"] if u["Username"] != "linked"
    )
    # A record beside the snapshots that names the person (as a restore report may): cleared.
    d.store.put_json(f"backups/{d.source}/drills/20261201T000000Z-abcdef.json", {"note": person})

    done = d.invoke(
        "ForgetFunction", "forget, deleting from the pool", {"usernames": [person], "delete_from_pool": True}
    )
    assert (
        done["status"] == "complete" and done["snapshots_rewritten"] == 2 and done["deleted_from_pool"] == 1
    )
    assert done["objects_cleared"] == 1 and done["versions_deleted"] > 0
    again = d.invoke("ForgetFunction", "forget again (nothing left)", {"usernames": [person]})
    assert again["status"] == "complete" and again["snapshots_rewritten"] == 0

    d.store.put_json(checkpoint_key("backups", d.source, "export-full"), {"snapshot_id": "x"})
    d.invoke("ForgetFunction", "forget during an export", {"subs": ["x"]}, raises=ForgetRefusedError)
    assert_least_privilege(d, "ForgetFunction")
