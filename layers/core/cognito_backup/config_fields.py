"""What a snapshot keeps of a pool's configuration: named fields only (an allowlist).

Every describe answer (DescribeUserPool, GetUserPoolMfaConfig, DescribeUserPoolClient,
DescribeIdentityProvider, DescribeResourceServer, DescribeUserPoolDomain, GetUICustomization,
DescribeManagedLoginBrandingByClient, GetLogDeliveryConfiguration, DescribeRiskConfiguration)
is reduced to the fields named here, structure by structure, before it reaches a snapshot. A
field Cognito adds later is therefore dropped until someone decides to keep it, and a secret can only reach a
backup by being named below. Each shape also lists the fields deliberately not kept, with the
reason; `tests/unit/test_config_fields.py` walks botocore's model of each answer and fails
when a field is in neither list.

Two secrets are replaced by what a rebuild needs to know about them (never their value):
- an app client's `ClientSecret` becomes `"GenerateSecret": true` (CreateUserPoolClient's own
  parameter: the rebuilt client gets a new secret);
- the secret keys of an identity provider's `ProviderDetails` (`client_secret`, an Apple
  provider's `private_key`, and any key not named here) are dropped, and their names are
  listed under `ProviderDetailsOmitted`, so that a rebuild knows a secret must be supplied.

Bytes (a managed login branding's asset files) are kept base64-encoded (`BASE64`), as the API
carries them, up to `ASSET_BYTES_KEPT` for the whole pool: the configuration is one record, and a
reader refuses a record line over 1 MiB (store.MAX_LINE_BYTES), while a branding may hold 40
assets of up to a million characters each. The assets beyond it are named under `AssetsOmitted`
(`bound_assets`), for a rebuild to list. A UI customisation's logo is not kept at all:
GetUICustomization answers only the URL Cognito serves it from (`ImageUrl`), kept as a reference
a rebuild lists.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeAlias

KEEP = True  # the field's value is kept as it is (a scalar, a list of scalars, a free-form map)


@dataclass(frozen=True)
class MapKeys:
    """A string-to-string map of which only the named keys are kept; the names of the keys
    dropped are recorded under `omitted_as`, beside the map."""

    keys: frozenset[str]
    omitted_as: str


@dataclass(frozen=True)
class Base64:
    """Bytes (a blob of the API), kept as base64 text."""


BASE64 = Base64()

Spec: TypeAlias = "bool | MapKeys | Base64 | Mapping[str, Spec]"


@dataclass(frozen=True)
class Shape:
    """One structure of a describe answer: the fields kept, and those not kept (with why)."""

    kept: Mapping[str, Spec]
    not_kept: Mapping[str, str]
    # A field not kept whose presence a rebuild must know: recorded as `{name: True}`.
    present_as: Mapping[str, str] = field(default_factory=dict)


_SMS_CONFIGURATION: Mapping[str, Spec] = {
    # ExternalId is the value the SNS role's trust policy expects, not a credential.
    "SnsCallerArn": KEEP,
    "ExternalId": KEEP,
    "SnsRegion": KEEP,
    "EumsSms": {
        "CallerArn": KEEP,
        "ExternalId": KEEP,
        "OriginationIdentity": KEEP,
        "ConfigurationSetName": KEEP,
        "InEntityId": KEEP,
        "InTemplateId": KEEP,
        "Region": KEEP,
    },
}

_LAMBDA_VERSION: Mapping[str, Spec] = {"LambdaVersion": KEEP, "LambdaArn": KEEP}

USER_POOL = Shape(
    kept={
        "Id": KEEP,
        "Name": KEEP,
        "Arn": KEEP,
        "CreationDate": KEEP,
        "LastModifiedDate": KEEP,
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": KEEP,
                "RequireUppercase": KEEP,
                "RequireLowercase": KEEP,
                "RequireNumbers": KEEP,
                "RequireSymbols": KEEP,
                "PasswordHistorySize": KEEP,
                "TemporaryPasswordValidityDays": KEEP,
            },
            "SignInPolicy": {"AllowedFirstAuthFactors": KEEP},
        },
        "DeletionProtection": KEEP,
        "LambdaConfig": {
            "PreSignUp": KEEP,
            "CustomMessage": KEEP,
            "PostConfirmation": KEEP,
            "PreAuthentication": KEEP,
            "PostAuthentication": KEEP,
            "DefineAuthChallenge": KEEP,
            "CreateAuthChallenge": KEEP,
            "VerifyAuthChallengeResponse": KEEP,
            "PreTokenGeneration": KEEP,
            "UserMigration": KEEP,
            "PreTokenGenerationConfig": _LAMBDA_VERSION,
            "CustomSMSSender": _LAMBDA_VERSION,
            "CustomEmailSender": _LAMBDA_VERSION,
            "KMSKeyID": KEEP,
            "InboundFederation": _LAMBDA_VERSION,
        },
        "SchemaAttributes": {
            "Name": KEEP,
            "AttributeDataType": KEEP,
            "DeveloperOnlyAttribute": KEEP,
            "Mutable": KEEP,
            "Required": KEEP,
            "NumberAttributeConstraints": {"MinValue": KEEP, "MaxValue": KEEP},
            "StringAttributeConstraints": {"MinLength": KEEP, "MaxLength": KEEP},
        },
        "AutoVerifiedAttributes": KEEP,
        "AliasAttributes": KEEP,
        "UsernameAttributes": KEEP,
        "SmsVerificationMessage": KEEP,
        "EmailVerificationMessage": KEEP,
        "EmailVerificationSubject": KEEP,
        "VerificationMessageTemplate": {
            "SmsMessage": KEEP,
            "EmailMessage": KEEP,
            "EmailSubject": KEEP,
            "EmailMessageByLink": KEEP,
            "EmailSubjectByLink": KEEP,
            "DefaultEmailOption": KEEP,
        },
        "SmsAuthenticationMessage": KEEP,
        "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": KEEP},
        "MfaConfiguration": KEEP,
        "DeviceConfiguration": {
            "ChallengeRequiredOnNewDevice": KEEP,
            "DeviceOnlyRememberedOnUserPrompt": KEEP,
        },
        "EmailConfiguration": {
            "SourceArn": KEEP,
            "ReplyToEmailAddress": KEEP,
            "EmailSendingAccount": KEEP,
            "From": KEEP,
            "ConfigurationSet": KEEP,
        },
        "SmsConfiguration": _SMS_CONFIGURATION,
        "UserPoolTags": KEEP,
        "Domain": KEEP,
        "CustomDomain": KEEP,
        "AdminCreateUserConfig": {
            "AllowAdminCreateUserOnly": KEEP,
            "UnusedAccountValidityDays": KEEP,
            "InviteMessageTemplate": {"SMSMessage": KEEP, "EmailMessage": KEEP, "EmailSubject": KEEP},
        },
        "UserPoolAddOns": {
            "AdvancedSecurityMode": KEEP,
            "AdvancedSecurityAdditionalFlows": {"CustomAuthMode": KEEP},
        },
        "DcrConfiguration": {
            "EnableStatus": KEEP,
            "OpenDcrEnabled": KEEP,
            "AuthenticatedGrantTypes": KEEP,
            "OpenDcrGrantTypes": KEEP,
            "AllowedScopes": KEEP,
        },
        "UsernameConfiguration": {"CaseSensitive": KEEP},
        "AccountRecoverySetting": {"RecoveryMechanisms": {"Priority": KEEP, "Name": KEEP}},
        "UserPoolTier": KEEP,
        "KeyConfiguration": {"KeyType": KEEP, "KmsKeyArn": KEEP},
        "IssuerConfiguration": {"Type": KEEP},
        "AcrConfiguration": KEEP,
    },
    not_kept={
        "EstimatedNumberOfUsers": "a changing estimate, not a setting; the snapshot's counts are exact",
        "Status": "deprecated by Cognito, not a setting",
        "SmsConfigurationFailure": "a status message about the SMS role, not a setting",
        "EmailConfigurationFailure": "a status message about SES, not a setting",
    },
)

MFA_CONFIG = Shape(
    kept={
        "SmsMfaConfiguration": {"SmsAuthenticationMessage": KEEP, "SmsConfiguration": _SMS_CONFIGURATION},
        "SoftwareTokenMfaConfiguration": {"Enabled": KEEP},
        "EmailMfaConfiguration": {"Message": KEEP, "Subject": KEEP},
        "MfaConfiguration": KEEP,
        "WebAuthnConfiguration": {
            "RelyingPartyId": KEEP,
            "UserVerification": KEEP,
            "FactorConfiguration": KEEP,
        },
    },
    not_kept={},
)

APP_CLIENT = Shape(
    kept={
        "UserPoolId": KEEP,
        "ClientName": KEEP,
        "ClientId": KEEP,
        # The ARN of the secret's managed storage, a reference a rebuild lists, not the secret.
        "ClientSecretArn": KEEP,
        "LastModifiedDate": KEEP,
        "CreationDate": KEEP,
        "RefreshTokenValidity": KEEP,
        "AccessTokenValidity": KEEP,
        "IdTokenValidity": KEEP,
        "TokenValidityUnits": {"AccessToken": KEEP, "IdToken": KEEP, "RefreshToken": KEEP},
        "ReadAttributes": KEEP,
        "WriteAttributes": KEEP,
        "ExplicitAuthFlows": KEEP,
        "SupportedIdentityProviders": KEEP,
        "CallbackURLs": KEEP,
        "LogoutURLs": KEEP,
        "DefaultRedirectURI": KEEP,
        "AllowedOAuthFlows": KEEP,
        "AllowedOAuthScopes": KEEP,
        "AllowedOAuthFlowsUserPoolClient": KEEP,
        "AnalyticsConfiguration": {
            "ApplicationId": KEEP,
            "ApplicationArn": KEEP,
            "RoleArn": KEEP,
            "ExternalId": KEEP,
            "UserDataShared": KEEP,
        },
        "PreventUserExistenceErrors": KEEP,
        "EnableTokenRevocation": KEEP,
        "EnablePropagateAdditionalUserContextData": KEEP,
        "AuthSessionValidity": KEEP,
        "RefreshTokenRotation": {"Feature": KEEP, "RetryGracePeriodSeconds": KEEP},
        "ClientType": KEEP,
    },
    not_kept={"ClientSecret": 'a secret: recorded only as "GenerateSecret": true'},
    present_as={"ClientSecret": "GenerateSecret"},
)

# The documented ProviderDetails keys that hold no secret (per provider type: Google, Facebook,
# Login with Amazon, Sign in with Apple, OIDC, SAML), plus those Cognito adds in its answers.
PROVIDER_DETAILS_KEPT = frozenset(
    {
        "client_id",
        "authorize_scopes",
        "api_version",
        "team_id",
        "key_id",
        "attributes_request_method",
        "oidc_issuer",
        "authorize_url",
        "token_url",
        "token_request_method",
        "attributes_url",
        "attributes_url_add_attributes",
        "jwks_uri",
        "MetadataURL",
        "MetadataFile",
        "IDPSignout",
        "IDPInit",
        "RequestSigningAlgorithm",
        "EncryptedResponses",
        "ActiveEncryptionCertificate",
        "SLORedirectBindingURI",
        "SSORedirectBindingURI",
    }
)
PROVIDER_DETAILS_OMITTED = "ProviderDetailsOmitted"

IDENTITY_PROVIDER = Shape(
    kept={
        "UserPoolId": KEEP,
        "ProviderName": KEEP,
        "ProviderType": KEEP,
        "ProviderDetails": MapKeys(PROVIDER_DETAILS_KEPT, PROVIDER_DETAILS_OMITTED),
        "AttributeMapping": KEEP,
        "IdpIdentifiers": KEEP,
        "AcrMapping": KEEP,
        "LastModifiedDate": KEEP,
        "CreationDate": KEEP,
    },
    not_kept={},
)

RESOURCE_SERVER = Shape(
    kept={
        "UserPoolId": KEEP,
        "Identifier": KEEP,
        "Name": KEEP,
        "Scopes": {"ScopeName": KEEP, "ScopeDescription": KEEP},
        "ManagedBy": KEEP,
    },
    not_kept={},
)

DOMAIN = Shape(
    kept={
        "UserPoolId": KEEP,
        "AWSAccountId": KEEP,
        "Domain": KEEP,
        "S3Bucket": KEEP,
        "CloudFrontDistribution": KEEP,
        "Version": KEEP,
        "Status": KEEP,
        "CustomDomainConfig": {"CertificateArn": KEEP, "SecurityPolicy": KEEP},
        "ManagedLoginVersion": KEEP,
        "Routing": {"Failover": {"SecondaryRegion": KEEP, "PrimaryRoute53HealthCheckId": KEEP}},
    },
    not_kept={},
)


UI_CUSTOMIZATION = Shape(
    kept={
        "UserPoolId": KEEP,
        "ClientId": KEEP,  # "ALL": the pool-wide one
        "CSS": KEEP,
        "CSSVersion": KEEP,
        # Where Cognito serves the logo from; the image's bytes are in no answer (a reference).
        "ImageUrl": KEEP,
        "LastModifiedDate": KEEP,
        "CreationDate": KEEP,
    },
    not_kept={},
)

MANAGED_LOGIN_BRANDING = Shape(
    kept={
        "ManagedLoginBrandingId": KEEP,
        "UserPoolId": KEEP,
        "UseCognitoProvidedValues": KEEP,
        "Settings": KEEP,  # a free-form JSON document (colours, layout, fonts)
        "Assets": {
            "Category": KEEP,
            "ColorMode": KEEP,
            "Extension": KEEP,
            "Bytes": BASE64,
            "ResourceId": KEEP,
        },
        "CreationDate": KEEP,
        "LastModifiedDate": KEEP,
    },
    not_kept={},
)

LOG_DELIVERY = Shape(
    kept={
        "UserPoolId": KEEP,
        "LogConfigurations": {
            "LogLevel": KEEP,
            "EventSource": KEEP,
            "CloudWatchLogsConfiguration": {"LogGroupArn": KEEP},
            "S3Configuration": {"BucketArn": KEEP},
            "FirehoseConfiguration": {"StreamArn": KEEP},
        },
    },
    not_kept={},
)

_NOTIFY_EMAIL: Mapping[str, Spec] = {"Subject": KEEP, "HtmlBody": KEEP, "TextBody": KEEP}
_TAKEOVER_ACTION: Mapping[str, Spec] = {"Notify": KEEP, "EventAction": KEEP}

RISK_CONFIGURATION = Shape(
    kept={
        "UserPoolId": KEEP,
        "ClientId": KEEP,  # "ALL": the pool-wide one
        "CompromisedCredentialsRiskConfiguration": {
            "EventFilter": KEEP,
            "Actions": {"EventAction": KEEP},
        },
        "AccountTakeoverRiskConfiguration": {
            "NotifyConfiguration": {
                "From": KEEP,
                "ReplyTo": KEEP,
                "SourceArn": KEEP,  # an SES identity: a reference a rebuild checks
                "BlockEmail": _NOTIFY_EMAIL,
                "NoActionEmail": _NOTIFY_EMAIL,
                "MfaEmail": _NOTIFY_EMAIL,
            },
            "Actions": {
                "LowAction": _TAKEOVER_ACTION,
                "MediumAction": _TAKEOVER_ACTION,
                "HighAction": _TAKEOVER_ACTION,
            },
        },
        "RiskExceptionConfiguration": {"BlockedIPRangeList": KEEP, "SkippedIPRangeList": KEEP},
        "LastModifiedDate": KEEP,
    },
    not_kept={},
)


# Base64 characters of branding assets one snapshot keeps (all clients together): far under the
# 1 MiB a record line may hold, with the rest of the configuration beside it.
ASSET_BYTES_KEPT = 512 * 1024
ASSETS_OMITTED = "AssetsOmitted"


def bound_assets(branding: dict[str, Any], budget: int) -> tuple[dict[str, Any], int]:
    """`branding` (as kept) with as many of its assets' bytes as `budget` characters allow, the
    smallest first; the others are named under ASSETS_OMITTED (category, colour mode, extension).
    Answers the budget left."""
    assets = list(branding.get("Assets") or [])
    kept, omitted = [], []
    for asset in sorted(assets, key=lambda a: len(str(a.get("Bytes") or ""))):
        size = len(str(asset.get("Bytes") or ""))
        if size <= budget:
            kept.append(asset)
            budget -= size
        else:
            omitted.append({k: asset[k] for k in ("Category", "ColorMode", "Extension") if k in asset})
    out = dict(branding)
    if assets:
        out["Assets"] = [a for a in assets if a in kept]
    if omitted:
        out[ASSETS_OMITTED] = omitted
    return out, budget


def _plain(value: Any) -> Any:
    """A kept value as JSON: dates as ISO-8601, containers copied."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _kept(value: Any, spec: Spec) -> Any:
    if isinstance(value, list):
        return [_kept(item, spec) for item in value]
    if isinstance(spec, bool):
        return _plain(value)
    if isinstance(spec, Base64):
        raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
        return base64.b64encode(raw).decode("ascii")
    if not isinstance(value, dict):
        return None  # a structure was expected: an answer of another shape keeps nothing here
    if isinstance(spec, MapKeys):
        return {k: str(v) for k, v in value.items() if k in spec.keys}
    return _structure(value, spec)


def _structure(value: Mapping[str, Any], fields: Mapping[str, Spec]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in value:
            continue
        out[name] = _kept(value[name], spec)
        if isinstance(spec, MapKeys) and isinstance(value[name], dict):
            omitted = sorted(k for k in value[name] if k not in spec.keys)
            if omitted:
                out[spec.omitted_as] = omitted
    return out


def keep_fields(answer: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    """`answer` reduced to the fields `shape` keeps (recursively), as JSON-ready values."""
    out = _structure(answer, shape.kept)
    for name, marker in shape.present_as.items():
        if answer.get(name):
            out[marker] = True
    return out
