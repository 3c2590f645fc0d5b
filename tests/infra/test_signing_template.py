"""The manifest-signing key in template.yaml: an HMAC key, only the exports (and the erasure,
which rewrites snapshots) may sign with it."""

from __future__ import annotations

from typing import Any

from conftest import load_template

EXPORT_ROLES = {"FullExportFunctionRole", "IncrementalExportFunctionRole"}
VERIFY_ROLES = {
    "ValidatorFunctionRole",
    "RestoreFunctionRole",
    "MigrateUserFunctionRole",
    "DrillFunctionRole",
}
# The erasure rewrites the snapshots that hold a person it erases and signs them again; it
# verifies what it reads (its revalidation). The one signer besides the exports.
REWRITE_ROLES = {"ForgetFunctionRole"}
MAC_ACTIONS = {"kms:GenerateMac", "kms:VerifyMac"}


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource.get("Properties", {})
    docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
    if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        docs.append(props["PolicyDocument"])
    return [s for d in docs for s in d["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement.get("Action", [])
    return {action} if isinstance(action, str) else set(action)


def _grants(template: dict[str, Any]) -> dict[str, set[str]]:
    """Role or policy -> the kms MAC actions (or wildcards that would cover them) it allows."""
    found: dict[str, set[str]] = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] not in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        for statement in _statements(resource):
            if statement.get("Effect") != "Allow":
                continue
            for action in _actions(statement):
                if action in MAC_ACTIONS or action in ("*", "kms:*") or action.startswith("kms:*Mac"):
                    found.setdefault(name, set()).add(action)
    return found


def test_the_signing_key_is_an_hmac_key_kept_with_the_snapshots() -> None:
    key = load_template()["Resources"]["SigningKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["KeySpec"] == "HMAC_256"
    assert key["Properties"]["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert "EnableKeyRotation" not in key["Properties"]  # KMS refuses rotation of HMAC keys
    assert key["DeletionPolicy"] == "Retain"  # kept snapshots are verified with it
    alias = load_template()["Resources"]["SigningKeyAlias"]
    assert alias["Properties"]["TargetKeyId"] == {"Ref": "SigningKey"}


def test_only_the_export_and_erasure_roles_can_generate_a_mac_and_only_on_the_signing_key() -> None:
    template = load_template()
    grants = _grants(template)
    assert grants == {
        **{role: {"kms:GenerateMac"} for role in EXPORT_ROLES},
        **{role: {"kms:VerifyMac"} for role in VERIFY_ROLES},
        **{role: MAC_ACTIONS for role in REWRITE_ROLES},
    }
    for role in EXPORT_ROLES | VERIFY_ROLES | REWRITE_ROLES:
        for statement in _statements(template["Resources"][role]):
            if _actions(statement) & MAC_ACTIONS:
                assert statement["Resource"] == {"Fn::GetAtt": ["SigningKey", "Arn"]}
                assert statement["Condition"] == {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}


def test_every_function_is_given_the_signing_key() -> None:
    template = load_template()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SIGNING_KEY_ARN"] == {"Fn::GetAtt": ["SigningKey", "Arn"]}
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert functions and all(
        "SIGNING_KEY_ARN" not in (f["Properties"].get("Environment", {}).get("Variables", {}))
        for f in functions
    )
