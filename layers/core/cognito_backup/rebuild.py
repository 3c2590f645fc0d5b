"""Rebuild anywhere: create a user pool, and what users sign in through, from a snapshot.

`blueprint()` turns a snapshot's pool configuration into the calls that recreate it in a target
Region and account (pure: the dry run prints it); `build()` makes them, converging: run again
after a failure, it finds the pool it created (by name and by the tag naming the snapshot) and
creates only what is missing. Users, groups and memberships are then the restore's job.

What cannot be carried over is listed, never dropped silently (`Reference`): Lambda triggers
(the function must first allow the new pool to invoke it), SES identities and SMS roles of
another Region or account, Pinpoint analytics, custom domains (a certificate and DNS), a prefix
domain already taken, identity providers whose secret was (rightly) never backed up, the hosted
UI's logo (Cognito answers its URL, never its bytes), log destinations that the target cannot be
known to reach (another Region or account), the SES identity threat protection notifies from.

After the clients and the domain: the UI customisation (CSS; it needs a domain), each client's
managed login branding (for its new client id), log delivery and the risk configuration (only
on a pool with threat protection: the Plus plan with its add-on on).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chain import open_view
from .cognito import ALL_CLIENTS, CognitoGateway, threat_protection_on
from .config_fields import ASSETS_OMITTED, PROVIDER_DETAILS_OMITTED
from .errors import BackupError, CognitoError, RestoreRefusedError, UsageError
from .models import PoolConfigRecord
from .restore.preflight import check_verdicts
from .restore_models import RestoreOptions
from .store import SnapshotStore

SOURCE_TAG = "cognito-backup:rebuilt-from"  # the snapshot id a rebuilt pool was made from
TRIGGER_NOT_SET = (
    "not set: the function must allow the new pool to invoke it first; then set it with "
    "update-user-pool --lambda-config (docs/runbook.md)"
)

# Settings CreateUserPool takes as DescribeUserPool gives them (after the allowlist).
_POOL_SETTINGS = (
    "Policies",
    "DeletionProtection",
    "AutoVerifiedAttributes",
    "AliasAttributes",
    "UsernameAttributes",
    "VerificationMessageTemplate",
    "SmsAuthenticationMessage",
    "UserAttributeUpdateSettings",
    "DeviceConfiguration",
    "AdminCreateUserConfig",
    "UserPoolAddOns",
    "UsernameConfiguration",
    "AccountRecoverySetting",
    "UserPoolTier",
)
# The deprecated spellings of VerificationMessageTemplate: sent only when it is absent.
_LEGACY_MESSAGES = ("SmsVerificationMessage", "EmailVerificationMessage", "EmailVerificationSubject")

_CLIENT_SETTINGS = (
    "ClientName",
    "GenerateSecret",
    "RefreshTokenValidity",
    "AccessTokenValidity",
    "IdTokenValidity",
    "TokenValidityUnits",
    "ReadAttributes",
    "WriteAttributes",
    "ExplicitAuthFlows",
    "SupportedIdentityProviders",
    "CallbackURLs",
    "LogoutURLs",
    "DefaultRedirectURI",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "AllowedOAuthFlowsUserPoolClient",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "EnablePropagateAdditionalUserContextData",
    "AuthSessionValidity",
    "RefreshTokenRotation",
)

_RISK_SETTINGS = (
    "CompromisedCredentialsRiskConfiguration",
    "AccountTakeoverRiskConfiguration",
    "RiskExceptionConfiguration",
)

_MFA_SETTINGS = (
    "SmsMfaConfiguration",
    "SoftwareTokenMfaConfiguration",
    "EmailMfaConfiguration",
    "WebAuthnConfiguration",
)

# The standard attributes Cognito makes itself; a Schema naming them is refused.
_IMPLICIT_ATTRIBUTES = frozenset({"sub", "identities"})


@dataclass(frozen=True)
class Reference:
    """Something of the source the target does not get, and what to do about it."""

    # lambda_trigger | email | sms | analytics | domain | identity_provider | client_provider |
    # ui_customization | ui_image | managed_login_branding | log_delivery | risk_configuration | risk_notify
    kind: str
    name: str  # the setting or resource, never a user
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass
class Blueprint:
    """The calls that recreate a pool, decided before any is made."""

    pool_name: str
    snapshot_id: str
    region: str
    create_pool: dict[str, Any]
    mfa: dict[str, Any] | None
    resource_servers: list[dict[str, Any]]
    identity_providers: list[dict[str, Any]]
    clients: list[tuple[str, dict[str, Any]]]  # (old client id, CreateUserPoolClient arguments)
    domain: dict[str, Any] | None
    references: list[Reference] = field(default_factory=list)
    # (old client id, or "ALL" for the pool-wide one; the call's arguments but the ids)
    ui_customizations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    managed_login_brandings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    log_delivery: list[dict[str, Any]] | None = None  # SetLogDeliveryConfiguration's LogConfigurations
    risk_configurations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    client_names: dict[str, str] = field(default_factory=dict)  # old client id -> its name

    def name_of(self, client_id: str) -> str:
        return "the pool" if client_id == ALL_CLIENTS else self.client_names.get(client_id, client_id)

    def summary(self) -> dict[str, Any]:
        """What the dry run shows: names and settings, never a secret (none is held)."""
        return {
            "pool_name": self.pool_name,
            "region": self.region,
            "snapshot_id": self.snapshot_id,
            "create_user_pool": self.create_pool,
            "mfa": self.mfa,
            "resource_servers": [s["Identifier"] for s in self.resource_servers],
            "identity_providers": [p["ProviderName"] for p in self.identity_providers],
            "app_clients": [c["ClientName"] for _, c in self.clients],
            "domain": (self.domain or {}).get("Domain"),
            "ui_customizations": [self.name_of(c) for c, _ in self.ui_customizations],
            "managed_login_brandings": [self.name_of(c) for c, _ in self.managed_login_brandings],
            "log_delivery": [c["EventSource"] for c in self.log_delivery or []],
            "risk_configurations": [self.name_of(c) for c, _ in self.risk_configurations],
            "not_carried_over": [r.as_dict() for r in self.references],
        }


@dataclass
class BuildResult:
    user_pool_id: str
    created_pool: bool
    client_ids: dict[str, str]  # old client id -> new client id
    created: dict[str, int]
    references: list[Reference]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_user_pool_id": self.user_pool_id,
            "created_pool": self.created_pool,
            "client_ids": self.client_ids,
            "created": self.created,
            "not_carried_over": [r.as_dict() for r in self.references],
        }


def _assets(args: Mapping[str, Any]) -> dict[str, Any]:
    """CreateManagedLoginBranding's arguments with each asset's bytes back from base64."""
    out = dict(args)
    if args.get("Assets"):
        out["Assets"] = [
            {**a, "Bytes": base64.b64decode(a["Bytes"])} if a.get("Bytes") else dict(a)
            for a in args["Assets"]
        ]
    return out


def _arn_place(arn: str) -> tuple[str, str]:
    """(region, account) of an ARN; empty strings where it has none (IAM is global)."""
    parts = arn.split(":")
    return (parts[3], parts[4]) if len(parts) > 5 else ("", "")


def _non_default(attribute: Mapping[str, Any]) -> bool:
    """A standard attribute Cognito would not make so by itself: required, or immutable."""
    return bool(attribute.get("Required")) or attribute.get("Mutable") is False


def _schema(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CreateUserPool's Schema from DescribeUserPool's SchemaAttributes: every custom and
    developer-only attribute with its type, mutability and constraints, and the standard ones
    whose settings differ from Cognito's defaults (required, or immutable)."""
    out: list[dict[str, Any]] = []
    for attribute in attributes:
        name = str(attribute.get("Name", ""))
        item = {k: v for k, v in attribute.items() if k != "Name"}
        if name.startswith("dev:custom:"):
            item.update(Name=name.removeprefix("dev:custom:"), DeveloperOnlyAttribute=True)
        elif name.startswith("custom:"):
            item["Name"] = name.removeprefix("custom:")
        elif name in _IMPLICIT_ATTRIBUTES or not _non_default(attribute):
            continue
        else:
            item["Name"] = name
        out.append(item)
    return out


