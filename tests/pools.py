"""Pools with a rich configuration, and how to compare two of them: the rebuild's tests
(integration, on moto in-process; e2e, the CLI against the local AWS server) share them."""

from __future__ import annotations

import json
from typing import Any

from cognito_backup.rebuild import SOURCE_TAG

ACCOUNT = "123456789012"


def rich_pool(cognito: Any, *, email_usernames: bool) -> str:
    """Custom attributes with constraints, non-default policies, MFA, two clients (one
    confidential), a resource server with scopes, a domain, groups and users."""
    kind: dict[str, Any] = (
        {"UsernameAttributes": ["email"]}
        if email_usernames
        else {"AliasAttributes": ["preferred_username"], "UsernameConfiguration": {"CaseSensitive": False}}
    )
    pool_id: str = cognito.create_user_pool(
        PoolName="rich",
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 14,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": False,
                "RequireSymbols": True,
                "TemporaryPasswordValidityDays": 3,
            }
        },
        Schema=[
            {
                "Name": "tenant",
                "AttributeDataType": "String",
                "Mutable": False,
                "StringAttributeConstraints": {"MinLength": "2", "MaxLength": "16"},
            },
            {
                "Name": "level",
                "AttributeDataType": "Number",
                "Mutable": True,
                "NumberAttributeConstraints": {"MinValue": "0", "MaxValue": "9"},
            },
        ],
        AutoVerifiedAttributes=["email"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
        DeletionProtection="INACTIVE",
        UserPoolTags={"team": "identity"},
        LambdaConfig={"PreSignUp": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pre-signup"},
        # Threat protection (risk configuration) needs the Plus feature plan, with its add-on on.
        UserPoolTier="PLUS",
        UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"},
        **kind,
    )["UserPool"]["Id"]
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
    )
    cognito.create_resource_server(
        UserPoolId=pool_id,
        Identifier="https://api.example.com",
        Name="api",
        Scopes=[
            {"ScopeName": "read", "ScopeDescription": "Read"},
            {"ScopeName": "write", "ScopeDescription": "W"},
        ],
    )
    cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        RefreshTokenValidity=7,
        CallbackURLs=["https://app.example.com/cb"],
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "https://api.example.com/read"],
        AllowedOAuthFlowsUserPoolClient=True,
        SupportedIdentityProviders=["COGNITO"],
    )
    cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="backend",
        GenerateSecret=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["https://api.example.com/write"],
        AllowedOAuthFlowsUserPoolClient=True,
    )
    cognito.create_user_pool_domain(UserPoolId=pool_id, Domain=f"rich-{pool_id.split('_')[1].lower()}")
    style(cognito, pool_id)
    for g in ("admins", "staff"):
        cognito.create_group(UserPoolId=pool_id, GroupName=g, Description=g, Precedence=1)
    for i in range(5):
        username = f"user{i}@example.com" if email_usernames else f"user{i}"
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            UserAttributes=[
                {"Name": "email", "Value": f"user{i}@example.com"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:tenant", "Value": f"t{i}x"},
            ],
            MessageAction="SUPPRESS",
        )
        if i % 2:
            cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="admins")
        if i == 4:
            cognito.admin_disable_user(UserPoolId=pool_id, Username=username)
    return pool_id


LOGO = b"\x89PNG\r\n\x1a\n-rich-logo"
BRANDING_SETTINGS = {"categories": {"global": {"colorSchemeMode": "LIGHT"}}}
# The account's own resources in the source Region: log destinations, the SES identity.
LOG_GROUP = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/cognito/rich"
FIREHOSE = f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/rich-auth-events"
SES_IDENTITY = f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com"
TAKEOVER = {
    "NotifyConfiguration": {
        "From": "security@example.com",
        "SourceArn": SES_IDENTITY,
        "BlockEmail": {"Subject": "Sign-in blocked", "TextBody": "We blocked a sign-in to your account."},
    },
    "Actions": {
        "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
        "MediumAction": {"Notify": True, "EventAction": "MFA_IF_CONFIGURED"},
        "HighAction": {"Notify": True, "EventAction": "BLOCK"},
    },
}


def _client_ids(cognito: Any, pool_id: str) -> dict[str, str]:
    listed = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    return {c["ClientName"]: c["ClientId"] for c in listed}


