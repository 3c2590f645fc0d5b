"""The validator's trigger, executed: template.yaml's EventBridge rule in moto's EventBridge.

The rule's Pattern is taken from the ValidatorFunction's EventBridgeRule event, its intrinsics
resolved as CloudFormation would (`!Ref BackupBucket` to the bucket's name, `!Sub` with
BackupPrefix's default), and created in moto's EventBridge with an SQS queue as its target. S3's
"Object Created" events (events/validator.json's shape) are then put on the bus: what reaches
the queue is what would invoke the validator.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from conftest import BUCKET, load_event, load_template

from cognito_backup.aws import AwsClients

SNAPSHOT_DIR = "backups/us-east-1_AbCdEf123/full/2026/11/21/20261121T230000Z"


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """The pattern with Ref and Fn::Sub replaced by their values; any other intrinsic is an error."""
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return refs[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            assert isinstance(value["Fn::Sub"], str), value
            return re.sub(r"\$\{([^}]+)\}", lambda m: refs[m.group(1)], value["Fn::Sub"])
        assert not any(k.startswith("Fn::") for k in value), f"unresolved intrinsic {value}"
        return {k: resolve(v, refs) for k, v in value.items()}
    return value


def validator_pattern() -> dict[str, Any]:
    template = load_template()
    (event,) = template["Resources"]["ValidatorFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    refs = {
        "BackupBucket": BUCKET,
        "BackupPrefix": template["Parameters"]["BackupPrefix"]["Default"],
    }
    pattern: dict[str, Any] = resolve(event["Properties"]["Pattern"], refs)
    return pattern


class Bus:
    """The default event bus with the validator's rule, delivering to a queue."""

    def __init__(self, aws: AwsClients) -> None:
        self.events = boto3.client("events", region_name=aws.region)
        self.sqs = boto3.client("sqs", region_name=aws.region)
        self.queue_url = self.sqs.create_queue(QueueName="validator-invocations")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events.put_rule(Name="ManifestCreated", EventPattern=json.dumps(validator_pattern()))
        self.events.put_targets(Rule="ManifestCreated", Targets=[{"Id": "validator", "Arn": queue_arn}])

    def triggers(self, *, key: str, bucket: str = BUCKET) -> bool:
        """Whether S3's Object Created event for s3://bucket/key reaches the validator."""
        event = load_event("validator")
        event["detail"]["bucket"]["name"] = bucket
        event["detail"]["object"]["key"] = key
        event["resources"] = [f"arn:aws:s3:::{bucket}"]
        answer = self.events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Resources": event["resources"],
                    "Detail": json.dumps(event["detail"]),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0, answer
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for m in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        delivered = [json.loads(m["Body"]) for m in messages]
        assert all(d["detail"]["object"]["key"] == key for d in delivered), delivered
        return len(delivered) == 1


@pytest.fixture
def bus(aws: AwsClients) -> Bus:
    return Bus(aws)


def test_pattern_resolves_to_the_bucket_and_the_default_prefix() -> None:
    pattern = validator_pattern()

    assert pattern["detail"]["bucket"]["name"] == [BUCKET]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "backups/*/manifest.json"}]


def test_a_manifest_in_the_backup_bucket_triggers_the_validator(bus: Bus) -> None:
    assert bus.triggers(key=f"{SNAPSHOT_DIR}/manifest.json")
    assert bus.triggers(
        key="backups/eu-west-1_Other0001/incremental/2026/11/22/20261122T010000Z/manifest.json"
    )


@pytest.mark.parametrize(
    ("key", "bucket"),
    [
        pytest.param(f"{SNAPSHOT_DIR}/users-00001.jsonl.gz", BUCKET, id="a-data-part"),
        pytest.param(f"{SNAPSHOT_DIR}/validation-report.json", BUCKET, id="the-validators-report"),
        pytest.param(f"{SNAPSHOT_DIR}/restore-report-us-east-1_X-1.json", BUCKET, id="a-restore-report"),
        pytest.param(f"{SNAPSHOT_DIR}/manifest.json", "someone-elses-bucket", id="another-bucket"),
        pytest.param(f"other/{SNAPSHOT_DIR}/manifest.json", BUCKET, id="outside-the-prefix"),
        pytest.param(f"backups-old/{SNAPSHOT_DIR[8:]}/manifest.json", BUCKET, id="a-longer-prefix"),
        pytest.param("backups/manifest.json", BUCKET, id="no-pool-directory"),
    ],
)
def test_anything_else_does_not(bus: Bus, key: str, bucket: str) -> None:
    assert not bus.triggers(key=key, bucket=bucket)
