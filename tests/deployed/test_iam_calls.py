"""Recorded calls map to the IAM actions, resources and context keys AWS documents."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from call_recorder import RecordedCall, record_calls
from iam_calls import AwsFacts, UnmappedCallError, authorizations
from moto import mock_aws

KEY = "arn:aws:kms:us-east-1:123456789012:key/k-1"
FACTS = AwsFacts(
    account="123456789012",
    principal="arn:aws:sts::123456789012:assumed-role/r/s",
    bucket_default_kms_key={"b": KEY},
    kms_key_arns={"k-1": KEY},
)


def mapped(
    operation: str, service: str = "s3", error: str | None = None, **params: Any
) -> list[tuple[str, str, dict[str, Any]]]:
    call = RecordedCall(service, operation, params, "us-east-1", error_code=error)
    out = []
    for a in authorizations(call, FACTS):
        ctx = {k: v for k, v in a.request.context.items() if not k.startswith("aws:")}
        out.append((a.request.action, a.request.resource, ctx))
    return out


VIA_S3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": "123456789012"}


def test_head_bucket_is_list_bucket_without_a_prefix() -> None:
    assert mapped("HeadBucket", Bucket="b") == [("s3:ListBucket", "arn:aws:s3:::b", {})]


def test_listings_carry_their_prefix_only_when_given() -> None:
    assert mapped("ListObjectsV2", Bucket="b", Prefix="backups/p/", MaxKeys=1) == [
        ("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "backups/p/", "s3:max-keys": 1})
    ]
    assert mapped("ListObjectsV2", Bucket="b") == [("s3:ListBucket", "arn:aws:s3:::b", {})]
    assert mapped("ListObjectVersions", Bucket="b", Prefix="x") == [
        ("s3:ListBucketVersions", "arn:aws:s3:::b", {"s3:prefix": "x"})
    ]


def test_reads_by_version_and_of_kms_objects() -> None:
    assert mapped("GetObject", Bucket="b", Key="k") == [
        ("s3:GetObject", "arn:aws:s3:::b/k", {}),
        ("kms:Decrypt", KEY, VIA_S3),
    ]
    assert mapped("HeadObject", Bucket="b", Key="k", VersionId="v")[0] == (
        "s3:GetObjectVersion",
        "arn:aws:s3:::b/k",
        {},
    )
    # A key that does not exist: 404 only with ListBucket (no prefix), else S3 answers 403.
    assert mapped("GetObject", error="NoSuchKey", Bucket="b", Key="k") == [
        ("s3:GetObject", "arn:aws:s3:::b/k", {}),
        ("s3:ListBucket", "arn:aws:s3:::b", {}),
    ]
    # An object in a bucket without a KMS default: no KMS.
    assert mapped("GetObject", Bucket="plain", Key="k") == [("s3:GetObject", "arn:aws:s3:::plain/k", {})]


def test_writes_with_encryption_and_tags() -> None:
    assert mapped("PutObject", Bucket="b", Key="k", ServerSideEncryption="aws:kms", SSEKMSKeyId=KEY) == [
        (
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY,
            },
        ),
        ("kms:GenerateDataKey", KEY, VIA_S3),
    ]
    by_default = mapped("PutObject", Bucket="b", Key="k", Tagging="a=1")
    assert [a for a, _, _ in by_default] == ["s3:PutObject", "s3:PutObjectTagging", "kms:GenerateDataKey"]
    assert by_default[0][2] == {"s3:RequestObjectTagKeys": ["a"], "s3:RequestObjectTag/a": "1"}
    assert [a for a, _, _ in mapped("PutObject", Bucket="b", Key="k", ServerSideEncryption="AES256")] == [
        "s3:PutObject"
    ]
    # SSE-C: the algorithm header is a condition key (the bucket policy denies it), and S3 asks
    # no KMS key for it.
    assert mapped("PutObject", Bucket="b", Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey="x") == [
        ("s3:PutObject", "arn:aws:s3:::b/k", {"s3:x-amz-server-side-encryption-customer-algorithm": "AES256"})
    ]


def test_tags_deletes_copies_and_bucket_configuration() -> None:
    assert mapped("GetObjectTagging", Bucket="b", Key="k")[0][0] == "s3:GetObjectTagging"
    assert (
        mapped("GetObjectTagging", Bucket="b", Key="k", VersionId="v")[0][0] == "s3:GetObjectVersionTagging"
    )
    assert mapped(
        "PutObjectTagging", Bucket="b", Key="k", Tagging={"TagSet": [{"Key": "t", "Value": "v"}]}
    ) == [("s3:PutObjectTagging", "arn:aws:s3:::b/k", {"s3:RequestObjectTagKeys": ["t"]})]
    assert mapped("PutObjectTagging", Bucket="b", Key="k", VersionId="v", Tagging={})[0][0] == (
        "s3:PutObjectVersionTagging"
    )
    assert mapped("DeleteObject", Bucket="b", Key="k")[0][0] == "s3:DeleteObject"
    assert mapped("DeleteObject", Bucket="b", Key="k", VersionId="v")[0][0] == "s3:DeleteObjectVersion"
    assert mapped("GetBucketEncryption", Bucket="b") == [
        ("s3:GetEncryptionConfiguration", "arn:aws:s3:::b", {})
    ]
    copy = mapped("CopyObject", Bucket="b", Key="to", CopySource="b/from?versionId=v1")
    assert [(a, r) for a, r, _ in copy] == [
        ("s3:GetObjectVersion", "arn:aws:s3:::b/from"),
        ("kms:Decrypt", KEY),
        ("s3:PutObject", "arn:aws:s3:::b/to"),
        ("kms:GenerateDataKey", KEY),
    ]


def test_cognito_operations_on_their_pool() -> None:
    pool = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_Abc"
    assert mapped("AdminDeleteUserAttributes", "cognito-idp", UserPoolId="us-east-1_Abc") == [
        ("cognito-idp:AdminDeleteUserAttributes", pool, {})
    ]
    assert mapped("DescribeUserPoolDomain", "cognito-idp", Domain="d") == [
        ("cognito-idp:DescribeUserPoolDomain", "*", {})
    ]


def test_direct_kms_calls_have_no_via_service() -> None:
    assert mapped("GenerateMac", "kms", KeyId="k-1", MacAlgorithm="HMAC_SHA_256") == [
        ("kms:GenerateMac", KEY, {"kms:CallerAccount": "123456789012", "kms:MacAlgorithm": "HMAC_SHA_256"})
    ]


def test_put_events_names_the_bus_and_the_entry_source() -> None:
    entries = [{"Source": "cognito-backup", "DetailType": "Snapshot Validated", "Detail": "{}"}]
    assert mapped("PutEvents", "events", Entries=entries) == [
        (
            "events:PutEvents",
            "arn:aws:events:us-east-1:123456789012:event-bus/default",
            {"events:source": "cognito-backup", "events:detail-type": "Snapshot Validated"},
        )
    ]


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("events", "PutRule", {"Name": "r"}),
        ("s3", "PutBucketPolicy", {"Bucket": "b"}),
        ("s3", "CreateMultipartUpload", {"Bucket": "b", "Key": "k"}),
        ("cognito-idp", "GetUser", {"AccessToken": "t"}),
        ("kms", "CreateKey", {}),
        ("sqs", "SendMessage", {}),
    ],
)
def test_an_unknown_operation_fails_loudly(service: str, operation: str, params: dict[str, Any]) -> None:
    with pytest.raises(UnmappedCallError):
        mapped(operation, service, **params)


def test_the_recorder_sees_only_clients_made_inside_its_block() -> None:
    with mock_aws():
        setup = boto3.client("s3", region_name="us-east-1")
        setup.create_bucket(Bucket="bucket-x")
        with record_calls() as log:
            inside = boto3.client("s3", region_name="us-east-1")
            inside.put_object(Bucket="bucket-x", Key="k", Body=b"secret body")
            setup.list_objects_v2(Bucket="bucket-x")  # made before the block: not recorded
            with pytest.raises(inside.exceptions.NoSuchKey):
                inside.get_object(Bucket="bucket-x", Key="missing")
        inside.head_bucket(Bucket="bucket-x")  # still hooked after the block
    assert log.operations() == ["s3:PutObject", "s3:GetObject", "s3:HeadBucket"]
    put, get, _ = log.calls
    assert put.params["Body"] == "<body>" and put.status == 200 and put.region == "us-east-1"
    assert get.error_code == "NoSuchKey" and get.params["Key"] == "missing"


def test_log_delivery_needs_what_each_destination_asks_of_the_caller() -> None:
    facts = AwsFacts(account="123456789012", principal="arn:aws:sts::123456789012:assumed-role/r/f")
    log_group = {"LogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:g"}
    stream = {"StreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/s"}
    params = {
        "UserPoolId": "us-east-1_abc",
        "LogConfigurations": [
            {
                "LogLevel": "ERROR",
                "EventSource": "userNotification",
                "CloudWatchLogsConfiguration": log_group,
            },
            {"LogLevel": "INFO", "EventSource": "userAuthEvents", "FirehoseConfiguration": stream},
        ],
    }
    found = authorizations(
        RecordedCall("cognito-idp", "SetLogDeliveryConfiguration", params, "us-east-1"), facts
    )
    actions = {a.request.action for a in found}
    assert {
        "cognito-idp:SetLogDeliveryConfiguration",
        "logs:CreateLogDelivery",
        "logs:PutResourcePolicy",
    } <= actions
    assert {"firehose:TagDeliveryStream", "iam:CreateServiceLinkedRole"} <= actions
    assert "s3:PutBucketPolicy" not in actions  # no bucket named
    # Asked by Cognito on the caller's behalf: a forward call
    assert all(
        a.request.context.get("aws:ViaAWSService") is True
        for a in found
        if a.request.action != "cognito-idp:SetLogDeliveryConfiguration"
    )
