"""Part writer and key layout (pure parts; S3 behaviour is covered in integration)."""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

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