def _pool_arguments(
    pool: Mapping[str, Any], name: str, snapshot_id: str, region: str, account: str
) -> tuple[dict[str, Any], list[Reference]]:
    references: list[Reference] = []
    args: dict[str, Any] = {"PoolName": name}
    args.update({k: pool[k] for k in _POOL_SETTINGS if pool.get(k) is not None})
    if "VerificationMessageTemplate" not in args:
        args.update({k: pool[k] for k in _LEGACY_MESSAGES if pool.get(k)})
    args["Schema"] = _schema(list(pool.get("SchemaAttributes") or []))
    args["UserPoolTags"] = {**(pool.get("UserPoolTags") or {}), SOURCE_TAG: snapshot_id}
    # MFA is switched on after the pool exists (SetUserPoolMfaConfig), with its factors.
    args["MfaConfiguration"] = "OFF"
    for trigger in sorted(pool.get("LambdaConfig") or {}):
        references.append(Reference("lambda_trigger", trigger, TRIGGER_NOT_SET))
    email = dict(pool.get("EmailConfiguration") or {})
    source_arn = str(email.get("SourceArn") or "")
    if source_arn and _arn_place(source_arn) != (region, account):
        reason = "an SES identity of another Region or account: Cognito's default e-mail until one is here"
        references.append(Reference("email", "EmailConfiguration.SourceArn", reason))
        email = {k: v for k, v in email.items() if k == "ReplyToEmailAddress"}
        email["EmailSendingAccount"] = "COGNITO_DEFAULT"
    if email:
        args["EmailConfiguration"] = email
    sms = _sms(pool.get("SmsConfiguration"), account, references, "SmsConfiguration")
    if sms:
        args["SmsConfiguration"] = sms
    return args, references


