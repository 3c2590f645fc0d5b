"""What IAM authorises for each recorded AWS call: action(s), resource ARN(s), context keys.

Per the AWS Service Authorization Reference and each API's "Permissions" section:
- Amazon S3: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
  and https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
  (HeadBucket is s3:ListBucket on the bucket, with no s3:prefix in the request; a GET by
  version id is s3:GetObjectVersion; PutObject with a Tagging header also needs
  s3:PutObjectTagging; SSE-KMS needs kms:GenerateDataKey to write and kms:Decrypt to read,
  which S3 asks of KMS on the caller's behalf, hence kms:ViaService = s3.<region>.amazonaws.com:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
  A GET or HEAD of a key that does not exist answers 404 only to a caller allowed
  s3:ListBucket on the bucket, and 403 to anyone else (API_GetObject.html, "Permissions");
  AWS does not document an s3:prefix for that implied check, so it is mapped with none
  (the stricter reading).
- Amazon Cognito user pools:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncognitouserpools.html
  (every operation on a pool: cognito-idp:<Operation> on its userpool ARN, with the pool's tags
  as aws:ResourceTag/<key>; DescribeUserPoolDomain, ListUserPools and CreateUserPool name no
  resource type, only "*"; CreateUserPool carries its UserPoolTags as aws:RequestTag/<key> and
  aws:TagKeys).
  SetLogDeliveryConfiguration also needs what CloudWatch Logs' vended-log delivery asks of the
  caller, per destination ("Exporting user pool logs"; "Enabling logging from AWS services" in
  the CloudWatch Logs guide): a log group needs logs:CreateLogDelivery, GetLogDelivery,
  UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy,
  DescribeResourcePolicies and DescribeLogGroups (on "*"); a Firehose stream
  firehose:TagDeliveryStream on it and iam:CreateServiceLinkedRole for delivery.logs; an S3 bucket
  s3:GetBucketPolicy and s3:PutBucketPolicy on it (each with the logs:* delivery actions).
- AWS KMS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
  (a direct call is kms:<Operation> on the key ARN, with no kms:ViaService).

An operation this module does not know raises UnmappedCallError, so that a new call in the
code cannot slip past the check unmapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from call_recorder import RecordedCall
from iam_policy import ContextValue, Request


class UnmappedCallError(AssertionError):
    """A recorded call whose IAM authorisation this module does not know."""


@dataclass(frozen=True)
class Authorization:
    """One thing IAM must allow for a call to behave as it did on moto."""

    call: RecordedCall
    request: Request
    why: str = ""

    def describe(self) -> str:
        ctx = dict(self.request.context)
        why = f" ({self.why})" if self.why else ""
        return f"{self.call.operation}: {self.request.action} on {self.request.resource} context={ctx}{why}"


@dataclass
class AwsFacts:
    """What the mapper needs to know of the account: ids, and how each bucket encrypts."""

    account: str
    principal: str  # the caller's ARN (the function's role, assumed)
    bucket_default_kms_key: dict[str, str] = field(default_factory=dict)  # bucket -> key ARN
    kms_key_arns: dict[str, str] = field(default_factory=dict)  # key id or alias -> key ARN
    pool_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # user pool id -> its tags

    def key_arn(self, key: str, region: str) -> str:
        if key.startswith("arn:"):
            return key
        if key in self.kms_key_arns:
            return self.kms_key_arns[key]
        return f"arn:aws:kms:{region}:{self.account}:key/{key}"


def _base_context(call: RecordedCall, facts: AwsFacts) -> dict[str, ContextValue]:
    # Global keys every request carries (boto3 speaks HTTPS to AWS endpoints).
    return {
        "aws:SecureTransport": True,
        "aws:RequestedRegion": call.region,
        "aws:PrincipalAccount": facts.account,
        "aws:PrincipalArn": facts.principal,
    }


def _auth(
    call: RecordedCall,
    facts: AwsFacts,
    action: str,
    resource: str,
    why: str = "",
    context: Mapping[str, ContextValue] | None = None,
) -> Authorization:
    ctx = _base_context(call, facts)
    ctx.update(context or {})
    return Authorization(call, Request(action, resource, ctx, facts.principal), why)


# ---------------------------------------------------------------------- S3
def _bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _s3_kms(call: RecordedCall, facts: AwsFacts, action: str, key: str, why: str) -> Authorization:
    return _auth(
        call,
        facts,
        action,
        facts.key_arn(key, call.region),
        why,
        {"kms:ViaService": f"s3.{call.region}.amazonaws.com", "kms:CallerAccount": facts.account},
    )


def _written_kms_key(call: RecordedCall, facts: AwsFacts, bucket: str, params: dict[str, Any]) -> str | None:
    """The KMS key S3 encrypts a new object with: the request's, else the bucket default's
    (none for SSE-C, where the request carries the caller's own key)."""
    if params.get("SSECustomerAlgorithm"):
        return None
    if params.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse"):
        return str(params.get("SSEKMSKeyId") or facts.bucket_default_kms_key.get(bucket) or "aws/s3")
    if params.get("ServerSideEncryption"):  # AES256 asked for explicitly: no KMS
        return None
    return facts.bucket_default_kms_key.get(bucket)


def _stored_kms_key(call: RecordedCall, facts: AwsFacts, bucket: str) -> str | None:
    """The KMS key of an object read: as S3 answered, else the bucket's default (all objects
    of the test bucket are written after its default encryption is set)."""
    if call.response.get("ServerSideEncryption") in ("aws:kms", "aws:kms:dsse"):
        return str(call.response.get("SSEKMSKeyId") or facts.bucket_default_kms_key.get(bucket))
    if call.response.get("ServerSideEncryption"):
        return None
    if call.error_code:
        return None  # nothing was read
    return facts.bucket_default_kms_key.get(bucket)


def _tag_context(tagging: str | None) -> dict[str, ContextValue]:
    if not tagging:
        return {}
    pairs = {k: v[0] for k, v in parse_qs(tagging, keep_blank_values=True).items()}
    ctx: dict[str, ContextValue] = {"s3:RequestObjectTagKeys": sorted(pairs)}
    ctx.update({f"s3:RequestObjectTag/{k}": v for k, v in pairs.items()})
    return ctx


def _not_found_needs_list(call: RecordedCall, facts: AwsFacts, bucket: str) -> list[Authorization]:
    if call.error_code in ("404", "NoSuchKey", "NoSuchVersion", "NotFound"):
        return [
            _auth(
                call,
                facts,
                "s3:ListBucket",
                _bucket_arn(bucket),
                "to answer 404 rather than 403 for a key that does not exist",
            )
        ]
    return []


def _s3_read(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    p = call.params
    bucket, key = p["Bucket"], p["Key"]
    action = "s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject"
    out = [_auth(call, facts, action, _object_arn(bucket, key))]
    out += _not_found_needs_list(call, facts, bucket)
    kms_key = _stored_kms_key(call, facts, bucket)
    if kms_key:
        out.append(_s3_kms(call, facts, "kms:Decrypt", kms_key, "reading an SSE-KMS object"))
    return out


def _s3_put(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    p = call.params
    bucket, key = p["Bucket"], p["Key"]
    ctx: dict[str, ContextValue] = {}
    if p.get("ServerSideEncryption"):
        ctx["s3:x-amz-server-side-encryption"] = p["ServerSideEncryption"]
    if p.get("SSEKMSKeyId"):
        ctx["s3:x-amz-server-side-encryption-aws-kms-key-id"] = p["SSEKMSKeyId"]
    if p.get("SSECustomerAlgorithm"):  # SSE-C: the caller's own key, no KMS
        ctx["s3:x-amz-server-side-encryption-customer-algorithm"] = p["SSECustomerAlgorithm"]
    if p.get("ACL"):
        ctx["s3:x-amz-acl"] = p["ACL"]
    ctx.update(_tag_context(p.get("Tagging")))
    arn = _object_arn(bucket, key)
    out = [_auth(call, facts, "s3:PutObject", arn, context=ctx)]
    if p.get("Tagging"):
        out.append(_auth(call, facts, "s3:PutObjectTagging", arn, "PutObject with Tagging", ctx))
    if p.get("ACL") or any(k.startswith("Grant") for k in p):
        out.append(_auth(call, facts, "s3:PutObjectAcl", arn, "PutObject with an ACL", ctx))
    if p.get("ObjectLockMode") or p.get("ObjectLockRetainUntilDate"):
        out.append(_auth(call, facts, "s3:PutObjectRetention", arn, "PutObject with a retention"))
    if p.get("ObjectLockLegalHoldStatus"):
        out.append(_auth(call, facts, "s3:PutObjectLegalHold", arn, "PutObject with a legal hold"))
    kms_key = _written_kms_key(call, facts, bucket, p)
    if kms_key:
        out.append(_s3_kms(call, facts, "kms:GenerateDataKey", kms_key, "writing an SSE-KMS object"))
    return out


def _s3_list(action: str) -> Callable[[RecordedCall, AwsFacts], list[Authorization]]:
    def mapper(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
        p = call.params
        ctx: dict[str, ContextValue] = {}
        if "Prefix" in p:
            ctx["s3:prefix"] = p["Prefix"]
        if "Delimiter" in p:
            ctx["s3:delimiter"] = p["Delimiter"]
        if "MaxKeys" in p:
            ctx["s3:max-keys"] = p["MaxKeys"]
        return [_auth(call, facts, action, _bucket_arn(p["Bucket"]), context=ctx)]

    return mapper


def _s3_bucket(action: str, why: str = "") -> Callable[[RecordedCall, AwsFacts], list[Authorization]]:
    def mapper(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
        return [_auth(call, facts, action, _bucket_arn(call.params["Bucket"]), why)]

    return mapper


def _s3_object(plain: str, versioned: str) -> Callable[[RecordedCall, AwsFacts], list[Authorization]]:
    def mapper(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
        p = call.params
        action = versioned if p.get("VersionId") else plain
        ctx: dict[str, ContextValue] = {}
        if "Tagging" in p and isinstance(p["Tagging"], dict):
            ctx["s3:RequestObjectTagKeys"] = sorted(t["Key"] for t in p["Tagging"].get("TagSet", []))
        return [_auth(call, facts, action, _object_arn(p["Bucket"], p["Key"]), context=ctx)]

    return mapper


def _s3_delete_objects(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    bucket = call.params["Bucket"]
    return [
        _auth(
            call,
            facts,
            "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
            _object_arn(bucket, o["Key"]),
        )
        for o in call.params["Delete"]["Objects"]
    ]


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    if isinstance(source, dict):
        return source["Bucket"], source["Key"], source.get("VersionId")
    path, _, query = str(source).lstrip("/").partition("?")
    bucket, _, key = path.partition("/")
    version = parse_qs(query).get("versionId", [None])[0]
    return bucket, unquote(key), version


def _s3_copy(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    src_bucket, src_key, version = _copy_source(call.params["CopySource"])
    read = RecordedCall(
        "s3",
        "GetObject",
        {"Bucket": src_bucket, "Key": src_key, **({"VersionId": version} if version else {})},
        call.region,
    )
    out = [
        Authorization(call, a.request, f"source of CopyObject{'; ' + a.why if a.why else ''}")
        for a in _s3_read(read, facts)
    ]
    return out + _s3_put(call, facts)


S3: dict[str, Callable[[RecordedCall, AwsFacts], list[Authorization]]] = {
    "HeadBucket": _s3_bucket("s3:ListBucket", "HeadBucket is authorised as ListBucket, without s3:prefix"),
    "ListObjectsV2": _s3_list("s3:ListBucket"),
    "ListObjects": _s3_list("s3:ListBucket"),
    "ListObjectVersions": _s3_list("s3:ListBucketVersions"),
    "GetObject": _s3_read,
    "HeadObject": _s3_read,
    "PutObject": _s3_put,
    "CopyObject": _s3_copy,
    "DeleteObject": _s3_object("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "DeleteObjects": _s3_delete_objects,
    "GetObjectTagging": _s3_object("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": _s3_object("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": _s3_object("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "GetBucketEncryption": _s3_bucket("s3:GetEncryptionConfiguration"),
    "GetBucketVersioning": _s3_bucket("s3:GetBucketVersioning"),
    "GetBucketLocation": _s3_bucket("s3:GetBucketLocation"),
}


# ---------------------------------------------------------------------- Cognito
# Operations of the service that name no user pool (Resource "*" in the reference).
COGNITO_NO_RESOURCE = frozenset({"DescribeUserPoolDomain", "ListUserPools", "CreateUserPool"})


def created_pool_tags(calls: Iterable[RecordedCall]) -> dict[str, dict[str, str]]:
    """The tags of the pools that recorded CreateUserPool calls made (the pool may be gone since:
    a drill deletes its scratch pool), for AwsFacts.pool_tags."""
    return {
        str(c.response["UserPool"]["Id"]): dict(c.params.get("UserPoolTags") or {})
        for c in calls
        if c.service == "cognito-idp" and c.operation == "CreateUserPool" and "UserPool" in c.response
    }


LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
)
LOG_GROUP_ACTIONS = ("logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")


def _log_delivery(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    """What SetLogDeliveryConfiguration's destinations need of the caller, beside the call: asked
    by Cognito with the caller's credentials (a forward call: aws:ViaAWSService is true)."""
    out: list[Authorization] = []

    def via(action: str, resource: str, to: str, context: Mapping[str, ContextValue] | None = None) -> None:
        why = f"SetLogDeliveryConfiguration: vended-log delivery to {to}"
        out.append(_auth(call, facts, action, resource, why, {"aws:ViaAWSService": True, **(context or {})}))

    for config in call.params.get("LogConfigurations") or []:
        if config.get("CloudWatchLogsConfiguration"):
            for action in (*LOG_DELIVERY_ACTIONS, *LOG_GROUP_ACTIONS):
                via(action, "*", "a log group")
        if config.get("FirehoseConfiguration"):
            for action in LOG_DELIVERY_ACTIONS:
                via(action, "*", "a stream")
            via("firehose:TagDeliveryStream", config["FirehoseConfiguration"]["StreamArn"], "a stream")
            role = f"arn:aws:iam::{facts.account}:role/aws-service-role/delivery.logs.amazonaws.com/*"
            via(
                "iam:CreateServiceLinkedRole",
                role,
                "a stream",
                {"iam:AWSServiceName": "delivery.logs.amazonaws.com"},
            )
        if config.get("S3Configuration"):
            for action in LOG_DELIVERY_ACTIONS:
                via(action, "*", "a bucket")
            for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy"):
                via(action, config["S3Configuration"]["BucketArn"], "a bucket")
    return out


def _cognito(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    action = f"cognito-idp:{call.operation}"
    if call.operation == "CreateUserPool":
        tags = dict(call.params.get("UserPoolTags") or {})
        ctx: dict[str, ContextValue] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
        ctx["aws:TagKeys"] = sorted(tags)
        return [_auth(call, facts, action, "*", context=ctx)]
    if call.operation in COGNITO_NO_RESOURCE:
        return [_auth(call, facts, action, "*")]
    pool = call.params.get("UserPoolId")
    if not pool:
        raise UnmappedCallError(f"cognito-idp:{call.operation} names no UserPoolId: map it by hand ({call})")
    region = pool.split("_", 1)[0]
    if region != call.region:
        raise UnmappedCallError(f"{call}: pool {pool} is not in the client's region {call.region}")
    tagged: dict[str, ContextValue] = {
        f"aws:ResourceTag/{k}": v for k, v in facts.pool_tags.get(pool, {}).items()
    }
    arn = f"arn:aws:cognito-idp:{region}:{facts.account}:userpool/{pool}"
    out = [_auth(call, facts, action, arn, context=tagged)]
    if call.operation == "SetLogDeliveryConfiguration":
        out += _log_delivery(call, facts)
    return out


# ---------------------------------------------------------------------- KMS (direct calls)
KMS_KEY_OPERATIONS = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "Sign",
        "Verify",
        "DescribeKey",
        "GetPublicKey",
    }
)


def _kms(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    key = call.params.get("KeyId")
    if call.operation not in KMS_KEY_OPERATIONS or not key:
        raise UnmappedCallError(f"kms:{call.operation} without a KeyId is not mapped ({call})")
    ctx: dict[str, ContextValue] = {"kms:CallerAccount": facts.account}
    if "MacAlgorithm" in call.params:
        ctx["kms:MacAlgorithm"] = call.params["MacAlgorithm"]
    if "SigningAlgorithm" in call.params:
        ctx["kms:SigningAlgorithm"] = call.params["SigningAlgorithm"]
    for k, v in (call.params.get("EncryptionContext") or {}).items():
        ctx[f"kms:EncryptionContext:{k}"] = v
    return [_auth(call, facts, f"kms:{call.operation}", facts.key_arn(key, call.region), context=ctx)]


# ---------------------------------------------------------------------- EventBridge
def _events(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    """PutEvents: events:PutEvents on each entry's bus (default: the account's default bus), with
    events:source and events:detail-type of that entry (Service Authorization Reference)."""
    if call.operation != "PutEvents":
        raise UnmappedCallError(f"events:{call.operation} is not mapped to IAM actions ({call})")
    found = []
    for entry in call.params.get("Entries", []):
        bus = entry.get("EventBusName") or "default"
        arn = (
            bus if bus.startswith("arn:") else f"arn:aws:events:{call.region}:{facts.account}:event-bus/{bus}"
        )
        ctx: dict[str, ContextValue] = {
            "events:source": entry["Source"],
            "events:detail-type": entry["DetailType"],
        }
        found.append(_auth(call, facts, "events:PutEvents", arn, context=ctx))
    return found


def authorizations(call: RecordedCall, facts: AwsFacts) -> list[Authorization]:
    """Everything IAM must allow for `call`; UnmappedCallError for an operation not known here."""
    if call.service == "s3":
        mapper = S3.get(call.operation)
        if mapper is None:
            raise UnmappedCallError(f"s3:{call.operation} is not mapped to IAM actions ({call})")
        return mapper(call, facts)
    if call.service == "cognito-idp":
        return _cognito(call, facts)
    if call.service == "kms":
        return _kms(call, facts)
    if call.service == "events":
        return _events(call, facts)
    raise UnmappedCallError(f"calls to {call.service} are not mapped to IAM actions ({call})")
