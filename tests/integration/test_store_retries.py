"""S3 calls ride out S3's transient faults: the client factory's standard retry mode, proven with faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError

from cognito_backup.aws import AwsClients
from cognito_backup.errors import StorageError
from cognito_backup.store import SnapshotStore
from cognito_local.faults import Faults
from cognito_local.inprocess import S3_INTERNAL_ERROR, _RawBody, faulty_s3

SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


class FirstAttemptsFail:
    """A before-send hook on an S3 client: fails the first attempts of chosen operations."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script  # operation -> faults for its first attempts: "500-after", "503", "reset"
        self.injected: list[tuple[str, str]] = []

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        from moto.core.models import botocore_stubber

        operation = event_name.rsplit(".", 1)[-1]
        pending = self.script.get(operation)
        if not pending:
            return None
        fault = pending.pop(0)
        self.injected.append((operation, fault))
        url = request.url
        if fault == "reset":
            request.url = "https://refused.invalid/"
            raise ConnectionClosedError(endpoint_url=url)
        if fault == "500-after":
            botocore_stubber(event_name, request)  # moto applies it; the answer is lost
            body, status = S3_INTERNAL_ERROR, 500
        else:
            body, status = SLOW_DOWN, 503
        request.url = "https://refused.invalid/"
        return AWSResponse(url, status, {"Content-Type": "application/xml"}, _RawBody(body))  # type: ignore[arg-type]


def hooked(s3: Any, hook: Callable[..., Any]) -> None:
    s3.meta.events.register_first("before-send.s3", hook)


def test_the_factorys_s3_client_retries_500s_throttling_and_resets(aws: AwsClients, bucket: str) -> None:
    # Given the S3 client the product builds, and S3 answering badly at first
    s3 = aws.s3()
    hook = FirstAttemptsFail(
        {
            "PutObject": ["500-after", "reset", "503"],
            "GetObject": ["reset", "500-after"],
            "HeadObject": ["503"],
        }
    )
    hooked(s3, hook)
    store = SnapshotStore(s3, bucket)
    # When the store writes and reads an object
    sha, version = store.put_bytes("k/part.jsonl.gz", b"payload")
    # Then every call succeeded on a later attempt, and the object is what was written
    assert store.get_bytes("k/part.jsonl.gz") == b"payload"
    assert store.head("k/part.jsonl.gz") is not None
    assert len(hook.injected) == 6
    # the retry after the lost answer wrote a second version: the one the store returned is the last
    versions = s3.list_object_versions(Bucket=bucket, Prefix="k/")["Versions"]
    assert len(versions) == 2 and version == next(v["VersionId"] for v in versions if v["IsLatest"])
    assert store.get_bytes("k/part.jsonl.gz", version) == b"payload" and len(sha) == 64


def test_retries_end_and_a_lasting_fault_is_a_storage_error(aws: AwsClients, bucket: str) -> None:
    s3 = aws.s3()
    lasting = Faults(rate=1.0, after_effect=0.0, operations=frozenset({"PutObject"}))
    with faulty_s3(lasting, [s3]) as plan, pytest.raises(StorageError, match="InternalError"):
        SnapshotStore(s3, bucket).put_bytes("k", b"x")
    assert plan.stats()["total"]["before"] == 6  # the first attempt and 5 retries (max_attempts=5)


class _CutBody(_RawBody):
    """A body whose connection drops after the first bytes."""

    def read(self, size: int | None = -1) -> bytes:
        from urllib3.exceptions import ProtocolError

        raise ProtocolError("Connection broken: IncompleteRead(3 bytes read, 4 more expected)")


class BodyCutOnce:
    """Answers the first GetObject attempts with headers, then a body cut short."""

    def __init__(self, times: int) -> None:
        self.left = times

    def __call__(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse | None:
        if self.left == 0 or not event_name.endswith(".GetObject"):
            return None
        self.left -= 1
        url, request.url = request.url, "https://refused.invalid/"
        headers = {"Content-Length": "7", "Content-Type": "application/octet-stream"}
        return AWSResponse(url, 200, headers, _CutBody(b"pay"))  # type: ignore[arg-type]


def test_a_body_cut_mid_read_is_fetched_again(aws: AwsClients, bucket: str) -> None:
    # Given an object, and S3 dropping the connection twice while its body streams in (botocore's
    # retries end once the headers are in: the .read() fails past them)
    s3 = aws.s3()
    store = SnapshotStore(s3, bucket)
    store.put_bytes("k", b"payload")
    hook = BodyCutOnce(2)
    hooked(s3, hook)
    # When the store reads it, it reads it whole on the third attempt
    assert store.get_bytes("k") == b"payload" and hook.left == 0
    # and a body that never comes through is a storage error, not a botocore exception
    hook.left = 10
    with pytest.raises(StorageError, match="ResponseStreamingError"):
        store.get_bytes("k")
