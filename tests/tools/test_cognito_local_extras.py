"""The operations moto lacks, answered by the local Cognito (cognito_local.extras): per-pool
state, answers that botocore's own model accepts, and Cognito's refusals; in process (plain
mock_aws and under the strict hook) and over HTTP."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from cognito_local.inprocess import strict_cognito
from cognito_local.server import LocalAws
from cognito_local.strict import OPERATION_CATEGORY

MODEL = botocore.session.get_session().get_service_model("cognito-idp")
PNG = b"\x89PNG\r\n\x1a\nlogo"
SETTINGS = {"components": {"primaryButton": {"lightMode": {"defaults": {"backgroundColor": "0972d3ff"}}}}}
TAKEOVER = {
    "NotifyConfiguration": {
        "From": "security@example.com",
        "SourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "BlockEmail": {"Subject": "Blocked", "TextBody": "We blocked a sign-in."},
    },
    "Actions": {
        "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
        "MediumAction": {"Notify": True, "EventAction": "MFA_IF_CONFIGURED"},
        "HighAction": {"Notify": True, "EventAction": "BLOCK"},
    },
}


def valid(operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer as botocore parsed it, checked against the operation's output shape."""
    body = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    report = ParamValidator().validate(body, MODEL.operation_model(operation).output_shape)
    assert not report.has_errors(), report.generate_report()
    return body


def code_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def pool(idp: Any, *, plus: bool = False, domain: bool = True) -> tuple[str, str]:
    extra: dict[str, Any] = (
        {"UserPoolTier": "PLUS", "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"}} if plus else {}
    )
    pool_id = idp.create_user_pool(PoolName="p", **extra)["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="web")["UserPoolClient"]["ClientId"]
    if domain:
        idp.create_user_pool_domain(UserPoolId=pool_id, Domain=f"d-{pool_id.split('_')[1].lower()}")
    return pool_id, client


def test_each_operation_has_its_quota_category() -> None:
    assert OPERATION_CATEGORY["GetUICustomization"] == "UserPoolResourceRead"
    assert OPERATION_CATEGORY["SetUICustomization"] == "UserPoolResourceUpdate"
    assert OPERATION_CATEGORY["GetLogDeliveryConfiguration"] == "UserPoolRead"
    assert OPERATION_CATEGORY["SetLogDeliveryConfiguration"] == "UserPoolUpdate"


def test_ui_customisation_pool_wide_and_per_client(aws) -> None:
    idp = aws.cognito()
    pool_id, client = pool(idp)
    # Nothing set: the empty shape
    empty = valid("GetUICustomization", idp.get_ui_customization(UserPoolId=pool_id))
    assert empty["UICustomization"] == {"UserPoolId": pool_id, "ClientId": "ALL"}
    set_ = idp.set_ui_customization(
        UserPoolId=pool_id, CSS=".banner-customizable {color: red}", ImageFile=PNG
    )
    valid("SetUICustomization", set_)
    # A client with none of its own gets the pool-wide one; then its own
    inherited = valid("GetUICustomization", idp.get_ui_customization(UserPoolId=pool_id, ClientId=client))
    assert inherited["UICustomization"]["ClientId"] == "ALL" and inherited["UICustomization"]["ImageUrl"]
    idp.set_ui_customization(
        UserPoolId=pool_id, ClientId=client, CSS=".label-customizable {font-weight: 400}"
    )
    own = idp.get_ui_customization(UserPoolId=pool_id, ClientId=client)["UICustomization"]
    assert own["ClientId"] == client and own["CSS"].startswith(".label") and "ImageUrl" not in own
    # The pool-wide one is unchanged
    assert idp.get_ui_customization(UserPoolId=pool_id)["UICustomization"]["CSS"].startswith(".banner")


def test_ui_customisation_refusals(aws) -> None:
    idp = aws.cognito()
    bare, _ = pool(idp, domain=False)
    assert code_of(idp.set_ui_customization, UserPoolId=bare, CSS="x") == "InvalidParameterException"
    pool_id, _ = pool(idp)
    assert code_of(idp.get_ui_customization, UserPoolId="us-east-1_nope") == "ResourceNotFoundException"
    assert (
        code_of(idp.get_ui_customization, UserPoolId=pool_id, ClientId="nope") == "ResourceNotFoundException"
    )


def test_one_managed_login_branding_per_client(aws) -> None:
    idp = aws.cognito()
    pool_id, client = pool(idp)
    assert (
        code_of(idp.describe_managed_login_branding_by_client, UserPoolId=pool_id, ClientId=client)
        == "ResourceNotFoundException"
    )
    asset = {"Category": "FORM_LOGO", "ColorMode": "LIGHT", "Extension": "PNG", "Bytes": PNG}
    made = idp.create_managed_login_branding(
        UserPoolId=pool_id, ClientId=client, Settings=SETTINGS, Assets=[asset]
    )
    valid("CreateManagedLoginBranding", made)
    found = valid(
        "DescribeManagedLoginBrandingByClient",
        idp.describe_managed_login_branding_by_client(UserPoolId=pool_id, ClientId=client),
    )["ManagedLoginBranding"]
    assert found["ManagedLoginBrandingId"] == made["ManagedLoginBranding"]["ManagedLoginBrandingId"]
    assert found["Settings"] == SETTINGS and found["Assets"][0]["Bytes"] == PNG
    again = code_of(idp.create_managed_login_branding, UserPoolId=pool_id, ClientId=client)
    assert again == "ManagedLoginBrandingExistsException"
    other = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="o")["UserPoolClient"]["ClientId"]
    both = code_of(
        idp.create_managed_login_branding,
        UserPoolId=pool_id,
        ClientId=other,
        UseCognitoProvidedValues=True,
        Settings=SETTINGS,
    )
    assert both == "InvalidParameterException"
    assert (
        code_of(idp.create_managed_login_branding, UserPoolId=pool_id, ClientId="nope")
        == "ResourceNotFoundException"
    )


