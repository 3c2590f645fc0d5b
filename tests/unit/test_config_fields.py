"""The configuration a snapshot keeps is an allowlist: every field Cognito can return is either
named as kept or named as not kept (with why), and no secret passes through."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from cognito_backup import config_fields as cf
from cognito_backup.cognito import CognitoGateway
from cognito_backup.pacing import Pacer

MODEL = botocore.session.get_session().get_service_model("cognito-idp")

# Each describe answer the export reads, the structure in it, and the shape that filters it.
ANSWERS = [
    ("DescribeUserPool", "UserPool", cf.USER_POOL),
    ("GetUserPoolMfaConfig", None, cf.MFA_CONFIG),
    ("DescribeUserPoolClient", "UserPoolClient", cf.APP_CLIENT),
    ("DescribeIdentityProvider", "IdentityProvider", cf.IDENTITY_PROVIDER),
    ("DescribeResourceServer", "ResourceServer", cf.RESOURCE_SERVER),
    ("DescribeUserPoolDomain", "DomainDescription", cf.DOMAIN),
    ("GetUICustomization", "UICustomization", cf.UI_CUSTOMIZATION),
    ("DescribeManagedLoginBrandingByClient", "ManagedLoginBranding", cf.MANAGED_LOGIN_BRANDING),
    ("GetLogDeliveryConfiguration", "LogDeliveryConfiguration", cf.LOG_DELIVERY),
    ("DescribeRiskConfiguration", "RiskConfiguration", cf.RISK_CONFIGURATION),
]


def _uncovered(shape: Any, kept: Mapping[str, Any], not_kept: Mapping[str, str], path: str) -> Iterator[str]:
    """Paths of fields botocore's model returns that the spec neither keeps nor names as not
    kept, of structures kept whole (a new nested field would pass unexamined), and of names
    the spec has that the model does not (a typo keeps nothing)."""
    for name, member in shape.members.items():
        here = f"{path}.{name}"
        if name in not_kept:
            continue
        if name not in kept:
            yield f"{here}: neither kept nor listed as not kept"
            continue
        target = member.member if member.type_name == "list" else member
        yield from _misfit(target, kept[name], here)
    for name in [*kept, *not_kept]:
        if name not in shape.members:
            yield f"{path}.{name}: not in Cognito's model"


def _misfit(target: Any, spec: Any, here: str) -> Iterator[str]:
    """What is wrong with how one field of the model is kept."""
    if target.metadata.get("document"):
        if spec is not cf.KEEP:
            yield f"{here}: a free-form document is kept whole"
    elif target.type_name == "blob":
        if spec is not cf.BASE64:
            yield f"{here}: bytes are kept as base64"
    elif target.type_name == "structure":
        if not isinstance(spec, Mapping):
            yield f"{here}: a structure must name its fields"
        else:
            yield from _uncovered(target, spec, {}, here)
    elif target.type_name == "map":
        if not (spec is cf.KEEP or isinstance(spec, cf.MapKeys)):
            yield f"{here}: a map is kept whole or by its keys"
    elif spec is not cf.KEEP:
        yield f"{here}: a scalar is kept as it is"


@pytest.mark.parametrize(("operation", "key", "spec"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_every_field_cognito_returns_is_kept_or_named_as_not_kept(
    operation: str, key: str | None, spec: cf.Shape
) -> None:
    output = MODEL.operation_model(operation).output_shape
    shape = output.members[key] if key else output
    assert list(_uncovered(shape, spec.kept, spec.not_kept, operation)) == []


# Every field an identity provider or app client can hold a secret in, with a value that must
# never reach a snapshot; plus a key Cognito might add one day (allowlist: dropped as well).
SECRETS = {
    "client_secret": "SECRET-oidc-client-secret",
    "private_key": "SECRET-----BEGIN PRIVATE KEY-----apple",
    "some_future_secret": "SECRET-unknown-key",
}
CLIENT_SECRET = "SECRET-app-client-secret"


class DescribingClient:
    """Answers the describe calls of `CognitoGateway.pool_config` with secrets everywhere."""

    class meta:
        region_name = "us-east-1"

    def describe_user_pool(self, **_: Any) -> dict[str, Any]:
        return {
            "UserPool": {
                "Id": "us-east-1_abc",
                "Name": "p",
                "CreationDate": datetime(2026, 1, 2, tzinfo=UTC),
                "EstimatedNumberOfUsers": 7,
                "Domain": "my-prefix",
                "Policies": {"PasswordPolicy": {"MinimumLength": 12, "SomethingNew": "x"}},
                "SchemaAttributes": [
                    {"Name": "custom:t", "Mutable": False, "StringAttributeConstraints": {"MaxLength": "9"}}
                ],
            },
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    def get_user_pool_mfa_config(self, **_: Any) -> dict[str, Any]:
        return {"MfaConfiguration": "OPTIONAL", "SoftwareTokenMfaConfiguration": {"Enabled": True}}

    def list_user_pool_clients(self, **_: Any) -> dict[str, Any]:
        return {"UserPoolClients": [{"ClientId": "c1"}, {"ClientId": "c2"}]}

    def describe_user_pool_client(self, ClientId: str, **_: Any) -> dict[str, Any]:
        client: dict[str, Any] = {"ClientId": ClientId, "ClientName": ClientId, "ExplicitAuthFlows": ["A"]}
        if ClientId == "c1":
            client["ClientSecret"] = CLIENT_SECRET
        return {"UserPoolClient": client}

    def list_identity_providers(self, **_: Any) -> dict[str, Any]:
        return {"Providers": [{"ProviderName": "SignInWithApple"}, {"ProviderName": "Oidc"}]}

    def describe_identity_provider(self, ProviderName: str, **_: Any) -> dict[str, Any]:
        details = {"client_id": "id-1", "authorize_scopes": "email", "team_id": "T", "key_id": "K"}
        return {
            "IdentityProvider": {
                "ProviderName": ProviderName,
                "ProviderType": "SignInWithApple" if ProviderName == "SignInWithApple" else "OIDC",
                "ProviderDetails": {**details, **SECRETS},
                "AttributeMapping": {"email": "email"},
            }
        }

    def list_resource_servers(self, **_: Any) -> dict[str, Any]:
        return {"ResourceServers": [{"Identifier": "api"}]}

    def describe_resource_server(self, **_: Any) -> dict[str, Any]:
        return {"ResourceServer": {"Identifier": "api", "Name": "API", "Scopes": [{"ScopeName": "read"}]}}

    def describe_user_pool_domain(self, **_: Any) -> dict[str, Any]:
        return {"DomainDescription": {"Domain": "my-prefix", "Status": "ACTIVE", "Version": "1"}}

    def get_ui_customization(self, UserPoolId: str, ClientId: str = "ALL") -> dict[str, Any]:
        # c2 has none of its own: Cognito answers the pool-wide one (ClientId "ALL").
        css = {"ALL": ".banner {}", "c1": ".label {}"}.get(ClientId, ".banner {}")
        owner = ClientId if ClientId in ("ALL", "c1") else "ALL"
        return {"UICustomization": {"UserPoolId": UserPoolId, "ClientId": owner, "CSS": css, "Future": "x"}}

    def describe_managed_login_branding_by_client(self, ClientId: str, **_: Any) -> dict[str, Any]:
        if ClientId == "c2":
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "none"}}, "D")
        asset = {"Category": "FORM_LOGO", "ColorMode": "LIGHT", "Extension": "PNG", "Bytes": b"\x89PNG"}
        return {"ManagedLoginBranding": {"ManagedLoginBrandingId": "b-1", "Assets": [asset]}}

    def get_log_delivery_configuration(self, UserPoolId: str) -> dict[str, Any]:
        destination = {"LogGroupArn": "arn:aws:logs:us-east-1:1:log-group:g"}
        return {
            "LogDeliveryConfiguration": {
                "UserPoolId": UserPoolId,
                "LogConfigurations": [
                    {
                        "LogLevel": "ERROR",
                        "EventSource": "userNotification",
                        "CloudWatchLogsConfiguration": destination,
                    }
                ],
            }
        }


def test_no_secret_cognito_can_return_is_written_and_what_a_rebuild_needs_is() -> None:
    gateway = CognitoGateway(DescribingClient(), Pacer(quotas={}), base_delay=0.0)
    record = gateway.pool_config("us-east-1_abc")
    written = json.dumps(record.model_dump(mode="json"))
    for secret in [*SECRETS.values(), CLIENT_SECRET]:
        assert secret not in written
    assert "SECRET" not in written
    # What a rebuild needs survives: settings, non-secret provider details, which secrets were there
    assert record.user_pool["Policies"] == {"PasswordPolicy": {"MinimumLength": 12}}
    assert record.user_pool["CreationDate"] == "2026-01-02T00:00:00+00:00"
    assert record.user_pool["SchemaAttributes"][0]["StringAttributeConstraints"] == {"MaxLength": "9"}
    assert "EstimatedNumberOfUsers" not in record.user_pool
    clients = {c["ClientId"]: c for c in record.app_clients}
    assert clients["c1"].get("GenerateSecret") is True and "GenerateSecret" not in clients["c2"]
    for provider in record.identity_providers:
        assert provider["ProviderDetails"] == {
            "client_id": "id-1",
            "authorize_scopes": "email",
            "team_id": "T",
            "key_id": "K",
        }
        assert provider[cf.PROVIDER_DETAILS_OMITTED] == sorted(SECRETS)
    assert record.resource_servers == [
        {"Identifier": "api", "Name": "API", "Scopes": [{"ScopeName": "read"}]}
    ]
    assert record.domain == {"Domain": "my-prefix", "Status": "ACTIVE", "Version": "1"}
    assert record.mfa_config == {
        "MfaConfiguration": "OPTIONAL",
        "SoftwareTokenMfaConfiguration": {"Enabled": True},
    }
    # The pool-wide UI customisation and c1's own; c2 only inherits it, so it holds none
    assert [(u["ClientId"], u["CSS"]) for u in record.ui_customizations] == [
        ("ALL", ".banner {}"),
        ("c1", ".label {}"),
    ]
    assert "Future" not in written
    # c1's branding, its bytes as base64; c2 has none (ResourceNotFound is not an error here)
    assert record.managed_login_brandings == {
        "c1": {
            "ManagedLoginBrandingId": "b-1",
            "Assets": [
                {"Category": "FORM_LOGO", "ColorMode": "LIGHT", "Extension": "PNG", "Bytes": "iVBORw=="}
            ],
        }
    }
    assert (
        record.log_delivery is not None and record.log_delivery["LogConfigurations"][0]["LogLevel"] == "ERROR"
    )
    # No Plus feature plan: the risk configuration is not asked for (Cognito would refuse)
    assert record.risk_configurations == []


def test_a_field_of_an_unexpected_shape_keeps_nothing_rather_than_everything() -> None:
    # A structure answered as a string (or a future shape change) cannot smuggle a value in.
    kept = cf.keep_fields({"Policies": "raw", "Name": "p"}, cf.USER_POOL)
    assert kept == {"Policies": None, "Name": "p"}


def test_branding_assets_beyond_the_budget_are_named_not_kept() -> None:
    # A branding may hold 40 assets of a million characters each; a snapshot record may not.
    small = {"Category": "FAVICON_ICO", "ColorMode": "LIGHT", "Extension": "ICO", "Bytes": "A" * 10}
    big = {"Category": "PAGE_BACKGROUND", "ColorMode": "DARK", "Extension": "PNG", "Bytes": "B" * 100}
    kept, left = cf.bound_assets({"ManagedLoginBrandingId": "b", "Assets": [big, small]}, budget=50)
    assert kept["Assets"] == [small] and left == 40
    assert kept[cf.ASSETS_OMITTED] == [
        {"Category": "PAGE_BACKGROUND", "ColorMode": "DARK", "Extension": "PNG"}
    ]
    # The pool's budget is far under the longest record line a reader accepts
    from cognito_backup.store import MAX_LINE_BYTES

    assert cf.ASSET_BYTES_KEPT <= MAX_LINE_BYTES // 2


class RefusingClient(DescribingClient):
    """A Plus pool whose risk configuration Cognito refuses all the same, with no log delivery."""

    def describe_user_pool(self, **kwargs: Any) -> dict[str, Any]:
        answer = super().describe_user_pool(**kwargs)
        answer["UserPool"].update(UserPoolTier="PLUS", UserPoolAddOns={"AdvancedSecurityMode": "AUDIT"})
        return answer

    def get_log_delivery_configuration(self, UserPoolId: str) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "none"}}, "G")

    def describe_risk_configuration(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "UserPoolAddOnNotEnabledException", "Message": "off"}}, "D")


def test_no_log_delivery_and_a_refused_risk_configuration_are_recorded_as_none() -> None:
    record = CognitoGateway(RefusingClient(), Pacer(quotas={}), base_delay=0.0).pool_config("us-east-1_abc")
    assert record.log_delivery is None and record.risk_configurations == []
