"""Assertions on template.yaml and samconfig.toml themselves.

moto's CloudFormation ignores versioning, lifecycle, alarms and bucket policies, so the
infrastructure contract is checked on the template text: least-privilege roles, log retention,
alarms on every failure and on late backups, an encrypted and private bucket, the validator's
manifest-only trigger. `make infra-check` runs the real tools (sam validate --lint, cfn-lint,
checkov, sam build) on top of this.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_template
from template_helpers import alarm_topic, as_list, function_props, of_type, role_statements, target

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
SAMCONFIG_PATH = REPO / "samconfig.toml"

EXPORT_FUNCTIONS = {
    "FullExportFunction": "full_export",
    "IncrementalExportFunction": "incremental_export",
}
ALL_FUNCTIONS = {
    **EXPORT_FUNCTIONS,
    "ValidatorFunction": "validator",
    "RestoreFunction": "restore",
    "DrillFunction": "drill",
    "ForgetFunction": "forget",
}
STATE_MACHINES = {
    "FullExportStateMachine": "FullExportFunction",
    "IncrementalExportStateMachine": "IncrementalExportFunction",
    "RestoreStateMachine": "RestoreFunction",
}
# Write actions that AWS does not scope to resources: "*" is the only possible Resource.
# CreateUserPool names no resource type either; the drill's role narrows it by aws:RequestTag
# (tests/infra/test_drill_template.py).
NO_RESOURCE_LEVEL_PERMISSIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cognito-idp:CreateUserPool",
    # CloudWatch Logs' vended-log delivery (SetLogDeliveryConfiguration to a log group, the restore
    # role's DeliverRebuiltPoolLogsToLogGroups, only through Cognito: aws:ViaAWSService).
    "logs:CreateLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:PutResourcePolicy",
}
READ_VERBS = ("Get", "List", "Describe", "Head")


# ---------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = template["Resources"]
    return res


def leaves(value: Any) -> Iterator[str]:
    """Every string inside a value, intrinsic functions included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)


def function_role(template: dict[str, Any], fn: str) -> str:
    return target(function_props(template, fn)["Role"])


def alarms_on(resources: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        a["Properties"] | {"_condition": a.get("Condition")}
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric
    ]


def backup_bucket(template: dict[str, Any]) -> str:
    return target(template["Globals"]["Function"]["Environment"]["Variables"]["BUCKET_NAME"])


# ---------------------------------------------------------------- functions, roles, logs
def test_globals_set_runtime_architecture_tracing_and_powertools(template: dict[str, Any]) -> None:
    g = template["Globals"]["Function"]
    assert g["Runtime"] == "python3.13"
    assert g["Architectures"] == ["arm64"]
    assert g["Tracing"] == "Active"
    env = g["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "cognito-backup"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "CognitoBackup"
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_the_four_functions_exist_with_their_code_directories(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # + the migration trigger, conditional: tests/infra/test_migrate_template.py
    migration = {"MigrateUserFunction"}
    assert set(of_type(resources, "AWS::Serverless::Function")) == set(ALL_FUNCTIONS) | migration
    for fn, directory in ALL_FUNCTIONS.items():
        props = function_props(template, fn)
        assert props["CodeUri"].rstrip("/") == f"functions/{directory}"
        assert props["Handler"] == "app.handler"
        assert props["Layers"] == [{"Ref": "CoreLayer"}]


@pytest.mark.parametrize("fn", sorted(ALL_FUNCTIONS))
def test_every_handler_file_exists(template: dict[str, Any], fn: str) -> None:
    props = function_props(template, fn)
    module, _, attribute = props["Handler"].rpartition(".")
    path = REPO / props["CodeUri"] / f"{module.replace('.', '/')}.py"
    assert attribute == "handler"
    assert path.is_file(), f"{fn}: handler module {path.relative_to(REPO)} is missing"


def test_every_function_has_its_own_role(template: dict[str, Any], resources: dict[str, Any]) -> None:
    roles = {fn: function_role(template, fn) for fn in ALL_FUNCTIONS}
    assert len(set(roles.values())) == len(roles), f"roles are shared: {roles}"
    for fn, role in roles.items():
        assert resources[role]["Type"] == "AWS::IAM::Role", fn
        trust = as_list(resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}], fn


@pytest.mark.parametrize("fn", sorted(ALL_FUNCTIONS))
def test_every_function_logs_to_its_own_log_group_with_retention(
    template: dict[str, Any], resources: dict[str, Any], fn: str
) -> None:
    log_group = target(function_props(template, fn)["LoggingConfig"]["LogGroup"])
    group = resources[log_group]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # ...and its role may write there, and only there.
    writes = [
        s
        for s in role_statements(resources, function_role(template, fn))
        if "logs:PutLogEvents" in as_list(s["Action"])
    ]
    assert [target(s["Resource"]) for s in writes] == [log_group]


@pytest.mark.parametrize("fn", sorted(ALL_FUNCTIONS))
def test_role_write_actions_are_never_wildcards(
    template: dict[str, Any], resources: dict[str, Any], fn: str
) -> None:
    for statement in role_statements(resources, function_role(template, fn)):
        assert "NotAction" not in statement and "NotResource" not in statement
        if statement["Effect"] == "Deny":  # guard rails on top of the Allows: only narrow writes
            assert as_list(statement["Action"]) == ["s3:PutObject"], statement
            continue
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), f"{fn}: wildcard action in {actions}"
        if "*" in leaves(statement["Resource"]):
            writes = [
                a
                for a in actions
                if not a.split(":")[1].startswith(READ_VERBS) and a not in NO_RESOURCE_LEVEL_PERMISSIONS
            ]
            assert not writes, f"{fn}: write actions {writes} on Resource '*'"


