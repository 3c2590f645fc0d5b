"""The only S3 code: snapshot layout, streamed parts, manifests, checkpoints, tags.

Layout (contract):
    <prefix>/<pool>/<full|incremental>/<YYYY>/<MM>/<DD>/<snapshot-id>/manifest.json
    <prefix>/<pool>/<full|incremental>/<YYYY>/<MM>/<DD>/<snapshot-id>/<kind>-<seq>.jsonl.gz
Working state lives beside the snapshots, never inside a snapshot's folder:
    <prefix>/<pool>/checkpoints/...
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from botocore.exceptions import ClientError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError
from pydantic import BaseModel, ValidationError

from .errors import (
    AccessDeniedError,
    BackupError,
    BucketNotFoundError,
    LineTooLongError,
    PartTooLargeError,
    RecordTooLargeError,
    SignatureError,
    SnapshotCorruptError,
    SnapshotNotFoundError,
    StorageError,
    UsageError,
)
from .models import Manifest, PartInfo, PartKind, Record, SnapshotKind, parse_record
from .signing import ManifestSigning, SignatureState

MANIFEST_NAME = "manifest.json"
VALIDATION_REPORT_NAME = "validation-report.json"
RESTORE_REPORT_PREFIX = "restore-report-"
# A restore report's per-user sections (restore/report.py): gzipped JSON Lines beside the report,
# named apart from data parts (`.jsonl.gz`), which no restore role may write.
REPORT_PART_SUFFIX = ".ndjson.gz"
VALIDATION_TAG = "validation"
PART_SUFFIX = ".jsonl.gz"

DEFAULT_PART_MAX_BYTES = 8 * 1024 * 1024  # uncompressed bytes per part
DEFAULT_PART_MAX_RECORDS = 100_000

# Bounds on what a reader accepts, whatever a manifest says (issue 13, bounded inputs): a
# manifest lists parts, not records, so 16 MiB is tens of thousands of parts; no record comes
# near 1 MiB (a user is a few hundred bytes, a pool's configuration a few KiB), so a longer
# "line" is garbage. A part's decompressed bytes are bounded by what its stored size can
# honestly hold (JSON Lines of users compress about 5-10 times; 100 leaves room) and by an
# absolute cap (the writer closes parts at 8 MiB uncompressed): a gzip bomb is refused.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
MAX_COMPRESSION_RATIO = 100
MIN_DECOMPRESSED_LIMIT = 1024 * 1024
MAX_PART_DECOMPRESSED_BYTES = 256 * 1024 * 1024

# botocore retries a request until its answer's headers arrive; a connection dropped while the
# body streams in is raised from .read(), past its retries. Whole-object reads start again.
BODY_READ_ATTEMPTS = 4
BODY_READ_ERRORS = (ResponseStreamingError, ReadTimeoutError, IncompleteReadError)


def snapshot_id_for(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def pool_root(prefix: str, pool_id: str) -> str:
    return join_key(prefix, pool_id) + "/"


def snapshot_dir(prefix: str, pool_id: str, kind: SnapshotKind, snapshot_id: str) -> str:
    """The folder of one snapshot; the date comes from the snapshot id (UTC)."""
    y, m, d = snapshot_id[0:4], snapshot_id[4:6], snapshot_id[6:8]
    return join_key(prefix, pool_id, kind, y, m, d, snapshot_id) + "/"


def checkpoint_key(prefix: str, pool_id: str, name: str) -> str:
    return join_key(prefix, pool_id, "checkpoints", name) + ".json"


def standby_key(prefix: str, pool_id: str, standby_pool_id: str) -> str:
    """The marker of the last snapshot of `pool_id` mirrored into the standby pool."""
    return join_key(prefix, pool_id, "standby", standby_pool_id) + ".json"


def _manifest_parts(manifest_key: str) -> list[str]:
    # <prefix...>/<pool>/<kind>/<YYYY>/<MM>/<DD>/<snapshot-id>/manifest.json
    parts = manifest_key.split("/")
    if len(parts) < 7 or parts[-1] != MANIFEST_NAME or parts[-6] not in ("full", "incremental"):
        raise UsageError(f"not a manifest key in the snapshot layout: {manifest_key}")
    return parts


def layout_pool_id(manifest_key: str) -> str:
    """The user pool a manifest key belongs to, read from the layout."""
    return _manifest_parts(manifest_key)[-7]


def layout_snapshot_id(manifest_key: str) -> str:
    """The snapshot id of a manifest key (ids sort by time)."""
    return _manifest_parts(manifest_key)[-2]


def layout_kind(manifest_key: str) -> SnapshotKind:
    """Whether a manifest key is a full or an incremental snapshot's, read from the layout."""
    return "full" if _manifest_parts(manifest_key)[-6] == "full" else "incremental"


