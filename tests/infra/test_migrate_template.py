"""template.yaml's migration trigger: deployed only with MigrationSourceUserPoolId, least privilege
on the source pool and its snapshots, invocable by Cognito of this account only, alarmed.

The general function checks of test_template.py (ALL_FUNCTIONS) do not apply as they are: this
function exists under a Condition and its errors alarm subtracts refused sign-ins (metric math).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import REPO, load_template
from template_helpers import alarm_topic, as_list, function_props, role_statements, target

pytestmark = pytest.mark.infra

FN = "MigrateUserFunction"
MIGRATION_RESOURCES = {
    "MigrateUserLogGroup",
    "MigrateUserFunctionRole",
    "MigrateUserFunction",
    "MigrateUserInvokedByCognito",
    "MigrateUserErrorsAlarm",
    "MigrateUserThrottlesAlarm",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = template["Resources"]
    return res


def test_the_trigger_exists_only_when_a_source_pool_is_named(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    params = template["Parameters"]
    assert params["MigrationSourceUserPoolId"]["Default"] == ""
    assert params["MigrationSourceClientId"]["Default"] == ""
    assert "NO client secret" in params["MigrationSourceClientId"]["Description"]
    assert template["Conditions"]["MigrationEnabled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MigrationSourceUserPoolId"}, ""]}]
    }
    conditional = {name for name, r in resources.items() if r.get("Condition") == "MigrationEnabled"}
    assert conditional == MIGRATION_RESOURCES
    assert template["Outputs"]["MigrateUserFunctionArn"]["Condition"] == "MigrationEnabled"
    # A source pool without a client cannot check passwords: the stack refuses it.
    rule = template["Rules"]["MigrationNeedsAClient"]
    assert rule["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MigrationSourceClientId"}, ""]}]
    }


def test_the_function_reads_its_source_from_the_environment_contract(template: dict[str, Any]) -> None:
    props = function_props(template, FN)
    assert props["CodeUri"].rstrip("/") == "functions/migrate_user"
    assert props["Handler"] == "app.handler" and props["Layers"] == [{"Ref": "CoreLayer"}]
    variables = props["Environment"]["Variables"]
    assert variables["MIGRATION_SOURCE_USER_POOL_ID"] == {"Ref": "MigrationSourceUserPoolId"}
    assert variables["MIGRATION_SOURCE_CLIENT_ID"] == {"Ref": "MigrationSourceClientId"}
    assert {"BUCKET_NAME", "BACKUP_PREFIX"} <= set(variables)  # the snapshot fallback
    assert props["Timeout"] <= 5  # Cognito waits 5 s for a trigger
    assert "ReservedConcurrentExecutions" not in props  # sign-ins must not queue behind one another


def test_its_role_reads_only_the_source_pool_and_its_snapshots(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    role = target(function_props(template, FN)["Role"])
    trust = as_list(resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    statements = role_statements(resources, role)
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cognito-idp:AdminInitiateAuth",
        "cognito-idp:AdminGetUser",
        "cognito-idp:DescribeUserPool",
        "cognito-idp:DescribeUserPoolClient",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:VerifyMac",  # the snapshot fallback verifies the manifests it reads
    }
    by_sid = {s["Sid"]: s for s in statements}
    pool_arn = by_sid["SignInToTheSourcePool"]["Resource"]["Fn::Sub"][0]
    assert pool_arn.endswith(":userpool/${MigrationSourceUserPoolId}")
    assert by_sid["ReadTheSourcePoolsSnapshots"]["Resource"] == {
        "Fn::Sub": "${BackupBucket.Arn}/${BackupPrefix}/${MigrationSourceUserPoolId}/*"
    }
    assert by_sid["ListOnlyTheSourcePoolsSnapshots"]["Condition"]["StringLike"]["s3:prefix"] == {
        "Fn::Sub": "${BackupPrefix}/${MigrationSourceUserPoolId}/*"
    }
    assert by_sid["DecryptThroughS3Only"]["Condition"]["StringEquals"]["kms:ViaService"]
    logs = by_sid["WriteOwnLogGroup"]["Resource"]
    assert target(logs) == target(function_props(template, FN)["LoggingConfig"]["LogGroup"])
    assert resources["MigrateUserLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_only_cognito_of_this_account_may_invoke_it(resources: dict[str, Any]) -> None:
    permission = resources["MigrateUserInvokedByCognito"]
    assert permission["Type"] == "AWS::Lambda::Permission"
    props = permission["Properties"]
    assert target(props["FunctionName"]) == FN
    assert props["Action"] == "lambda:InvokeFunction"
    assert props["Principal"] == "cognito-idp.amazonaws.com"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert props["SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/*"
    }


def test_errors_alarm_subtracts_refused_sign_ins_and_throttles_alarm(resources: dict[str, Any]) -> None:
    topic = {"Ref": alarm_topic(resources)}
    errors = resources["MigrateUserErrorsAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in errors["Metrics"]}
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "Errors"
    assert metrics["errors"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": FN}}
    ]
    # The handler's metric name (handlers.migrate_user_handler) and Powertools' namespace.
    assert metrics["refused"]["MetricStat"]["Metric"]["MetricName"] == "UserMigrationRefused"
    assert metrics["refused"]["MetricStat"]["Metric"]["Namespace"] == "CognitoBackup"
    assert metrics["failures"]["Expression"] == "errors - FILL(refused, 0)"
    assert [m["Id"] for m in errors["Metrics"] if m.get("ReturnData", True)] == ["failures"]
    assert errors["Threshold"] == 1 and errors["AlarmActions"] == [topic]
    throttles = resources["MigrateUserThrottlesAlarm"]["Properties"]
    assert throttles["MetricName"] == "Throttles" and throttles["Dimensions"][0]["Value"] == {"Ref": FN}
    assert throttles["AlarmActions"] == [topic]
    # The metric the alarm subtracts is the one the handler emits.
    handlers = (REPO / "layers/core/cognito_backup/handlers.py").read_text()
    assert 'name="UserMigrationRefused"' in handlers