def _sms(config: Any, account: str, references: list[Reference], name: str) -> dict[str, Any] | None:
    if not config:
        return None
    role = str(config.get("SnsCallerArn") or "")
    if role and _arn_place(role)[1] != account:
        references.append(
            Reference("sms", name, "an SMS role of another account: create one here and set it")
        )
        return None
    return dict(config)


def _mfa_arguments(
    mfa: Mapping[str, Any], account: str, references: list[Reference]
) -> dict[str, Any] | None:
    if not mfa or (mfa.get("MfaConfiguration", "OFF") == "OFF" and not mfa.get("WebAuthnConfiguration")):
        return None
    args = {k: dict(mfa[k]) for k in _MFA_SETTINGS if mfa.get(k)}
    sms = args.get("SmsMfaConfiguration")
    if sms and sms.get("SmsConfiguration"):
        kept = _sms(sms["SmsConfiguration"], account, references, "SmsMfaConfiguration.SmsConfiguration")
        if kept is None:
            del sms["SmsConfiguration"]
        else:
            sms["SmsConfiguration"] = kept
    args["MfaConfiguration"] = mfa.get("MfaConfiguration", "OFF")
    return args


def _providers(
    providers: list[dict[str, Any]], secrets: Mapping[str, Mapping[str, str]], references: list[Reference]
) -> tuple[list[dict[str, Any]], set[str]]:
    """CreateIdentityProvider arguments; a provider whose secret is neither backed up (never)
    nor supplied is left out and named, with the names of the secret details it needs."""
    out: list[dict[str, Any]] = []
    missing: set[str] = set()
    for provider in providers:
        name = str(provider["ProviderName"])
        details = dict(provider.get("ProviderDetails") or {})
        needed = list(provider.get(PROVIDER_DETAILS_OMITTED) or [])
        supplied = secrets.get(name, {})
        lacking = [k for k in needed if k not in supplied]
        if lacking:
            missing.add(name)
            reason = f"needs its secret details ({', '.join(lacking)}): supply them with --idp-secrets FILE"
            references.append(Reference("identity_provider", name, reason))
            continue
        details.update({k: supplied[k] for k in needed})
        args = {"ProviderName": name, "ProviderType": provider["ProviderType"], "ProviderDetails": details}
        args.update({k: provider[k] for k in ("AttributeMapping", "IdpIdentifiers") if provider.get(k)})
        out.append(args)
    return out, missing