def layout_prefix(manifest_key: str, pool_id: str | None = None) -> str:
    """The bucket prefix of a snapshot: everything before `/<pool-id>/` in its manifest key;
    with `pool_id`, a key of another pool is refused."""
    parts = _manifest_parts(manifest_key)
    if pool_id is not None and parts[-7] != pool_id:
        raise UsageError(f"not a manifest key of pool {pool_id} in the snapshot layout: {manifest_key}")
    return "/".join(parts[:-7])


def layout_time(manifest_key: str) -> datetime:
    """When a snapshot was started (its id's UTC timestamp; a suffix after it is ignored)."""
    snapshot_id = layout_snapshot_id(manifest_key)
    try:
        return datetime.strptime(snapshot_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise UsageError(f"not a snapshot id of the layout: {snapshot_id}") from exc


def manifest_dir(manifest_key: str) -> str:
    return manifest_key.rsplit("/", 1)[0] + "/"


def part_key(directory: str, kind: PartKind, seq: int) -> str:
    return f"{directory}{kind}-{seq:05d}{PART_SUFFIX}"


def report_part_key(report_key: str, section: str, seq: int) -> str:
    """`<dir>restore-report-<target>-<stamp>-<section>-<nnnnn>.ndjson.gz`, beside its report."""
    return f"{report_key.removesuffix('.json')}-{section}-{seq:05d}{REPORT_PART_SUFFIX}"


def is_restore_report_object(name: str) -> bool:
    """A restore report or one of its parts, by its name in the snapshot's folder."""
    return (
        name.startswith(RESTORE_REPORT_PREFIX)
        and "/" not in name
        and (name.endswith(".json") or name.endswith(REPORT_PART_SUFFIX))
    )


def decompressed_limit(stored_bytes: int) -> int:
    """The most decompressed bytes a part of `stored_bytes` (as the manifest records) may hold."""
    return min(MAX_PART_DECOMPRESSED_BYTES, max(MIN_DECOMPRESSED_LIMIT, stored_bytes * MAX_COMPRESSION_RATIO))


def bounded_lines(
    stream: gzip.GzipFile, key: str, limit: int, max_line: int = MAX_LINE_BYTES
) -> Iterator[bytes]:
    """The lines of a decompressing stream, each at most `max_line` bytes and `limit` in all
    (garbage without newlines or a gzip bomb cannot fill memory): LineTooLongError or
    PartTooLargeError naming the bound when one is passed. The store's reads and the
    validator's scan both read parts through this."""
    name = key.rsplit("/", 1)[-1]
    total = 0
    lineno = 0
    while True:
        line = stream.readline(max_line + 1)
        if not line:
            return
        lineno += 1
        total += len(line)
        if len(line) > max_line:
            raise LineTooLongError(f"{name}: line {lineno} is longer than {max_line} bytes", lineno)
        if total > limit:
            raise PartTooLargeError(
                f"{name}: decompresses to more than {limit} bytes (stored part of the manifest's size "
                "cannot honestly hold that much: a gzip bomb or a forged size)",
                limit,
            )
        yield line


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class HashingReader(io.RawIOBase):
    """Wraps a stream, counting and hashing every byte read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes += n
        return n

    def drain(self) -> None:
        while self.read(1 << 16):
            pass


class SnapshotStore:
    """S3 access for one bucket; every write is encrypted and checksummed."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        kms_key_arn: str | None = None,
        signing: ManifestSigning | None = None,
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.kms_key_arn = kms_key_arn or None
        # Every manifest written is signed and every manifest read is verified with it; with no
        # key, nothing can be written and only unsigned manifests read, and only if allowed.
        self.signing = signing or ManifestSigning(None)

    def use_bucket_default_key(self) -> None:
        """With no key configured, follow the bucket's default KMS key if it has one.

        A deployed backup bucket refuses writes that ask for anything but its KMS key, so
        the CLI looks the key up instead of asking for SSE-S3. A bucket without a KMS
        default (or that hides its configuration from us) keeps SSE-S3.
        """
        if self.kms_key_arn:
            return
        try:
            rules = self._s3.get_bucket_encryption(Bucket=self.bucket)["ServerSideEncryptionConfiguration"][
                "Rules"
            ]
        except ClientError:
            return
        for rule in rules:
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("KMSMasterKeyID"):
                self.kms_key_arn = default["KMSMasterKeyID"]
                return

    # ------------------------------------------------------------------ errors
    def _fail(self, exc: ClientError, key: str | None = None) -> BackupError:
        code = _error_code(exc)
        if code == "NoSuchBucket":
            return BucketNotFoundError(f"no such bucket: {self.bucket}")
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchVersion"):
            return SnapshotNotFoundError(f"no such object: s3://{self.bucket}/{key}")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return AccessDeniedError(f"access denied to s3://{self.bucket}/{key or ''} ({code})")
        return StorageError(code, str(exc))

    def _read_failure(self, exc: ClientError, key: str) -> BackupError:
        """The error of a GET or HEAD. S3 answers 403, not 404, for a key that does not exist
        unless the caller may list the whole bucket, which the deployed roles may not (their
        ListBucket is limited to the backup prefix): a 403 on a key the listing does not show
        is "no such object", as it is to a caller allowed to list."""
        if _error_code(exc) in ("AccessDenied", "403", "Forbidden") and not self.exists(key):
            return SnapshotNotFoundError(f"no such object: s3://{self.bucket}/{key}")
        return self._fail(exc, key)

    def check_bucket(self, prefix: str) -> None:
        """Fail early, before any other work, if the bucket is missing or closed to us.

        A one-key listing of `prefix` (the backup prefix, or a key under it) rather than
        HeadBucket: IAM authorises HeadBucket as s3:ListBucket with no s3:prefix, which the
        deployed roles do not grant, while this listing is within their prefix-limited
        ListBucket and tells a missing bucket (NoSuchBucket) from a closed one (AccessDenied)
        all the same.
        """
        try:
            self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise BucketNotFoundError(f"no such bucket: {self.bucket}") from exc
            raise self._fail(exc, prefix) from exc

    def exists(self, key: str) -> bool:
        """Whether `key` exists, from a listing: allowed by a prefix-limited s3:ListBucket,
        where a GET or HEAD of a missing key is answered 403 (see `_read_failure`)."""
        try:
            resp = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        except ClientError as exc:
            raise self._fail(exc, key) from exc
        # Keys are listed in order and `key` sorts before every longer key it prefixes.
        return any(obj["Key"] == key for obj in resp.get("Contents", []))

    # ------------------------------------------------------------------ writes
    def _encryption(self) -> dict[str, str]:
        if self.kms_key_arn:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_arn}
        return {"ServerSideEncryption": "AES256"}

    def put_bytes(
        self, key: str, body: bytes, content_type: str = "application/octet-stream", **extra: Any
    ) -> tuple[str, str | None]:
        """Write one object; returns (hex sha256, version id)."""
        digest = hashlib.sha256(body)
        try:
            resp = self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
                **self._encryption(),
                **extra,
            )
        except ClientError as exc:
            raise self._fail(exc, key) from exc
        return digest.hexdigest(), resp.get("VersionId")

    def put_json(self, key: str, value: BaseModel | dict[str, Any], **extra: Any) -> str | None:
        if isinstance(value, BaseModel):
            body = value.model_dump_json(indent=2, exclude_none=False).encode()
        else:
            body = json.dumps(value, indent=2, default=str).encode()
        return self.put_bytes(key, body, "application/json", **extra)[1]

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise self._fail(exc, key) from exc

    # ------------------------------------------------------------------ reads
    def get_bytes(self, key: str, version_id: str | None = None, *, max_bytes: int | None = None) -> bytes:
        """A whole object; fetched again when the connection drops while its body is read.

        With `max_bytes`, an object larger than that is refused (SnapshotCorruptError) before
        its body is read."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        for attempt in range(BODY_READ_ATTEMPTS):
            try:
                resp = self._s3.get_object(**kwargs)
                size = resp.get("ContentLength")
                if max_bytes is not None and isinstance(size, int) and size > max_bytes:
                    resp["Body"].close()
                    raise SnapshotCorruptError(
                        f"{key.rsplit('/', 1)[-1]}: {size} bytes, more than the {max_bytes} accepted"
                    )
                body: bytes = resp["Body"].read()
            except ClientError as exc:
                raise self._read_failure(exc, key) from exc
            except BODY_READ_ERRORS as exc:
                if attempt + 1 == BODY_READ_ATTEMPTS:
                    raise StorageError("ResponseStreamingError", f"s3://{self.bucket}/{key}: {exc}") from exc
                continue
            return body
        raise AssertionError("unreachable")

    def open(self, key: str, version_id: str | None = None) -> HashingReader:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            body = self._s3.get_object(**kwargs)["Body"]
        except ClientError as exc:
            raise self._read_failure(exc, key) from exc
        return HashingReader(body)

    def get_json(self, key: str) -> Any | None:
        """The parsed object, or None when it does not exist.

        Used for objects that are often absent (checkpoints): a listing says so first, so
        that no GET of a missing key is made, which the deployed roles would see refused.
        """
        if not self.exists(key):
            return None
        try:
            return json.loads(self.get_bytes(key))
        except SnapshotNotFoundError:  # deleted since it was listed
            return None

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            resp: dict[str, Any] = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            failure = self._read_failure(exc, key)
            if isinstance(failure, SnapshotNotFoundError):
                return None
            raise failure from exc
        return resp

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except ClientError as exc:
            raise self._fail(exc, prefix) from exc

    def list_versions(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object version under `prefix` (delete markers left out): Key, VersionId, IsLatest."""
        paginator = self._s3.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    yield {
                        "Key": version["Key"],
                        "VersionId": version.get("VersionId") or "null",
                        "IsLatest": bool(version.get("IsLatest")),
                    }
        except ClientError as exc:
            raise self._fail(exc, prefix) from exc

    def delete_version(self, key: str, version_id: str) -> datetime | None:
        """Deletes one version for good; None when deleted, or the date until which Object Lock
        keeps it (S3 refuses: AccessDenied on a version under retention or legal hold)."""
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            return None
        except ClientError as exc:
            if _error_code(exc) not in ("AccessDenied", "403", "Forbidden"):
                raise self._fail(exc, key) from exc
            denied = exc
        # HeadObject of the version says its retention (the headers need s3:GetObjectRetention;
        # moto has no GetObjectRetention, and one call fewer is as good).
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        except ClientError as exc:
            raise self._fail(exc, key) from exc
        until = head.get("ObjectLockRetainUntilDate")
        if not isinstance(until, datetime) and head.get("ObjectLockLegalHoldStatus") != "ON":
            raise self._fail(denied, key) from denied  # not locked: refused by a policy
        return until if isinstance(until, datetime) else datetime.max.replace(tzinfo=UTC)

    # ------------------------------------------------------------------ tags
    def get_tags(self, key: str) -> dict[str, str]:
        try:
            resp = self._s3.get_object_tagging(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise self._fail(exc, key) from exc
        return {t["Key"]: t["Value"] for t in resp.get("TagSet", [])}

    def put_tags(self, key: str, tags: dict[str, str]) -> None:
        try:
            self._s3.put_object_tagging(
                Bucket=self.bucket,
                Key=key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
            )
        except ClientError as exc:
            raise self._fail(exc, key) from exc

    # ------------------------------------------------------------------ snapshots
    def write_manifest(self, directory: str, manifest: Manifest) -> str:
        """Sign the manifest with the configured key and write it (last, as the layout says)."""
        key = directory + MANIFEST_NAME
        self.put_json(key, self.signing.sign(manifest))
        return key

    def read_manifest(self, key: str, *, verify: bool = True) -> Manifest:
        """A manifest, parsed and (unless `verify` is False: listings for people only) its
        signature verified with the configured key: SignatureError names what is wrong."""
        raw = self.get_bytes(key, max_bytes=MAX_MANIFEST_BYTES)
        manifest = parse_manifest(key, raw)
        if verify:
            self.signing.check(key, manifest, json.loads(raw))
        return manifest

    def verify_manifest(
        self, key: str, manifest: Manifest, document: dict[str, Any] | None = None
    ) -> SignatureState:
        """The signature check alone, for a manifest parsed elsewhere (the validator), against
        its stored JSON `document` when given."""
        return self.signing.check(key, manifest, document)

    def manifest_keys(self, prefix: str, pool_id: str) -> list[str]:
        """Every manifest of a pool, newest first (snapshot ids sort by time)."""
        root = pool_root(prefix, pool_id)
        keys = [k for k in self.list_keys(root) if k.endswith("/" + MANIFEST_NAME)]
        return sorted(keys, key=lambda k: (k.rsplit("/", 2)[-2], k), reverse=True)

    def iter_records(self, part: PartInfo) -> Iterator[Record]:
        """A part's records, decompressed and parsed one line at a time.

        The stored (gzipped) part is fetched whole first: its size is bounded by the part
        size limit, so memory stays flat as a pool grows, and a consumer that works for
        minutes between two records (a restore working through a window of users) never
        holds an S3 stream open and idle until the connection is dropped. The bytes are
        checked against the manifest's SHA-256 before a record is used.
        """
        body = self.get_bytes(part.key, part.version_id, max_bytes=part.bytes)
        digest = hashlib.sha256(body).hexdigest()
        if digest != part.sha256:
            raise SnapshotCorruptError(
                f"{part.key}: sha256 mismatch (manifest {part.sha256[:12]}…, stored {digest[:12]}…)"
            )
        with gzip.GzipFile(fileobj=io.BytesIO(body), mode="rb") as lines:
            for line in bounded_lines(lines, part.key, decompressed_limit(part.bytes)):
                if line.strip():
                    yield parse_record(line)


def parse_manifest(key: str, raw: bytes) -> Manifest:
    """A manifest's bytes as the model; a malformed signature is a SignatureError."""
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        if any(err["loc"][:1] == ("signature",) for err in exc.errors()):
            raise SignatureError(key, "malformed", "not an algorithm, key_id and mac") from exc
        raise SnapshotCorruptError(f"{key}: manifest does not parse: {exc.errors()[0]['msg']}") from exc


class PartWriter:
    """Gzipped JSON Lines for one part kind, rolled over at a size bound.

    Only the compressed bytes of the open part are in memory, so memory use is bounded
    by the part size, not the pool's size. A part closes at a page boundary so that a
    checkpoint taken then describes exactly the parts written.
    """

    def __init__(
        self,
        store: SnapshotStore,
        directory: str,
        kind: PartKind,
        *,
        max_bytes: int = DEFAULT_PART_MAX_BYTES,
        max_records: int = DEFAULT_PART_MAX_RECORDS,
    ) -> None:
        self._store = store
        self._directory = directory
        self.kind: PartKind = kind
        self._max_bytes = max_bytes
        self._max_records = max_records
        self._reset()

    def _reset(self) -> None:
        self._buffer = io.BytesIO()
        self._gzip = gzip.GzipFile(fileobj=self._buffer, mode="wb", compresslevel=6, mtime=0)
        self.records = 0
        self.raw_bytes = 0

    def write(self, record: BaseModel) -> None:
        line = record.model_dump_json(exclude_defaults=False).encode() + b"\n"
        if len(line) > MAX_LINE_BYTES:
            # Every reader (restore, validator, replay) refuses such a line: a snapshot holding
            # it would be published and never restore. Its size and kind only: no content.
            raise RecordTooLargeError(
                f"a {self.kind} record is {len(line):,} bytes, over the {MAX_LINE_BYTES:,} bytes a "
                f"snapshot line may hold: the snapshot would not restore, so it is not published"
            )
        self._gzip.write(line)
        self.records += 1
        self.raw_bytes += len(line)

    @property
    def full(self) -> bool:
        return self.raw_bytes >= self._max_bytes or self.records >= self._max_records

    def close(self, seq: int) -> PartInfo | None:
        """Upload the open part as number `seq`; None if it holds nothing."""
        if self.records == 0:
            return None
        self._gzip.close()
        body = self._buffer.getvalue()
        key = part_key(self._directory, self.kind, seq)
        sha, version = self._store.put_bytes(key, body, "application/x-ndjson")
        info = PartInfo(
            key=key, records=self.records, bytes=len(body), sha256=sha, kind=self.kind, version_id=version
        )
        self._reset()
        return info
