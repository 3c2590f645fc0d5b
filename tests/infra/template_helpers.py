"""Readers of template.yaml shared by the infra tests (test_template and test_migrate_template)."""

from __future__ import annotations

from typing import Any


def function_props(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A function's properties with the Globals applied (maps merged, like SAM does)."""
    merged = dict(template.get("Globals", {}).get("Function", {}))
    for key, value in template["Resources"][name]["Properties"].items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            inner = dict(merged[key])
            for k, v in value.items():
                inner[k] = {**inner[k], **v} if isinstance(v, dict) and isinstance(inner.get(k), dict) else v
            merged[key] = inner
        else:
            merged[key] = value
    return merged


def target(value: Any) -> str:
    """The logical id that a Ref or a GetAtt points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        return str(att[0] if isinstance(att, list) else att.split(".")[0])
    raise AssertionError(f"expected a Ref or a GetAtt, got {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(resources: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    role = resources[role_name]["Properties"]
    statements = [s for p in role.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]
    for arn in role.get("ManagedPolicyArns", []):
        managed = resources[target(arn)]
        statements += as_list(managed["Properties"]["PolicyDocument"]["Statement"])
    return statements


def alarm_topic(resources: dict[str, Any]) -> str:
    topics = of_type(resources, "AWS::SNS::Topic")
    assert len(topics) == 1, "every alarm goes to one SNS topic"
    return next(iter(topics))


def of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == type_}
