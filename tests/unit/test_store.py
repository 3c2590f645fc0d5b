"""Part writer and key layout (pure parts; S3 behaviour is covered in integration)."""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

import pytest

from cognito_backup.errors import SnapshotCorruptError
from cognito_backup.models import MembershipRecord
from cognito_backup.store import PartWriter, SnapshotStore, join_key, snapshot_dir


class RecordingS3:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.objects[kwargs["Key"]] = kwargs
        return {"VersionId": f"v{len(self.objects)}"}


def test_snapshot_keys_are_date_prefixed() -> None:
    assert snapshot_dir("backups", "us-east-1_X", "full", "20261121T230000Z") == (
        "backups/us-east-1_X/full/2026/11/21/20261121T230000Z/"
    )
    assert (
        snapshot_dir("", "p", "incremental", "20260102T000000Z-1")
        == "p/incremental/2026/01/02/20260102T000000Z-1/"
    )
    assert join_key("a/", "/b", "", "c") == "a/b/c"


def test_part_writer_rolls_over_and_describes_each_part() -> None:
    s3 = RecordingS3()
    store = SnapshotStore(s3, "bucket", kms_key_arn="arn:aws:kms:us-east-1:1:key/k")
    writer = PartWriter(store, "dir/", "memberships", max_bytes=200)
    parts = []
    for i in range(20):
        writer.write(MembershipRecord(group="g", username=f"user{i}"))
        if writer.full:
            parts.append(writer.close(len(parts) + 1))
    last = writer.close(len(parts) + 1)
    if last is not None:
        parts.append(last)
    assert writer.close(99) is None  # nothing open: nothing written
    assert len(parts) > 2 and sum(p.records for p in parts if p) == 20
    for part in parts:
        assert part is not None
        obj = s3.objects[part.key]
        assert part.key.startswith("dir/memberships-") and part.key.endswith(".jsonl.gz")
        assert part.sha256 == hashlib.sha256(obj["Body"]).hexdigest() and part.bytes == len(obj["Body"])
        assert len(gzip.decompress(obj["Body"]).splitlines()) == part.records
        assert obj["ServerSideEncryption"] == "aws:kms" and obj["SSEKMSKeyId"].endswith("key/k")
        assert obj["ChecksumAlgorithm"] == "SHA256"


class OnceReadableBody:
    """An S3 body that breaks if it is read after the consumer has started work."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.reads_after_first_record = 0
        self.first_record_seen = False

    def read(self, n: int = -1) -> bytes:
        if self.first_record_seen:
            self.reads_after_first_record += 1
        chunk, self._data = (self._data, b"") if n < 0 else (self._data[:n], self._data[n:])
        return chunk


def test_records_are_read_from_a_fully_fetched_part_and_checked() -> None:
    s3 = RecordingS3()
    store = SnapshotStore(s3, "bucket")
    writer = PartWriter(store, "dir/", "memberships")
    for i in range(500):
        writer.write(MembershipRecord(group="g", username=f"user{i}"))
    part = writer.close(1)
    assert part is not None
    body = OnceReadableBody(s3.objects[part.key]["Body"])
    s3.get_object = lambda **_: {"Body": body}  # type: ignore[attr-defined]
    records = store.iter_records(part)
    next(records)
    body.first_record_seen = True
    assert len(list(records)) == 499
    assert body.reads_after_first_record == 0  # no S3 stream held open while records are used
    # a part whose bytes are not the manifest's is refused before any record is used
    bad = part.model_copy(update={"sha256": "0" * 64})
    s3.get_object = lambda **_: {"Body": OnceReadableBody(s3.objects[part.key]["Body"])}  # type: ignore[attr-defined]
    with pytest.raises(SnapshotCorruptError, match="sha256 mismatch"):
        next(store.iter_records(bad))