def test_log_delivery(aws) -> None:
    idp = aws.cognito()
    pool_id, _ = pool(idp)
    none = valid("GetLogDeliveryConfiguration", idp.get_log_delivery_configuration(UserPoolId=pool_id))
    assert none["LogDeliveryConfiguration"]["LogConfigurations"] == []
    configs = [
        {
            "LogLevel": "ERROR",
            "EventSource": "userNotification",
            "CloudWatchLogsConfiguration": {
                "LogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:/cognito/p"
            },
        }
    ]
    valid(
        "SetLogDeliveryConfiguration",
        idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=configs),
    )
    got = idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"]
    assert got["LogConfigurations"] == configs
    auth = [
        {
            "LogLevel": "INFO",
            "EventSource": "userAuthEvents",
            "S3Configuration": {"BucketArn": "arn:aws:s3:::b"},
        }
    ]
    refused = code_of(idp.set_log_delivery_configuration, UserPoolId=pool_id, LogConfigurations=auth)
    assert refused == "FeatureUnavailableInTierException"
    two = [{"LogLevel": "ERROR", "EventSource": "userNotification"}]
    assert (
        code_of(idp.set_log_delivery_configuration, UserPoolId=pool_id, LogConfigurations=two)
        == "InvalidParameterException"
    )


def test_risk_configuration_needs_threat_protection(aws) -> None:
    idp = aws.cognito()
    essentials, client = pool(idp)
    for call in (idp.describe_risk_configuration, idp.set_risk_configuration):
        assert code_of(call, UserPoolId=essentials) == "UserPoolAddOnNotEnabledException"
    plus, client = pool(idp, plus=True)
    default = valid("DescribeRiskConfiguration", idp.describe_risk_configuration(UserPoolId=plus))
    assert default["RiskConfiguration"] == {"UserPoolId": plus, "ClientId": "ALL"}
    valid(
        "SetRiskConfiguration",
        idp.set_risk_configuration(
            UserPoolId=plus,
            AccountTakeoverRiskConfiguration=TAKEOVER,
            RiskExceptionConfiguration={"BlockedIPRangeList": ["192.0.2.0/24"]},
        ),
    )
    inherited = idp.describe_risk_configuration(UserPoolId=plus, ClientId=client)["RiskConfiguration"]
    assert inherited["ClientId"] == "ALL" and inherited["AccountTakeoverRiskConfiguration"] == TAKEOVER
    idp.set_risk_configuration(
        UserPoolId=plus,
        ClientId=client,
        CompromisedCredentialsRiskConfiguration={"Actions": {"EventAction": "BLOCK"}},
    )
    own = idp.describe_risk_configuration(UserPoolId=plus, ClientId=client)["RiskConfiguration"]
    assert own["ClientId"] == client and "AccountTakeoverRiskConfiguration" not in own
    silent = {"Actions": TAKEOVER["Actions"]}  # Notify actions without a NotifyConfiguration
    assert (
        code_of(idp.set_risk_configuration, UserPoolId=plus, AccountTakeoverRiskConfiguration=silent)
        == "InvalidParameterException"
    )


def test_under_the_strict_hook_they_count_in_their_category_and_a_lost_answer_took_effect(aws) -> None:
    from cognito_local.faults import Faults

    lost = Faults(rate=1.0, after_effect=1.0, operations=frozenset({"SetUICustomization"}))
    with strict_cognito(enforce_quotas=False, faults=lost) as engine:
        idp = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id, _ = pool(idp)
        assert code_of(idp.set_ui_customization, UserPoolId=pool_id, CSS="a {}") == "InternalErrorException"
        assert idp.get_ui_customization(UserPoolId=pool_id)["UICustomization"]["CSS"] == "a {}"
    stats = engine.stats()
    assert stats["categories"]["UserPoolResourceUpdate"]["calls"] >= 1
    assert stats["faults"]["total"]["after"] >= 1


def test_over_http_the_server_answers_them() -> None:
    with LocalAws() as local:
        idp = boto3.client(
            "cognito-idp",
            endpoint_url=local.endpoint_url,
            region_name="eu-west-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        pool_id, client = pool(idp, plus=True)
        idp.set_ui_customization(UserPoolId=pool_id, ClientId=client, CSS="b {}")
        assert (
            idp.get_ui_customization(UserPoolId=pool_id, ClientId=client)["UICustomization"]["CSS"] == "b {}"
        )
        assert idp.describe_risk_configuration(UserPoolId=pool_id)["RiskConfiguration"]["ClientId"] == "ALL"
        # The wire carries blobs as base64: botocore gives the same bytes back.
        asset = {"Category": "FAVICON_ICO", "ColorMode": "DARK", "Extension": "ICO", "Bytes": PNG}
        idp.create_managed_login_branding(UserPoolId=pool_id, ClientId=client, Assets=[asset])
        found = idp.describe_managed_login_branding_by_client(UserPoolId=pool_id, ClientId=client)
        assert found["ManagedLoginBranding"]["Assets"][0]["Bytes"] == PNG
