"""SnapshotStore under the deployed roles' S3 access: ListBucket only within the backup prefix.

With such a role S3 answers HeadBucket with 403, and a GET or HEAD of a key that does not exist
with 403 rather than 404 (it says 404 only to a caller that may list the bucket). The store
checks the bucket with a one-key listing, reads often-missing objects (checkpoints) only after
a listing shows them, and takes a 403 on a key the listing does not show for "no such object".
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import BUCKET

from cognito_backup.errors import AccessDeniedError, BucketNotFoundError, SnapshotNotFoundError
from cognito_backup.store import SnapshotStore


class PrefixOnlyS3:
    """moto's S3 as a prefix-limited role sees it: no HeadBucket, 403 for missing keys,
    and `denied` keys that exist but are closed to the role."""

    def __init__(self, s3: Any, denied: frozenset[str] = frozenset()) -> None:
        self._s3 = s3
        self.denied = denied
        self.calls: list[str] = []

    def _forbidden(self, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, operation)

    def head_bucket(self, **_: Any) -> None:
        raise self._forbidden("HeadBucket")

    def list_objects_v2(self, **kwargs: Any) -> Any:
        self.calls.append(f"list {kwargs['Prefix']} {kwargs.get('MaxKeys')}")
        return self._s3.list_objects_v2(**kwargs)

    def _read(self, operation: str, method: Any, **kwargs: Any) -> Any:
        self.calls.append(f"{operation} {kwargs['Key']}")
        if kwargs["Key"] in self.denied:
            raise self._forbidden(operation)
        try:
            return method(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                raise self._forbidden(operation) from exc
            raise

    def get_object(self, **kwargs: Any) -> Any:
        return self._read("GetObject", self._s3.get_object, **kwargs)

    def head_object(self, **kwargs: Any) -> Any:
        return self._read("HeadObject", self._s3.head_object, **kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        return self._s3.put_object(**kwargs)


@pytest.fixture
def s3(aws: Any, bucket: str) -> PrefixOnlyS3:
    aws.s3().put_object(Bucket=bucket, Key="backups/p/a.json", Body=b'{"a": 1}')
    aws.s3().put_object(Bucket=bucket, Key="backups/p/closed.json", Body=b"{}")
    return PrefixOnlyS3(aws.s3(), frozenset({"backups/p/closed.json"}))


def test_check_bucket_lists_one_key_of_the_prefix(s3: PrefixOnlyS3) -> None:
    SnapshotStore(s3, BUCKET).check_bucket("backups/p/")
    assert s3.calls == ["list backups/p/ 1"]


def test_check_bucket_tells_a_missing_bucket_from_a_closed_one(aws: Any) -> None:
    with pytest.raises(BucketNotFoundError, match="no such bucket: nowhere-bucket"):
        SnapshotStore(aws.s3(), "nowhere-bucket").check_bucket("backups/p/")

    class Closed:
        def list_objects_v2(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")

    with pytest.raises(AccessDeniedError, match=r"s3://b-closed/backups/p/ \(AccessDenied\)"):
        SnapshotStore(Closed(), "b-closed").check_bucket("backups/p/")


def test_a_missing_checkpoint_is_none_without_a_get(s3: PrefixOnlyS3) -> None:
    store = SnapshotStore(s3, BUCKET)
    assert store.get_json("backups/p/missing.json") is None
    assert s3.calls == ["list backups/p/missing.json 1"]
    assert store.get_json("backups/p/a.json") == {"a": 1}


def test_a_403_on_a_key_that_does_not_exist_is_not_found(s3: PrefixOnlyS3) -> None:
    store = SnapshotStore(s3, BUCKET)
    with pytest.raises(SnapshotNotFoundError, match="no such object"):
        store.get_bytes("backups/p/missing.json")
    with pytest.raises(SnapshotNotFoundError):
        store.open("backups/p/missing.json")
    assert store.head("backups/p/missing.json") is None
    assert store.exists("backups/p/a.json") and not store.exists("backups/p/a")


def test_a_403_on_a_key_that_exists_stays_access_denied(s3: PrefixOnlyS3) -> None:
    store = SnapshotStore(s3, BUCKET)
    with pytest.raises(AccessDeniedError):
        store.get_bytes("backups/p/closed.json")
    with pytest.raises(AccessDeniedError):
        store.head("backups/p/closed.json")