def test_reads_of_the_source_pool_use_its_exact_arn(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    for fn in EXPORT_FUNCTIONS:
        statements = role_statements(resources, function_role(template, fn))
        (pool,) = [s for s in statements if "cognito-idp:ListUsers" in as_list(s["Action"])]
        arn = pool["Resource"]["Fn::Sub"][0]
        assert arn.endswith(":userpool/${UserPoolId}"), arn


def test_s3_access_is_narrowed_to_the_backup_prefix(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    """Reads under the prefix; every write (put, tag, delete) under the stack's own pool."""
    pool = "${BackupBucket.Arn}/${BackupPrefix}/${UserPoolId}/"
    for fn in ALL_FUNCTIONS:
        for s in role_statements(resources, function_role(template, fn)):
            actions = as_list(s["Action"])
            if s["Effect"] == "Deny":
                continue
            if any(a.startswith("s3:List") for a in actions):
                assert s["Condition"]["StringLike"]["s3:prefix"], fn
            elif any(a.startswith("s3:") for a in actions):
                arns = [x for x in leaves(s["Resource"]) if x.startswith("${BackupBucket.Arn}")]
                assert arns and len(arns) == len(as_list(s["Resource"])), (fn, s["Sid"])
                writes = [a for a in actions if not a.split(":")[1].startswith(READ_VERBS)]
                under = pool if writes else "${BackupBucket.Arn}/${BackupPrefix}/"
                assert all(a.startswith(under) for a in arns), (fn, s["Sid"], arns)


def test_export_functions_run_one_at_a_time(template: dict[str, Any]) -> None:
    for fn in EXPORT_FUNCTIONS:
        assert function_props(template, fn)["ReservedConcurrentExecutions"] == 1


def test_layer_is_built_for_python313_on_arm64(resources: dict[str, Any]) -> None:
    layer = resources["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/core"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert (REPO / "layers/core/requirements.txt").is_file()


# ---------------------------------------------------------------- alarms
def test_every_alarm_notifies_the_one_topic(resources: dict[str, Any]) -> None:
    topic = alarm_topic(resources)
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert {"Ref": topic} in alarm["Properties"]["AlarmActions"], name


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
@pytest.mark.parametrize("fn", sorted(ALL_FUNCTIONS))
def test_every_function_has_errors_and_throttles_alarms(
    resources: dict[str, Any], fn: str, metric: str
) -> None:
    topic = alarm_topic(resources)
    matching = [
        a
        for a in alarms_on(resources, "AWS/Lambda", metric)
        if a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": fn}}]
    ]
    assert len(matching) == 1, f"{fn}: no {metric} alarm"
    (alarm,) = matching
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": topic}]


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut"])
@pytest.mark.parametrize("sm", sorted(STATE_MACHINES))
def test_every_state_machine_has_failure_alarms(resources: dict[str, Any], sm: str, metric: str) -> None:
    matching = [
        a
        for a in alarms_on(resources, "AWS/States", metric)
        if a["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": sm}}]
    ]
    assert len(matching) == 1, f"{sm}: no {metric} alarm"


def test_an_invalid_snapshot_raises_an_alarm(resources: dict[str, Any]) -> None:
    (alarm,) = alarms_on(resources, "CognitoBackup", "SnapshotInvalid")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "cognito-backup"}]
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


