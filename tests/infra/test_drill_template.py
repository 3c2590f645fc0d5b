"""The restore drill in template.yaml: its schedule, its role's tag conditions, its state
machine's clean-up path, its alarms; and the dashboard, whose every metric a handler publishes."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import load_template

from cognito_backup.drill import DRILL_TAG

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
HANDLERS = REPO / "layers/core/cognito_backup/handlers.py"
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
METRIC_NAME = re.compile(r"^[A-Z][A-Za-z]+$")


def statements(role: str) -> dict[str, dict[str, Any]]:
    return {
        s["Sid"]: s
        for p in RESOURCES[role]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_drill_runs_monthly_by_default_and_can_be_switched_off() -> None:
    params = TEMPLATE["Parameters"]
    assert params["DrillSchedule"]["Default"] == "cron(0 4 1 * ? *)"
    assert params["EnableDrill"]["AllowedValues"] == ["true", "false"]
    (event,) = RESOURCES["DrillStateMachine"]["Properties"]["Events"].values()
    assert event["Properties"]["Schedule"] == {"Ref": "DrillSchedule"}
    assert event["Properties"]["State"] == {"Fn::If": ["DrillEnabled", "ENABLED", "DISABLED"]}
    assert TEMPLATE["Conditions"]["DrillEnabled"] == {"Fn::Equals": [{"Ref": "EnableDrill"}, "true"]}


def test_the_drill_role_creates_only_tagged_pools_and_touches_no_other() -> None:
    s = statements("DrillFunctionRole")
    create = s["CreateOnlyDrillPools"]
    assert as_list(create["Action"]) == ["cognito-idp:CreateUserPool"]
    assert create["Condition"] == {"Null": {f"aws:RequestTag/{DRILL_TAG}": "false"}}
    cognito = [x for x in s.values() if any(a.startswith("cognito-idp:") for a in as_list(x["Action"]))]
    for statement in cognito:
        actions = as_list(statement["Action"])
        if actions in (["cognito-idp:CreateUserPool"], ["cognito-idp:ListUserPools"]):
            continue
        assert statement["Condition"] == {"Null": {f"aws:ResourceTag/{DRILL_TAG}": "false"}}, statement["Sid"]
    (delete,) = [x for x in cognito if "cognito-idp:DeleteUserPool" in as_list(x["Action"])]
    assert delete["Sid"] == "BuildRestoreAndDeleteDrillPools"


def test_the_drill_role_writes_its_records_and_never_a_snapshot() -> None:
    s = statements("DrillFunctionRole")
    writes = [r["Fn::Sub"] for r in s["WriteDrillRecordsAndRestoreReports"]["Resource"]]
    assert "${BackupBucket.Arn}/${BackupPrefix}/${UserPoolId}/drills/*.json" in writes
    assert not [w for w in writes if w.endswith(("manifest.json", ".jsonl.gz"))]
    assert s["NeverWriteSnapshotObjects"]["Effect"] == "Deny"


def test_the_drill_machine_cleans_up_after_any_step_that_fails() -> None:
    states = RESOURCES["DrillStateMachine"]["Properties"]["Definition"]["States"]
    run = states["RunStep"]
    assert [c["Next"] for c in run["Catch"]] == ["DrillFailed", "Abort"]
    assert run["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
    never = run["Retry"][0]
    assert never["MaxAttempts"] == 0 and "DrillFailedError" in never["ErrorEquals"]
    # Each step's answer (with the drill id) is the next step's event.
    assert states["CountStep"]["Parameters"]["event.$"] == "$.step.result"
    assert states["IsComplete"]["Default"] == "Abort"
    assert states["Abort"]["Parameters"]["Payload"] == {"abort": True, "event.$": "$.event"}
    assert states["Abort"]["Next"] == "DrillAborted" and states["DrillAborted"]["Type"] == "Fail"
    # The step guard comes before the execution's own timeout, which no Catch sees.
    definition = RESOURCES["DrillStateMachine"]["Properties"]["Definition"]
    steps = states["Initialise"]["Parameters"]["max_iterations"]
    assert definition["TimeoutSeconds"] > steps * run["TimeoutSeconds"]


@pytest.mark.parametrize(
    ("namespace", "metric"),
    [
        ("CognitoBackup", "DrillFailed"),
        ("CognitoBackup", "DrillOverdue"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
    ],
)
def test_the_drill_alarms(namespace: str, metric: str) -> None:
    alarms = [
        a
        for name, a in RESOURCES.items()
        if a["Type"] == "AWS::CloudWatch::Alarm"
        and name.startswith("Drill")
        and a["Properties"]["Namespace"] == namespace
        and a["Properties"]["MetricName"] == metric
    ]
    assert len(alarms) == 1
    props = alarms[0]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    if metric == "DrillOverdue":
        # None passed in the period: decided by the daily check, and a silent check breaches.
        assert props["TreatMissingData"] == "breaching"
        assert props["Period"] * props["EvaluationPeriods"] <= 7 * 86400  # CloudWatch's limit


def test_the_daily_check_runs_the_drill_function_with_check() -> None:
    events = RESOURCES["DrillFunction"]["Properties"]["Events"]
    assert json.loads(events["DailyCheck"]["Properties"]["Input"]) == {"check": True}


# ---------------------------------------------------------------------- the dashboard
def dashboard_metrics() -> list[tuple[str, str, list[str]]]:
    body, _ = RESOURCES["BackupDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    found = []
    for widget in json.loads(body)["widgets"]:
        for row in widget["properties"].get("metrics", []):
            names = [x for x in row if isinstance(x, str)]
            if names:
                found.append((names[0], names[1], names[2:]))
    return found


def published_metrics() -> set[str]:
    """Every metric name handlers.py can publish: the constants in `add_metric(name=...)`, and
    where the name is a variable, the metric-like constants of the function that sets it."""
    tree = ast.parse(HANDLERS.read_text(encoding="utf-8"))
    names: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_metric"):
                continue
            (expr,) = [k.value for k in call.keywords if k.arg == "name"]
            scope = function if isinstance(expr, ast.Name) else expr
            names |= {
                c.value
                for c in ast.walk(scope)
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and METRIC_NAME.match(c.value)
            }
    return names


def test_every_dashboard_metric_is_published_by_a_handler() -> None:
    shown = dashboard_metrics()
    assert len(shown) >= 10
    published = published_metrics()
    for namespace, metric, dimensions in shown:
        assert namespace == "CognitoBackup", metric
        assert dimensions == ["service", "cognito-backup"], metric  # Powertools' one dimension
        assert metric in published, f"the dashboard shows {metric}, which no handler publishes"


def test_the_dashboard_covers_issue_14_item_4() -> None:
    shown = {metric for _, metric, _ in dashboard_metrics()}
    assert {"LastFullSnapshotAgeSeconds", "LastIncrementalSnapshotAgeSeconds"} <= shown  # ages
    assert {"UsersExported", "SnapshotValid", "SnapshotInvalid"} <= shown  # users, verdicts
    assert {"DrillSucceeded", "DrillFailed", "DrillProjectedRestoreSeconds"} <= shown  # drills


def test_the_check_finds_a_metric_no_handler_publishes() -> None:
    assert "NoSuchMetric" not in published_metrics()
    assert {"FullExportSucceeded", "DrillOverdue", "SnapshotAgeSeconds"} <= published_metrics()
