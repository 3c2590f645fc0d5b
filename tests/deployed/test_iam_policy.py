"""The test-support IAM evaluator decides as AWS documents (see iam_policy's docstring)."""

from __future__ import annotations

from typing import Any

import pytest
from iam_policy import Policy, PolicyError, Request, arn_match, conditions_true, evaluate, wildcard_match

BUCKET = "arn:aws:s3:::b"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy("p", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any = "s3:ListBucket", resource: Any = BUCKET, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def decide(statements: list[dict[str, Any]], action: str, resource: str = BUCKET, **context: Any) -> str:
    return evaluate([policy(*statements)], Request(action, resource, context)).decision


PREFIX_ONLY = allow(Condition={"StringLike": {"s3:prefix": ["backups", "backups/*"]}})


def test_default_deny_and_allow() -> None:
    assert decide([], "s3:ListBucket") == "implicit-deny"
    assert decide([allow()], "s3:ListBucket") == "allowed"
    assert decide([allow()], "s3:GetObject") == "implicit-deny"


def test_explicit_deny_beats_allow() -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert decide([allow(), deny], "s3:ListBucket") == "explicit-deny"


def test_actions_are_case_insensitive_with_wildcards() -> None:
    assert decide([allow("S3:listbucket")], "s3:ListBucket") == "allowed"
    assert decide([allow("s3:List*")], "s3:ListBucketVersions") == "allowed"
    assert decide([allow("s3:Get?bject")], "s3:GetObject", BUCKET) == "allowed"
    assert decide([allow("s3:Get?bject")], "s3:GetObjectVersion", BUCKET) == "implicit-deny"
    assert decide([allow(["kms:Decrypt", "s3:*"])], "s3:PutObject") == "allowed"


def test_not_action_and_not_resource() -> None:
    s = {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}
    assert decide([s], "s3:GetObject") == "allowed"
    assert decide([s], "s3:DeleteObject") == "implicit-deny"
    s = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/secret/*"}
    assert decide([s], "s3:GetObject", "arn:aws:s3:::b/public/x") == "allowed"
    assert decide([s], "s3:GetObject", "arn:aws:s3:::b/secret/x") == "implicit-deny"


def test_resources_are_case_sensitive_wildcards() -> None:
    s = allow("s3:GetObject", "arn:aws:s3:::b/backups/*")
    assert decide([s], "s3:GetObject", "arn:aws:s3:::b/backups/a/b.json") == "allowed"
    assert decide([s], "s3:GetObject", "arn:aws:s3:::b/Backups/a") == "implicit-deny"
    assert decide([s], "s3:GetObject", "arn:aws:s3:::b/other/a") == "implicit-deny"


def test_head_bucket_is_denied_by_a_prefix_condition() -> None:
    # HeadBucket carries no s3:prefix: StringLike is false on a missing key (moto.iam says true).
    assert decide([PREFIX_ONLY], "s3:ListBucket") == "implicit-deny"
    assert decide([PREFIX_ONLY], "s3:ListBucket", **{"s3:prefix": "backups/pool/"}) == "allowed"
    assert decide([PREFIX_ONLY], "s3:ListBucket", **{"s3:prefix": "other/"}) == "implicit-deny"
    assert decide([PREFIX_ONLY], "s3:ListBucket", **{"s3:prefix": ""}) == "implicit-deny"


def test_condition_keys_are_case_insensitive_values_case_sensitive() -> None:
    assert conditions_true({"StringEquals": {"S3:Prefix": "a"}}, {"s3:prefix": "a"})
    assert not conditions_true({"StringEquals": {"s3:prefix": "A"}}, {"s3:prefix": "a"})
    assert conditions_true({"StringEqualsIgnoreCase": {"s3:prefix": "A"}}, {"s3:prefix": "a"})


def test_and_across_operators_and_keys_or_across_values() -> None:
    cond = {"StringEquals": {"k1": ["a", "b"], "k2": "c"}, "Bool": {"k3": "true"}}
    assert conditions_true(cond, {"k1": "b", "k2": "c", "k3": True})
    assert not conditions_true(cond, {"k1": "z", "k2": "c", "k3": True})
    assert not conditions_true(cond, {"k1": "a", "k2": "c", "k3": False})
    assert not conditions_true(cond, {"k1": "a", "k3": True})


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("ArnLike", False),
        ("NumericEquals", False),
        ("Bool", False),
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("ArnNotLike", True),
        ("NumericNotEquals", True),
        ("StringEqualsIfExists", True),
        ("ArnLikeIfExists", True),
    ],
)
def test_a_missing_key(operator: str, expected: bool) -> None:
    assert conditions_true({operator: {"k": "1"}}, {}) is expected


def test_negated_operators_when_the_key_is_present() -> None:
    assert conditions_true({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "c"})
    assert not conditions_true({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "b"})
    assert not conditions_true({"StringNotLike": {"k": "a*"}}, {"k": "abc"})
    assert conditions_true({"StringEqualsIfExists": {"k": "a"}}, {"k": "a"})
    assert not conditions_true({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"})


def test_null() -> None:
    assert conditions_true({"Null": {"k": "true"}}, {})
    assert not conditions_true({"Null": {"k": "true"}}, {"k": "x"})
    assert conditions_true({"Null": {"k": "false"}}, {"k": "x"})
    assert not conditions_true({"Null": {"k": "false"}}, {})


def test_numeric_date_ip_binary() -> None:
    assert conditions_true({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": 1})
    assert not conditions_true({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 1})
    assert not conditions_true({"NumericEquals": {"k": "1"}}, {"k": "not a number"})
    assert conditions_true(
        {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        {"aws:CurrentTime": "2026-11-21T03:00:00Z"},
    )
    assert conditions_true({"DateGreaterThan": {"aws:EpochTime": "100"}}, {"aws:EpochTime": "200"})
    assert conditions_true({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"})
    assert conditions_true({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.0.1"})
    assert conditions_true({"BinaryEquals": {"k": "QUJD"}}, {"k": "QUJD"})


def test_arn_operators_match_part_by_part() -> None:
    assert arn_match(
        "arn:aws:cognito-idp:*:123456789012:userpool/*",
        "arn:aws:cognito-idp:us-east-1:123456789012:userpool/x",
    )
    assert not arn_match(
        "arn:aws:cognito-idp:*:123456789012:userpool/*",
        "arn:aws:cognito-idp:us-east-1:999999999999:userpool/x",
    )
    assert not arn_match("arn:aws:s3:::b", "not-an-arn")
    cond = {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}
    assert conditions_true(cond, {"aws:SourceArn": "arn:aws:s3:::b"})
    assert conditions_true(
        {"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::a*"}}, {"aws:SourceArn": "arn:aws:s3:::b"}
    )


def test_set_qualifiers() -> None:
    tags = {"aws:TagKeys": ["env", "team"]}
    assert conditions_true({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team", "x"]}}, tags)
    assert not conditions_true({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, tags)
    assert conditions_true({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, tags)
    assert not conditions_true({"ForAnyValue:StringEquals": {"aws:TagKeys": ["nope"]}}, tags)
    # A missing (or empty) key: ForAllValues is true, ForAnyValue false.
    assert conditions_true({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {})
    assert conditions_true({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {"aws:TagKeys": []})
    assert not conditions_true({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, {})
    assert conditions_true({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env"]}}, tags)
    assert not conditions_true({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["env"]}}, tags)


def test_wildcards() -> None:
    assert wildcard_match("a*c", "abbbc") and wildcard_match("a*c", "ac") and not wildcard_match("a?c", "ac")
    assert wildcard_match("a.c", "a.c") and not wildcard_match("a.c", "abc")  # no regex leaks


def test_resource_policies_bind_principals_and_their_denies_apply() -> None:
    role = "arn:aws:sts::123456789012:assumed-role/r/s"
    deny_tls = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": BUCKET,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    bucket = Policy("bucket", {"Statement": [deny_tls]})
    https = Request("s3:ListBucket", BUCKET, {"aws:SecureTransport": True}, role)
    http = Request("s3:ListBucket", BUCKET, {"aws:SecureTransport": False}, role)
    assert evaluate([policy(allow())], https, [bucket]).allowed
    assert evaluate([policy(allow())], http, [bucket]).decision == "explicit-deny"
    grant = Policy("bucket", {"Statement": [allow(Principal={"AWS": "123456789012"})]})
    assert evaluate([], https, [grant]).allowed  # same account: a resource policy alone suffices
    other = Policy("bucket", {"Statement": [allow(Principal={"AWS": "arn:aws:iam::999999999999:root"})]})
    assert not evaluate([], https, [other]).allowed


@pytest.mark.parametrize(
    "statement",
    [
        allow(Condition={"StringFuzzy": {"k": "v"}}),
        allow(Condition={"ForSomeValues:StringEquals": {"k": "v"}}),
        allow(Condition={"Null": {"k": "maybe"}}),
        {"Effect": "Allow", "Action": "s3:*"},
        {"Effect": "Permit", "Action": "s3:*", "Resource": "*"},
        allow(Principal="*"),
        allow(Unknown=1),
    ],
)
def test_what_it_cannot_read_raises(statement: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        decide([statement], "s3:ListBucket", k="v")