@pytest.mark.parametrize(
    ("metric", "parameter", "default"),
    [
        ("FullExportSucceeded", "FullExportMaxAgeHours", 26),
        ("IncrementalExportSucceeded", "IncrementalExportMaxAgeHours", 2),
    ],
)
def test_stale_backup_alarms_treat_missing_data_as_breaching(
    template: dict[str, Any], resources: dict[str, Any], metric: str, parameter: str, default: int
) -> None:
    (alarm,) = alarms_on(resources, "CognitoBackup", metric)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "cognito-backup"}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["Period"] == 3600
    assert alarm["EvaluationPeriods"] == {"Ref": parameter}
    assert alarm["DatapointsToAlarm"] == {"Ref": parameter}
    assert template["Parameters"][parameter]["Default"] == default
    # Period x EvaluationPeriods may not exceed 7 days for hourly periods.
    assert template["Parameters"][parameter]["MaxValue"] <= 168
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"
    # Whatever the schedules say: a disabled export is a stale backup, and must alarm.
    assert alarm["_condition"] is None


def test_failed_validations_land_in_an_encrypted_queue_that_alarms(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    config = function_props(template, "ValidatorFunction")["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] <= 2
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue = target(on_failure["Destination"])
    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    assert "KmsMasterKeyId" in resources[queue]["Properties"]
    (alarm,) = alarms_on(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert target(alarm["Dimensions"][0]["Value"]) == queue
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources: dict[str, Any]) -> None:
    topic = resources[alarm_topic(resources)]["Properties"]
    key = resources[target(topic["KmsMasterKeyId"])]
    principals = [s["Principal"] for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals


# ---------------------------------------------------------------- bucket
def test_backup_bucket_is_versioned_kms_encrypted_and_private(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    bucket = resources[backup_bucket(template)]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert rule["BucketKeyEnabled"] is True
    assert "LoggingConfiguration" in props


def test_every_bucket_blocks_all_public_access(resources: dict[str, Any]) -> None:
    for name, bucket in of_type(resources, "AWS::S3::Bucket").items():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name


def test_backup_bucket_policy_denies_insecure_transport_and_other_encryption(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    bucket = backup_bucket(template)
    (policy,) = [
        p
        for p in of_type(resources, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    statements = as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    deny_tls = [
        s for s in statements if s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(deny_tls) == 1
    assert deny_tls[0]["Effect"] == "Deny" and deny_tls[0]["Principal"] == "*"
    assert deny_tls[0]["Action"] == "s3:*"
    deny_sse = [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("StringNotEquals", {}).get("s3:x-amz-server-side-encryption")
        == "aws:kms"
    ]
    assert deny_sse and deny_sse[0]["Action"] == "s3:PutObject"


def test_lifecycle_comes_from_the_parameters(template: dict[str, Any], resources: dict[str, Any]) -> None:
    (rule,) = resources[backup_bucket(template)]["Properties"]["LifecycleConfiguration"]["Rules"]
    text = str(rule)
    for parameter in ("TransitionToIADays", "TransitionToGlacierDays", "ExpirationDays"):
        assert f"'Ref': '{parameter}'" in text, parameter
    assert rule["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionExpirationDays"}
    }
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1


def test_object_lock_only_when_asked_for(template: dict[str, Any], resources: dict[str, Any]) -> None:
    props = resources[backup_bucket(template)]["Properties"]
    assert props["ObjectLockEnabled"]["Fn::If"][0] == "ObjectLockOn"
    assert props["ObjectLockConfiguration"]["Fn::If"][0] == "ObjectLockOn"
    assert template["Conditions"]["ObjectLockOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ObjectLockRetentionDays"}, 0]}]
    }


# ---------------------------------------------------------------- triggers and state machines
@pytest.mark.parametrize(
    ("sm", "parameter", "default", "switch"),
    [
        ("FullExportStateMachine", "FullExportSchedule", "cron(0 3 * * ? *)", "FullExportEnabled"),
        (
            "IncrementalExportStateMachine",
            "IncrementalExportSchedule",
            "rate(1 hour)",
            "IncrementalExportEnabled",
        ),
    ],
)
def test_schedules_come_from_the_parameters(
    template: dict[str, Any], resources: dict[str, Any], sm: str, parameter: str, default: str, switch: str
) -> None:
    assert template["Parameters"][parameter]["Default"] == default
    (event,) = resources[sm]["Properties"]["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": parameter}
    assert event["Properties"]["State"] == {"Fn::If": [switch, "ENABLED", "DISABLED"]}


@pytest.mark.parametrize(("sm", "fn"), sorted(STATE_MACHINES.items()))
def test_state_machines_loop_until_complete_with_a_guard(resources: dict[str, Any], sm: str, fn: str) -> None:
    props = resources[sm]["Properties"]
    assert props["Type"] == "STANDARD"
    assert target(props["DefinitionSubstitutions"]["FunctionArn"]) == fn
    states = props["Definition"]["States"]
    tasks = [s for s in states.values() if s["Type"] == "Task"]
    assert len(tasks) == 1 and tasks[0]["Parameters"]["FunctionName"] == "${FunctionArn}"
    (choice,) = [s for s in states.values() if s["Type"] == "Choice"]
    loop = [c for c in choice["Choices"] if states.get(c["Next"]) is tasks[0]]
    assert len(loop) == 1, "exactly one way back to the task"
    conditions = loop[0]["And"]
    assert {"Variable": "$.step.result.status", "StringEquals": "incomplete"} in conditions
    assert any("NumericLessThanPath" in c or "NumericLessThan" in c for c in conditions), "no iteration guard"
    assert any(s["Type"] == "Fail" for s in states.values())
    assert any(s["Type"] == "Succeed" for s in states.values())


def test_validator_is_triggered_only_by_manifest_keys(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    bucket = backup_bucket(template)
    assert resources[bucket]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    (event,) = resources["ValidatorFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": bucket}]
    filters = pattern["detail"]["object"]["key"]
    assert filters
    for key_filter in filters:
        ((kind, value),) = key_filter.items()
        text = value["Fn::Sub"] if isinstance(value, dict) else value
        assert kind in {"suffix", "wildcard"}, key_filter
        assert text.endswith("/manifest.json"), key_filter


def test_every_checkov_suppression_gives_a_reason(resources: dict[str, Any]) -> None:
    for name, resource in resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV"), name
            assert len(skip.get("comment", "")) >= 20, f"{name}: {skip['id']} without a real reason"


def test_outputs_give_the_restore_command(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    command = outputs["RestoreCommand"]["Value"]["Fn::Sub"]
    assert command.startswith("sam remote invoke RestoreFunction ")
    assert "--stack-name ${AWS::StackName}" in command and "--event-file events/restore.json" in command
    for name in ("BackupBucketName", "AlarmTopicArn", "RestoreStateMachineArn", "RestoreFunctionName"):
        assert name in outputs


# ---------------------------------------------------------------- samconfig.toml
def test_samconfig_has_default_and_prod_environments() -> None:
    config = tomllib.loads(SAMCONFIG_PATH.read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    for env in ("default", "prod"):
        assert config[env]["build"]["parameters"] == {"cached": True, "parallel": True}
        assert config[env]["validate"]["parameters"]["lint"] is True
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["resolve_s3"] is True
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
        assert "UserPoolId=" in deploy["parameter_overrides"]
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


def test_state_machines_share_one_loop(resources: dict[str, Any]) -> None:
    """Identical definitions but for their comment, timeout and step limit: a fix to one loop
    (a retry, a guard) cannot be forgotten in the others."""

    def shape(sm: str) -> dict[str, Any]:
        definition = dict(resources[sm]["Properties"]["Definition"])
        del definition["Comment"], definition["TimeoutSeconds"]
        definition["States"]["Initialise"]["Parameters"]["max_iterations"] = "N"
        return definition

    first, *others = sorted(STATE_MACHINES)
    for sm in others:
        assert shape(sm) == shape(first), sm


def all_subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct} | all_subclasses(direct)}


@pytest.mark.parametrize("sm", sorted(STATE_MACHINES))
def test_errors_never_retried_are_named_after_the_packages_errors(resources: dict[str, Any], sm: str) -> None:
    # Lambda's Python runtime reports an unhandled exception by its own class name, never by a base
    # class's: a retrier naming a class that does not exist (renamed, moved, misspelt), or a
    # subclass left out, would silently retry that error after all.
    import importlib
    import pkgutil

    import cognito_backup
    from cognito_backup.errors import BackupError

    for module in pkgutil.iter_modules(cognito_backup.__path__):
        importlib.import_module(f"cognito_backup.{module.name}")
    classes = {cls.__name__: cls for cls in all_subclasses(BackupError)}
    retriers = resources[sm]["Properties"]["Definition"]["States"]["RunStep"]["Retry"]
    never = [r for r in retriers if r.get("MaxAttempts") == 0]
    assert never and retriers[0] is never[0], "the never-retried errors must come before States.TaskFailed"
    listed = {name for r in never for name in r["ErrorEquals"]}
    assert listed <= set(classes), listed - set(classes)
    for name in listed:
        left_out = {sub.__name__ for sub in all_subclasses(classes[name])} - listed
        assert not left_out, f"{name} is never retried but its subclasses {left_out} are"