def style(cognito: Any, pool_id: str) -> None:
    """The hosted UI's look (pool-wide with a logo, and the web client's own CSS), the web
    client's managed login branding, log delivery and threat protection (pool-wide, and the
    backend client's own)."""
    ids = _client_ids(cognito, pool_id)
    cognito.set_ui_customization(
        UserPoolId=pool_id, CSS=".banner-customizable {background: #036}", ImageFile=LOGO
    )
    cognito.set_ui_customization(
        UserPoolId=pool_id, ClientId=ids["web"], CSS=".label-customizable {color: #333}"
    )
    logo = {"Category": "FORM_LOGO", "ColorMode": "LIGHT", "Extension": "PNG", "Bytes": LOGO}
    cognito.create_managed_login_branding(
        UserPoolId=pool_id, ClientId=ids["web"], Settings=BRANDING_SETTINGS, Assets=[logo]
    )
    cognito.set_log_delivery_configuration(
        UserPoolId=pool_id,
        LogConfigurations=[
            {
                "LogLevel": "ERROR",
                "EventSource": "userNotification",
                "CloudWatchLogsConfiguration": {"LogGroupArn": LOG_GROUP},
            },
            {
                "LogLevel": "INFO",
                "EventSource": "userAuthEvents",
                "FirehoseConfiguration": {"StreamArn": FIREHOSE},
            },
        ],
    )
    cognito.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration=TAKEOVER,
        RiskExceptionConfiguration={"SkippedIPRangeList": ["192.0.2.0/24"]},
    )
    cognito.set_risk_configuration(
        UserPoolId=pool_id,
        ClientId=ids["backend"],
        CompromisedCredentialsRiskConfiguration={
            "EventFilter": ["SIGN_IN"],
            "Actions": {"EventAction": "BLOCK"},
        },
    )


def looks(cognito: Any, pool_id: str) -> dict[str, Any]:
    """The UI customisation (CSS, whether there is a logo), branding and risk configuration of
    each client by name (client ids differ between pools), and the pool-wide ones."""
    ids = {"ALL": None, **_client_ids(cognito, pool_id)}
    out: dict[str, Any] = {}
    for name, client in ids.items():
        kwargs = {"UserPoolId": pool_id, **({"ClientId": client} if client else {})}
        ui = cognito.get_ui_customization(**kwargs)["UICustomization"]
        risk = cognito.describe_risk_configuration(**kwargs)["RiskConfiguration"]
        entry: dict[str, Any] = {
            "css": (ui.get("CSS"), ui.get("ClientId") == "ALL"),
            "risk": (
                {k: v for k, v in risk.items() if k not in ("UserPoolId", "ClientId", "LastModifiedDate")},
                risk.get("ClientId") == "ALL",
            ),
        }
        if client:
            try:
                branding = cognito.describe_managed_login_branding_by_client(**kwargs)["ManagedLoginBranding"]
                entry["branding"] = (branding.get("Settings"), branding.get("Assets"))
            except cognito.exceptions.ResourceNotFoundException:
                entry["branding"] = None
        out[name] = entry
    return out


def pool_state(cognito: Any, pool_id: str) -> dict[str, Any]:
    """Users by e-mail (with e-mail usernames Cognito's username is the sub, new in a new pool)."""

    def email(user: dict[str, Any]) -> str:
        return next(a["Value"] for a in user["Attributes"] if a["Name"] == "email")

    users = {
        email(u): (
            u["Enabled"],
            sorted((a["Name"], a["Value"]) for a in u["Attributes"] if a["Name"] != "sub"),
        )
        for u in cognito.list_users(UserPoolId=pool_id)["Users"]
    }
    groups = sorted(g["GroupName"] for g in cognito.list_groups(UserPoolId=pool_id)["Groups"])
    members = sorted(
        (g, email(u))
        for g in groups
        for u in cognito.list_users_in_group(UserPoolId=pool_id, GroupName=g)["Users"]
    )
    return {"users": users, "groups": groups, "members": members}


def settings(cognito: Any, pool_id: str) -> dict[str, Any]:
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    keep = (
        "Policies",
        "AutoVerifiedAttributes",
        "AliasAttributes",
        "UsernameAttributes",
        "UsernameConfiguration",
        "AdminCreateUserConfig",
        "AccountRecoverySetting",
        "DeletionProtection",
    )
    out = {k: pool.get(k) for k in keep}
    out["schema"] = sorted(
        (
            a["Name"],
            a.get("Mutable"),
            json.dumps(a.get("StringAttributeConstraints") or a.get("NumberAttributeConstraints")),
        )
        for a in pool["SchemaAttributes"]
        if a["Name"].startswith("custom:")
    )
    out["mfa"] = cognito.get_user_pool_mfa_config(UserPoolId=pool_id)["MfaConfiguration"]
    out["tags"] = {k: v for k, v in (pool.get("UserPoolTags") or {}).items() if k != SOURCE_TAG}
    servers = cognito.list_resource_servers(UserPoolId=pool_id, MaxResults=50)["ResourceServers"]
    out["servers"] = sorted(
        (s["Identifier"], s["Name"], json.dumps(s["Scopes"], sort_keys=True)) for s in servers
    )
    clients = []
    for c in cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]:
        d = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=c["ClientId"])["UserPoolClient"]
        clients.append(
            (
                d["ClientName"],
                "ClientSecret" in d,
                sorted(d.get("ExplicitAuthFlows", [])),
                d.get("AllowedOAuthScopes"),
                d.get("CallbackURLs"),
                d.get("RefreshTokenValidity"),
            )
        )
    out["clients"] = sorted(clients)
    return out
