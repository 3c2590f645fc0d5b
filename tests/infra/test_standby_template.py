"""The warm standby in template.yaml: off by default, alarmed when on, fed by passed verdicts only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfn_flip import load_yaml

pytestmark = pytest.mark.infra

TEMPLATE: dict[str, Any] = load_yaml((Path(__file__).resolve().parents[2] / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
STANDBY_RESOURCES = ("StandbySyncRule", "StandbySyncRuleRole", "StandbySyncFailedAlarm", "StandbyBehindAlarm")


def test_the_standby_is_off_unless_a_pool_is_given() -> None:
    assert TEMPLATE["Parameters"]["StandbyUserPoolId"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasStandby"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "StandbyUserPoolId"}, ""]}]
    }
    for name in STANDBY_RESOURCES:
        assert RESOURCES[name]["Condition"] == "HasStandby", name


def test_only_passed_snapshots_of_this_pool_and_bucket_start_a_mirror_into_the_standby() -> None:
    rule = RESOURCES["StandbySyncRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["cognito-backup"],
        "detail-type": ["Snapshot Validated"],
        "detail": {
            "verdict": ["passed"],
            "bucket": [{"Ref": "BackupBucket"}],
            "user_pool_id": [{"Ref": "UserPoolId"}],
        },
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "RestoreStateMachine"}
    assert '"mirror": true' in target["InputTransformer"]["InputTemplate"]["Fn::Sub"]
    statement = RESOURCES["StandbySyncRuleRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement == [
        {"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": "RestoreStateMachine"}}
    ]


def test_a_failed_or_late_standby_raises_an_alarm() -> None:
    failed = RESOURCES["StandbySyncFailedAlarm"]["Properties"]
    assert failed["MetricName"] == "StandbySyncFailed" and failed["ComparisonOperator"].startswith(
        "GreaterThan"
    )
    behind = RESOURCES["StandbyBehindAlarm"]["Properties"]
    assert behind["MetricName"] == "StandbySyncSucceeded" and behind["TreatMissingData"] == "breaching"
    assert behind["EvaluationPeriods"] == {"Ref": "StandbyMaxLagHours"} == behind["DatapointsToAlarm"]
    for alarm in (failed, behind):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_restore_function_knows_the_standby_pool() -> None:
    variables = RESOURCES["RestoreFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STANDBY_USER_POOL_ID"] == {"Ref": "StandbyUserPoolId"}