def _clients(
    clients: list[dict[str, Any]], missing_providers: set[str], references: list[Reference]
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for client in clients:
        args = {k: client[k] for k in _CLIENT_SETTINGS if client.get(k) is not None}
        supported = [p for p in args.get("SupportedIdentityProviders", []) if p not in missing_providers]
        for dropped in sorted(set(args.get("SupportedIdentityProviders", [])) - set(supported)):
            reason = "the client signs in through a provider not recreated: add it once the provider is"
            references.append(Reference("client_provider", f"{client['ClientName']}/{dropped}", reason))
        if "SupportedIdentityProviders" in args:
            args["SupportedIdentityProviders"] = supported
        if client.get("AnalyticsConfiguration"):
            reason = "Pinpoint analytics not set: an application of the source Region"
            references.append(Reference("analytics", str(client["ClientName"]), reason))
        out.append((str(client["ClientId"]), args))
    return out


def _domain(domain: Mapping[str, Any] | None, references: list[Reference]) -> dict[str, Any] | None:
    if not domain or not domain.get("Domain"):
        return None
    if domain.get("CustomDomainConfig"):
        reason = "a custom domain needs its certificate (ACM, us-east-1) and DNS: create-user-pool-domain"
        references.append(Reference("domain", str(domain["Domain"]), reason))
        return None
    args: dict[str, Any] = {"Domain": domain["Domain"]}
    if domain.get("ManagedLoginVersion"):
        args["ManagedLoginVersion"] = domain["ManagedLoginVersion"]
    return args


def blueprint(
    config: PoolConfigRecord,
    *,
    pool_name: str,
    snapshot_id: str,
    region: str,
    account: str,
    idp_secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> Blueprint:
    """The calls that recreate the snapshot's pool in `region` of `account` (no call made)."""
    if not pool_name or len(pool_name) > 128:
        raise UsageError("a pool name is 1 to 128 characters")
    create, references = _pool_arguments(config.user_pool, pool_name, snapshot_id, region, account)
    mfa = _mfa_arguments(config.mfa_config, account, references)
    providers, missing = _providers(list(config.identity_providers), idp_secrets or {}, references)
    plan = Blueprint(
        pool_name=pool_name,
        snapshot_id=snapshot_id,
        region=region,
        create_pool=create,
        mfa=mfa,
        resource_servers=[
            {k: s[k] for k in ("Identifier", "Name", "Scopes") if s.get(k) is not None}
            for s in config.resource_servers
        ],
        identity_providers=providers,
        clients=_clients(list(config.app_clients), missing, references),
        domain=_domain(config.domain, references),
        references=references,
        client_names={str(c["ClientId"]): str(c["ClientName"]) for c in config.app_clients},
    )
    _looks(plan, config)
    source = _arn_place(str(config.user_pool.get("Arn") or ""))
    plan.log_delivery = _log_delivery(config.log_delivery, source, (region, account), references)
    if threat_protection_on(create):
        plan.risk_configurations = [
            (str(r.get("ClientId") or ALL_CLIENTS), _risk(r, plan, (region, account)))
            for r in config.risk_configurations
        ]
    elif config.risk_configurations:
        reason = "threat protection is off in the new pool (not the Plus plan with its add-on on)"
        references.append(Reference("risk_configuration", "the pool", reason))
    return plan


def _looks(plan: Blueprint, config: PoolConfigRecord) -> None:
    """The UI customisations and brandings: CSS is carried, a logo only as a reference (no
    answer holds its bytes); a branding's assets are carried, as the snapshot holds their bytes."""
    for ui in config.ui_customizations:
        client = str(ui.get("ClientId") or ALL_CLIENTS)
        if ui.get("ImageUrl"):
            reason = (
                "the logo is not carried (Cognito answers only the URL it serves it from, ImageUrl): "
                "download it and set it with set-ui-customization --image-file"
            )
            plan.references.append(Reference("ui_image", plan.name_of(client), reason))
        if ui.get("CSS"):
            plan.ui_customizations.append((client, {"CSS": ui["CSS"]}))
    for client, branding in sorted(config.managed_login_brandings.items()):
        for asset in branding.get(ASSETS_OMITTED) or []:
            name = f"{plan.name_of(client)}/{asset.get('Category')}-{asset.get('ColorMode')}"
            reason = (
                "the image was beyond what a snapshot keeps of branding assets: set it with "
                "update-managed-login-branding"
            )
            plan.references.append(Reference("managed_login_branding", name, reason))
        args: dict[str, Any] = {"UseCognitoProvidedValues": bool(branding.get("UseCognitoProvidedValues"))}
        if not args["UseCognitoProvidedValues"]:
            if branding.get("Settings") is not None:
                args["Settings"] = branding["Settings"]
            if branding.get("Assets"):
                args["Assets"] = [dict(a) for a in branding["Assets"]]
        plan.managed_login_brandings.append((client, args))


_LOG_DESTINATIONS = {
    "CloudWatchLogsConfiguration": ("LogGroupArn", "a CloudWatch Logs group"),
    "S3Configuration": ("BucketArn", "an S3 bucket"),
    "FirehoseConfiguration": ("StreamArn", "a Firehose stream"),
}


def _log_delivery(
    logs: Mapping[str, Any] | None,
    source: tuple[str, str],
    target: tuple[str, str],
    references: list[Reference],
) -> list[dict[str, Any]] | None:
    """The log configurations the target can honour: all of them in the source's own Region and
    account; elsewhere only those whose destination ARN names the target's Region and account
    (an S3 bucket's ARN names neither, so it is listed). The others are listed, never dropped."""
    out: list[dict[str, Any]] = []
    for config in (logs or {}).get("LogConfigurations") or []:
        kind = next((k for k in _LOG_DESTINATIONS if config.get(k)), None)
        if kind is None:
            continue
        key, what = _LOG_DESTINATIONS[kind]
        arn = str(config[kind].get(key) or "")
        if source != target and _arn_place(arn) != target:
            reason = (
                f"{what} of the source Region or account ({arn}): create one here and "
                "set-log-delivery-configuration"
            )
            references.append(Reference("log_delivery", str(config.get("EventSource")), reason))
            continue
        out.append(dict(config))
    return out or None


def _risk(risk: Mapping[str, Any], plan: Blueprint, target: tuple[str, str]) -> dict[str, Any]:
    """SetRiskConfiguration's settings; an SES identity the target cannot use is listed, and the
    notifications that needed it are switched off (Cognito refuses Notify without one)."""
    client = str(risk.get("ClientId") or ALL_CLIENTS)
    args = {k: risk[k] for k in _RISK_SETTINGS if risk.get(k)}
    takeover = dict(args.get("AccountTakeoverRiskConfiguration") or {})
    source_arn = str((takeover.get("NotifyConfiguration") or {}).get("SourceArn") or "")
    if source_arn and _arn_place(source_arn) != target:
        reason = (
            "an SES identity of another Region or account notifies users of risky sign-ins: "
            "notifications are off until one is set here"
        )
        plan.references.append(Reference("risk_notify", plan.name_of(client), reason))
        del takeover["NotifyConfiguration"]
        actions = takeover.get("Actions") or {}
        takeover["Actions"] = {k: {**v, "Notify": False} for k, v in actions.items()}
        args["AccountTakeoverRiskConfiguration"] = takeover
    return args


def plan_from_snapshot(
    store: SnapshotStore,
    manifest_key: str,
    *,
    pool_name: str,
    region: str,
    account: str,
    idp_secrets: Mapping[str, Mapping[str, str]] | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> Blueprint:
    """The blueprint of the snapshot's pool, for the CLI's --create-target-pool and the restore
    Lambda's create_target_pool_name alike. Nothing is created from a snapshot that does not
    validate: the restore's own verdict check, so the restore that follows trusts its verdict."""
    view = open_view(store, manifest_key)
    check_verdicts(store, view.chain, RestoreOptions(force=force, dry_run=dry_run))
    config = view.config()
    if config is None:
        raise RestoreRefusedError("refused: the snapshot holds no pool configuration to create a pool from")
    return blueprint(
        config,
        pool_name=pool_name,
        snapshot_id=view.target.manifest.snapshot_id,
        region=region,
        account=account,
        idp_secrets=idp_secrets,
    )


def load_idp_secrets(path: str) -> dict[str, dict[str, str]]:
    """`--idp-secrets FILE`: {"<provider name>": {"client_secret": "..."}}; never logged."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the identity provider secrets file: {type(exc).__name__}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and all(isinstance(s, str) for s in v.values()) for v in data.values()
    ):
        raise UsageError('the identity provider secrets file must be {"<provider>": {"<detail>": "<value>"}}')
    return {str(k): {str(d): s for d, s in v.items()} for k, v in data.items()}


class Builder:
    """Makes a blueprint real in the target Region, converging on what is already there."""

    def __init__(self, gateway: CognitoGateway) -> None:
        self.gw = gateway

    def _listed(self, operation: str, list_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page_args = dict(kwargs, MaxResults=60 if operation != "list_resource_servers" else 50)
            if token:
                page_args["NextToken"] = token
            resp = self.gw.call(operation, **page_args)
            yield from resp.get(list_key, [])
            token = resp.get("NextToken")
            if not token:
                return

    def find_pool(self, plan: Blueprint) -> str | None:
        """The pool a previous run made from this snapshot, or None. A pool of that name not
        made from it is refused: it is not ours to change."""
        for pool in self._listed("list_user_pools", "UserPools"):
            if pool.get("Name") != plan.pool_name:
                continue
            described = self.gw.describe_pool(pool["Id"])
            if (described.get("UserPoolTags") or {}).get(SOURCE_TAG) == plan.snapshot_id:
                return str(pool["Id"])
            raise UsageError(
                f"a user pool named {plan.pool_name!r} already exists ({pool['Id']}) and was not rebuilt "
                "from this snapshot: choose another name, or restore into it with --target-user-pool-id"
            )
        return None

    def build(self, plan: Blueprint) -> BuildResult:
        references = list(plan.references)
        created = {"resource_servers": 0, "identity_providers": 0, "app_clients": 0, "domain": 0}
        pool_id = self.find_pool(plan)
        created_pool = pool_id is None
        if pool_id is None:
            pool_id = str(self.gw.call("create_user_pool", **plan.create_pool)["UserPool"]["Id"])
        if plan.mfa:
            self.gw.call("set_user_pool_mfa_config", UserPoolId=pool_id, **plan.mfa)
        servers = self._listed("list_resource_servers", "ResourceServers", UserPoolId=pool_id)
        existing = {s["Identifier"] for s in servers}
        for server in plan.resource_servers:
            if server["Identifier"] not in existing:
                self.gw.call("create_resource_server", UserPoolId=pool_id, **server)
                created["resource_servers"] += 1
        providers = self._listed("list_identity_providers", "Providers", UserPoolId=pool_id)
        existing = {p["ProviderName"] for p in providers}
        for provider in plan.identity_providers:
            if provider["ProviderName"] not in existing:
                self.gw.call("create_identity_provider", UserPoolId=pool_id, **provider)
                created["identity_providers"] += 1
        clients = self._listed("list_user_pool_clients", "UserPoolClients", UserPoolId=pool_id)
        by_name = {c["ClientName"]: c["ClientId"] for c in clients}
        client_ids: dict[str, str] = {}
        for old_id, args in plan.clients:
            if args["ClientName"] not in by_name:
                answer = self.gw.call("create_user_pool_client", UserPoolId=pool_id, **args)
                by_name[args["ClientName"]] = answer["UserPoolClient"]["ClientId"]
                created["app_clients"] += 1
            client_ids[old_id] = str(by_name[args["ClientName"]])
        if plan.domain:
            created["domain"] = self._domain(pool_id, plan.domain, references)
        created.update(self._settings(plan, pool_id, client_ids, references))
        return BuildResult(pool_id, created_pool, client_ids, created, references)

    def _settings(
        self, plan: Blueprint, pool_id: str, client_ids: Mapping[str, str], references: list[Reference]
    ) -> dict[str, int]:
        """The looks, log delivery and threat protection, once the clients and domain exist.
        Each is a set (or a create that finds its own), so a run again converges; one Cognito
        refuses is listed with its reason, and the rest go on."""
        done = {
            "ui_customizations": 0,
            "managed_login_brandings": 0,
            "log_delivery": 0,
            "risk_configurations": 0,
        }

        def ids(client: str) -> dict[str, str] | None:
            if client == ALL_CLIENTS:
                return {"UserPoolId": pool_id}
            new = client_ids.get(client)
            return {"UserPoolId": pool_id, "ClientId": new} if new else None

        steps: list[tuple[str, str, str, str, dict[str, Any]]] = [
            ("ui_customizations", "ui_customization", "set_ui_customization", c, a)
            for c, a in plan.ui_customizations
        ]
        steps += [
            (
                "managed_login_brandings",
                "managed_login_branding",
                "create_managed_login_branding",
                c,
                _assets(a),
            )
            for c, a in plan.managed_login_brandings
        ]
        if plan.log_delivery:
            steps.append(
                (
                    "log_delivery",
                    "log_delivery",
                    "set_log_delivery_configuration",
                    ALL_CLIENTS,
                    {"LogConfigurations": plan.log_delivery},
                )
            )
        steps += [
            ("risk_configurations", "risk_configuration", "set_risk_configuration", c, a)
            for c, a in plan.risk_configurations
        ]
        for counter, kind, operation, client, args in steps:
            where = ids(client)
            name = plan.name_of(client)
            if where is None:
                references.append(Reference(kind, name, "its app client was not recreated"))
                continue
            try:
                self.gw.call(operation, **{**where, **args})
            except CognitoError as exc:
                if exc.code != "ManagedLoginBrandingExistsException":  # made by an earlier run
                    references.append(Reference(kind, name, f"not set: {exc}"))
                continue
            except BackupError as exc:
                references.append(Reference(kind, name, f"not set: {exc}"))
                continue
            done[counter] += 1
        return done

    def _domain(self, pool_id: str, domain: dict[str, Any], references: list[Reference]) -> int:
        answer = self.gw.call("describe_user_pool_domain", Domain=domain["Domain"])
        described = answer.get("DomainDescription") or {}
        owner = described.get("UserPoolId")
        if owner == pool_id:
            return 0
        if owner:
            reason = "the prefix is taken (by the source pool, if it still exists): choose another"
            references.append(Reference("domain", str(domain["Domain"]), reason))
            return 0
        try:
            self.gw.call("create_user_pool_domain", UserPoolId=pool_id, **domain)
        except BackupError as exc:
            references.append(Reference("domain", str(domain["Domain"]), f"not created: {exc}"))
            return 0
        return 1
