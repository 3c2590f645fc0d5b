"""The backup key's policy, resolved from template.yaml and evaluated: only the break-glass role
may schedule its deletion, disable it or its rotation, or change its policy; everything else
stays with the account (the key is never unmanageable).

The callers hold an identity policy allowing kms:* (an administrator, the account root, the
role CloudFormation deploys with): what stops them is the key policy's explicit Deny alone.
"""

from __future__ import annotations

import pytest
from cfn_roles import Resolver, Stack, load_template
from iam_policy import Policy, Request, evaluate

TEMPLATE = load_template()
ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k-1"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/backup-break-glass"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/cloudformation-deploy"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMINISTRATOR = Policy(
    "administrator", {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
)
RESERVED = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation", "kms:PutKeyPolicy")
KEPT = ("kms:Decrypt", "kms:CancelKeyDeletion", "kms:EnableKeyRotation", "kms:TagResource", "kms:CreateGrant")


def key_policy(break_glass: str = "", key: str = "BackupKey") -> Policy:
    stack = Stack(
        account=ACCOUNT,
        parameters={"UserPoolId": "us-east-1_Src", "BreakGlassRoleArn": break_glass},
        refs={"BackupBucket": "bkt"},
    )
    document = Resolver(TEMPLATE, stack).resolve(TEMPLATE["Resources"][key]["Properties"]["KeyPolicy"])
    return Policy(key, document)


def decision(policy: Policy, action: str, principal: str) -> str:
    request = Request(
        action, KEY, {"aws:PrincipalArn": principal, "aws:PrincipalAccount": ACCOUNT}, principal
    )
    return evaluate([ADMINISTRATOR], request, [policy]).decision


@pytest.mark.parametrize("action", RESERVED)
def test_only_the_break_glass_role_may_destroy_the_key_or_change_its_policy(action: str) -> None:
    policy = key_policy(BREAK_GLASS)
    assert decision(policy, action, BREAK_GLASS) == "allowed"
    for principal in (ADMIN, DEPLOYER, ROOT):
        assert decision(policy, action, principal) == "explicit-deny", principal


@pytest.mark.parametrize("action", RESERVED)
def test_the_break_glass_role_may_live_in_another_account(action: str) -> None:
    """A role of a security account, which this account's administrators cannot take over; the
    key policy itself allows it (it holds no identity policy here)."""
    elsewhere = "arn:aws:iam::222233334444:role/backup-break-glass"
    request = Request(
        action, KEY, {"aws:PrincipalArn": elsewhere, "aws:PrincipalAccount": "222233334444"}, elsewhere
    )
    assert evaluate([], request, [key_policy(elsewhere)]).decision == "allowed"
    assert evaluate([], request, [key_policy(BREAK_GLASS)]).decision == "explicit-deny"


@pytest.mark.parametrize("action", RESERVED)
def test_without_a_break_glass_role_only_the_root_user_may(action: str) -> None:
    # Never "nobody, ever": a key policy no one may change makes every later stack update that
    # touches it fail, and a dev stack's key undeletable. The root user is the last resort.
    policy = key_policy("")
    assert decision(policy, action, ROOT) == "allowed"
    for principal in (BREAK_GLASS, ADMIN, DEPLOYER):
        assert decision(policy, action, principal) == "explicit-deny", principal


@pytest.mark.parametrize("action", KEPT)
def test_the_key_stays_usable_and_administrable(action: str) -> None:
    for break_glass in ("", BREAK_GLASS):
        assert decision(key_policy(break_glass), action, ADMIN) == "allowed"


# The signing key: without it no snapshot verifies, so none can be restored.
SIGNING_RESERVED = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy")


@pytest.mark.parametrize("action", SIGNING_RESERVED)
def test_the_signing_key_is_as_protected_as_the_backup_key(action: str) -> None:
    with_role = key_policy(BREAK_GLASS, "SigningKey")
    assert decision(with_role, action, BREAK_GLASS) == "allowed"
    without = key_policy("", "SigningKey")
    assert decision(without, action, ROOT) == "allowed"
    for policy in (with_role, without):
        for principal in (ADMIN, DEPLOYER):
            assert decision(policy, action, principal) == "explicit-deny", principal


@pytest.mark.parametrize("action", ("kms:VerifyMac", "kms:DescribeKey", "kms:TagResource"))
def test_the_signing_key_stays_usable(action: str) -> None:
    assert decision(key_policy("", "SigningKey"), action, ADMIN) == "allowed"
