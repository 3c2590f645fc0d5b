"""The validator: proves that a snapshot is whole and readable, and records the verdict.

Everything a restore relies on is checked, streaming (memory stays flat as a pool grows):

- the manifest is JSON, has a known schema_version and parses against its model;
- the manifest carries the configured signing key's signature (signing.py), and so does every
  manifest of an incremental's chain, down to its full snapshot, whatever their tags say;
- every listed part exists, is the S3 version the manifest recorded, and its size, SHA-256
  (of the stored gzipped object) and record count match the manifest;
- every record parses, and its type fits the part's kind; the manifest's counts match;
- memberships name users and groups present in the snapshot (for an incremental: present in
  its chain at that point); tombstones name users and groups that existed in the base chain;
- nothing else lies in the snapshot's folder (strays);
- an incremental's base exists, is of the same pool, is older, and is itself valid.

A broken snapshot gives failures, never a crash: a crash is kept for what is not the
snapshot's fault (no such manifest, access denied, S3 down), so that it can be retried.
The verdict is the manifest's `validation` tag plus `validation-report.json` beside it.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field, ValidationError

from .chain import open_view, resolve_chain
from .errors import (
    LineTooLongError,
    PartTooLargeError,
    SignatureError,
    SnapshotCorruptError,
    SnapshotNotFoundError,
    UsageError,
)
from .models import (
    SUPPORTED_SCHEMA_VERSIONS,
    GroupDeletedRecord,
    GroupRecord,
    GroupStateRecord,
    Manifest,
    MembershipRecord,
    MembershipRemovedRecord,
    PartInfo,
    PartKind,
    PoolConfigRecord,
    Record,
    SnapshotKind,
    UserDeletedRecord,
    UserRecord,
    UserStateRecord,
    parse_record,
    utcnow,
)
from .replay import is_change, replay
from .store import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    PART_SUFFIX,
    VALIDATION_REPORT_NAME,
    VALIDATION_TAG,
    SnapshotStore,
    bounded_lines,
    decompressed_limit,
    is_restore_report_object,
    manifest_dir,
)
from .store import MAX_LINE_BYTES as STORE_MAX_LINE_BYTES

REPORT_SCHEMA_VERSION = 1
Verdict = Literal["passed", "failed"]

# Record types each part kind may hold.
ALLOWED_TYPES: dict[PartKind, frozenset[str]] = {
    "config": frozenset({"pool_config"}),
    "groups": frozenset({"group"}),
    "users": frozenset({"user"}),
    "memberships": frozenset({"membership"}),
    "state": frozenset({"state_user", "state_group", "membership"}),
    "changes": frozenset(
        {"user", "group", "membership", "user_deleted", "group_deleted", "membership_removed"}
    ),
}
# Part kinds each snapshot kind may hold (a restore reads nothing else from it).
ALLOWED_KINDS: dict[SnapshotKind, frozenset[PartKind]] = {
    "full": frozenset({"config", "groups", "users", "memberships", "state"}),
    "incremental": frozenset({"config", "changes", "state"}),
}
# Parts are read in this order, so that the names memberships refer to are known first.
_READ_ORDER: dict[str, int] = {
    "config": 0,
    "groups": 1,
    "users": 2,
    "changes": 3,
    "state": 4,
    "memberships": 5,
}

MAX_LINE_BYTES = STORE_MAX_LINE_BYTES  # no record comes near; a longer "line" is garbage
MAX_RECORD_FAILURES_PER_PART = 5
MAX_FAILURES = 200
_CHUNK = 1 << 16

# Check names, as listed in ValidationReport.checks.
CHECK_MANIFEST_JSON = "manifest_json"
CHECK_SCHEMA_VERSION = "schema_version"
CHECK_MANIFEST_MODEL = "manifest_model"
CHECK_SIGNATURE = "signature"
CHECK_PART_SIZE_BOUND = "part_size_bound"
CHECK_PART_KEYS = "part_keys"
CHECK_PARTS_EXIST = "parts_exist"
CHECK_PART_VERSIONS = "part_versions"
CHECK_PART_BYTES = "part_bytes"
CHECK_PART_SHA256 = "part_sha256"
CHECK_PART_GZIP = "part_gzip"
CHECK_PART_RECORDS = "part_record_counts"
CHECK_RECORDS_PARSE = "records_parse"
CHECK_RECORD_TYPES = "record_types"
CHECK_MANIFEST_COUNTS = "manifest_counts"
CHECK_STATE_INDEX = "state_index"
CHECK_MEMBERSHIPS = "memberships_refer"
CHECK_TOMBSTONES = "tombstones_refer"
CHECK_STRAYS = "strays"
CHECK_BASE = "base"

COUNT_FIELDS = ("users", "groups", "memberships", "users_deleted", "groups_deleted", "memberships_removed")


class Failure(BaseModel):
    """One problem: `part` is the S3 key it concerns (None for the snapshot as a whole)."""

    part: str | None = None
    problem: str


class FoundCounts(BaseModel):
    """What the validator found in the parts (data parts; the state index apart)."""

    users: int = 0
    groups: int = 0
    memberships: int = 0
    users_deleted: int = 0
    groups_deleted: int = 0
    memberships_removed: int = 0
    configs: int = 0
    state_users: int = 0
    state_groups: int = 0
    state_memberships: int = 0
    records: int = 0
    parts: int = 0
    bytes: int = 0


class ValidationReport(BaseModel):
    """validation-report.json, written beside the manifest."""

    schema_version: int = REPORT_SCHEMA_VERSION
    manifest_key: str
    snapshot_id: str | None = None
    kind: SnapshotKind | None = None
    user_pool_id: str | None = None
    base_manifest_key: str | None = None
    finished_at: datetime | None = Field(default=None, description="When the snapshot was finished")
    valid: bool = False
    signature: Literal["signed", "unsigned"] | None = Field(
        default=None,
        description="signed: the manifest and its chain carry the signing key's MAC; unsigned: "
        "some have none, accepted by allow-unsigned (proves nothing about who wrote them)",
    )
    signature_failure: str | None = Field(
        default=None, description="missing | malformed | other_key | mismatch, when the signature is refused"
    )
    checked_at: datetime = Field(default_factory=utcnow)
    checks: list[str] = Field(default_factory=list, description="What was checked")
    counts: FoundCounts = Field(default_factory=FoundCounts)
    failures: list[Failure] = Field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return "passed" if self.valid else "failed"


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _short(sha: str) -> str:
    return sha[:12] + "…"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def report_key(manifest_key: str) -> str:
    return manifest_dir(manifest_key) + VALIDATION_REPORT_NAME


def verdict_of(store: SnapshotStore, manifest_key: str) -> Verdict | None:
    """The recorded verdict of a snapshot: its manifest's `validation` tag, if any."""
    value = store.get_tags(manifest_key).get(VALIDATION_TAG)
    if value == "passed":
        return "passed"
    if value == "failed":
        return "failed"
    return None


def validate_snapshot(store: SnapshotStore, manifest_key: str, *, record: bool = True) -> ValidationReport:
    """Check one snapshot; with `record`, tag the manifest and write the report beside it.

    Raises SnapshotNotFoundError when there is no such manifest (nothing to tag), and lets
    access or storage errors raise; everything wrong with the snapshot itself is a Failure.
    """
    if _name(manifest_key) != MANIFEST_NAME:
        raise UsageError(f"not a manifest key (must end in /{MANIFEST_NAME}): {manifest_key}")
    report = _Validator(store, manifest_key, frozenset()).run()
    if record:
        record_verdict(store, report)
    return report


def record_verdict(store: SnapshotStore, report: ValidationReport) -> None:
    """The report first, then the tag: a verdict always has its report."""
    store.put_json(report_key(report.manifest_key), report)
    tags = store.get_tags(report.manifest_key)
    tags[VALIDATION_TAG] = report.verdict
    store.put_tags(report.manifest_key, tags)


class _Problem(NamedTuple):
    text: str
    unreadable: bool  # True: the record is lost (does not parse, or wrong type for its part)


class _PartScan:
    """What streaming one stored part found."""

    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0
        self.sha256 = ""
        self.complete = True  # False: the gzip stream broke off, or a line was not a line


class _Validator:
    def __init__(self, store: SnapshotStore, manifest_key: str, seen: frozenset[str]) -> None:
        self.store = store
        self.key = manifest_key
        self.dir = manifest_dir(manifest_key)
        self.seen = seen | {manifest_key}
        self.report = ValidationReport(manifest_key=manifest_key)
        self.found = self.report.counts
        self._dropped = 0
        # Names present at this snapshot, to check what memberships and tombstones refer to.
        # Holding every username and group name of the pool in memory is accepted (a few
        # dozen bytes per user); records themselves are streamed, never held.
        self.base_users: set[str] = set()
        self.base_groups: set[str] = set()
        self.users: set[str] = set()  # full: every user; incremental: users added/changed
        self.groups: set[str] = set()
        self.deleted_users: set[str] = set()
        self.deleted_groups: set[str] = set()
        # Memberships from an incremental's changes, checked once all changes are applied.
        # Changes are small by design (as in chain.PointInTimeView, which holds them too).
        self.pending: list[tuple[str, MembershipRecord]] = []
        self._changes_part = ""  # the part whose change records are being replayed
        self.names_complete = True  # False: some names could not be read; skip reference checks
        self.parts_complete = True  # False: some part could not be read whole; skip count checks

    # ------------------------------------------------------------------ bookkeeping
    def fail(self, part: str | None, problem: str) -> None:
        if len(self.report.failures) >= MAX_FAILURES:
            self._dropped += 1
            return
        self.report.failures.append(Failure(part=part, problem=problem))

    def check(self, *names: str) -> None:
        for name in names:
            if name not in self.report.checks:
                self.report.checks.append(name)

    def run(self) -> ValidationReport:
        manifest = self._manifest()
        if manifest is not None:
            self._snapshot(manifest)
        if self._dropped:
            self.report.failures.append(
                Failure(part=None, problem=f"{self._dropped} more problem(s) not listed")
            )
        self.report.valid = not self.report.failures
        return self.report

    # ------------------------------------------------------------------ manifest
    def _manifest(self) -> Manifest | None:
        name = _name(self.key)
        self.check(CHECK_MANIFEST_JSON)
        try:  # no such manifest: raises, nothing to judge
            raw = self.store.get_bytes(self.key, max_bytes=MAX_MANIFEST_BYTES)
        except SnapshotCorruptError as exc:
            self.fail(self.key, f"{name}: refused: {exc}")
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError included
            self.fail(self.key, f"{name}: not JSON ({exc})")
            return None
        if not isinstance(data, dict):
            self.fail(self.key, f"{name}: not a JSON object")
            return None
        self._describe(data)
        self.check(CHECK_SCHEMA_VERSION)
        version = data.get("schema_version")
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or version not in SUPPORTED_SCHEMA_VERSIONS
        ):
            supported = ", ".join(str(v) for v in sorted(SUPPORTED_SCHEMA_VERSIONS))
            self.fail(self.key, f"{name}: unknown schema_version {version!r} (supported: {supported})")
            return None
        self.check(CHECK_MANIFEST_MODEL)
        try:
            manifest = Manifest.model_validate(data)
        except ValidationError as exc:
            if any(err["loc"][:1] == ("signature",) for err in exc.errors()):
                malformed = SignatureError(self.key, "malformed", "not an algorithm, key_id and mac")
                self._signature_failed(malformed)
            else:
                self.fail(self.key, f"{name}: does not parse ({_first_error(exc)})")
            return None
        self.report.finished_at = manifest.finished_at
        # The signature before anything the manifest claims is believed: what a forger wrote
        # is not worth reading (a verdict tag never stands in for this check).
        self.check(CHECK_SIGNATURE)
        try:
            self.report.signature = self.store.verify_manifest(self.key, manifest, data)
        except SignatureError as exc:
            self._signature_failed(exc)
            return None
        return manifest

    def _signature_failed(self, exc: SignatureError) -> None:
        self.check(CHECK_SIGNATURE)
        self.report.signature_failure = exc.reason
        self.fail(self.key, f"{MANIFEST_NAME}: refused: {exc}")

    def _describe(self, data: dict[str, Any]) -> None:
        """Best effort, so that even the report of a broken manifest says what it was."""
        for field in ("snapshot_id", "user_pool_id", "base_manifest_key"):
            if isinstance(data.get(field), str):
                setattr(self.report, field, data[field])
        if data.get("kind") in ("full", "incremental"):
            self.report.kind = data["kind"]

    # ------------------------------------------------------------------ snapshot
    def _snapshot(self, manifest: Manifest) -> None:
        if manifest.kind == "incremental":
            self._base(manifest)
        elif manifest.base_manifest_key:
            self.fail(self.key, f"{MANIFEST_NAME}: a full snapshot names a base_manifest_key")
        # One listing of the folder: which parts exist, and what else lies there (strays).
        # Existence comes from the listing, not from HEAD: without s3:ListBucket on the key
        # S3 answers 403, not 404, for a missing object.
        present = set(self.store.list_keys(self.dir))
        parts = self._part_list(manifest)
        for part, kind in sorted(parts, key=lambda pk: _READ_ORDER.get(pk[1], 9)):
            self._part(manifest, part, kind, part.key in present)
        self._check_pending()
        self._strays(manifest, present)
        self._counts(manifest)

    def _part_list(self, manifest: Manifest) -> list[tuple[PartInfo, PartKind]]:
        """The parts worth reading, each with its kind; bad entries are failures."""
        self.check(CHECK_PART_KEYS)
        out: list[tuple[PartInfo, PartKind]] = []
        seen: set[str] = set()
        for part in manifest.parts:
            name = _name(part.key)
            if part.key in seen:
                self.fail(part.key, f"{name}: listed twice in the manifest")
                continue
            seen.add(part.key)
            if not part.key.startswith(self.dir) or "/" in part.key[len(self.dir) :]:
                self.fail(part.key, f"{name}: outside the snapshot's folder ({part.key})")
                continue
            kind = part.kind or _kind_from_name(name)
            if kind is None:
                self.fail(part.key, f"{name}: unknown part kind")
                continue
            if kind not in ALLOWED_KINDS[manifest.kind]:
                self.fail(part.key, f"{name}: {kind} parts do not belong in {manifest.kind} snapshots")
                continue
            out.append((part, kind))
        if manifest.kind == "full" and not any(k == "config" for _, k in out):
            self.fail(self.key, f"{MANIFEST_NAME}: a full snapshot without a config part")
        return out

    # ------------------------------------------------------------------ parts
    def _part(self, manifest: Manifest, part: PartInfo, kind: PartKind, listed: bool) -> None:
        """One listed part: there, the recorded version, and whole (size, hash, records)."""
        name = _name(part.key)
        self.check(CHECK_PARTS_EXIST)
        current = self.store.head(part.key) if listed else None
        missing = f"{name}: missing (listed in the manifest, not in the bucket)"
        if current is None and not part.version_id:
            self.fail(part.key, missing)
            self._lost(kind)
            return
        try:
            scan = self._scan(part, kind, manifest)  # the recorded version, when there is one
        except SnapshotNotFoundError:
            if current is not None:
                missing = f"{name}: missing: its recorded version {part.version_id} is not in the bucket"
            self.fail(part.key, missing)
            self._lost(kind)
            return
        if part.version_id:
            self.check(CHECK_PART_VERSIONS)
            if current is None:
                self.fail(
                    part.key,
                    f"{name}: missing: deleted after the manifest was written (a delete marker "
                    f"hides it; its recorded version {part.version_id} is still kept)",
                )
            elif current.get("VersionId") != part.version_id:
                self._overwritten(part, str(current.get("VersionId")))
        self._compare(part, scan)

    def _lost(self, kind: PartKind) -> None:
        self.parts_complete = False
        if kind in ("users", "groups", "changes"):
            self.names_complete = False

    def _overwritten(self, part: PartInfo, current_version: str) -> None:
        """A newer S3 version replaced the part after the manifest was written: say how."""
        reader = self.store.open(part.key)
        reader.drain()
        sha = reader.sha256.hexdigest()
        content = (
            "content identical (sha256 matches)"
            if sha == part.sha256
            else f"sha256 mismatch (manifest {_short(part.sha256)}, current {_short(sha)})"
        )
        self.fail(
            part.key,
            f"{_name(part.key)}: overwritten after the manifest was written: version_id mismatch "
            f"(manifest {part.version_id}, current {current_version}); {content}",
        )

    def _compare(self, part: PartInfo, scan: _PartScan) -> None:
        name = _name(part.key)
        self.check(CHECK_PART_BYTES, CHECK_PART_SHA256, CHECK_PART_RECORDS)
        self.found.parts += 1
        self.found.bytes += scan.bytes
        if scan.bytes != part.bytes:
            self.fail(part.key, f"{name}: size mismatch (manifest {part.bytes} bytes, stored {scan.bytes})")
        if scan.sha256 != part.sha256:
            self.fail(
                part.key,
                f"{name}: sha256 mismatch (manifest {_short(part.sha256)}, stored {_short(scan.sha256)})",
            )
        if scan.complete and scan.records != part.records:
            self.fail(
                part.key, f"{name}: record count mismatch (manifest {part.records}, found {scan.records})"
            )

    def _scan(self, part: PartInfo, kind: PartKind, manifest: Manifest) -> _PartScan:
        """Stream one part: hash every stored byte, parse every line, visit every record."""
        name = _name(part.key)
        scan = _PartScan()
        reader = self.store.open(part.key, part.version_id)
        buffered = io.BufferedReader(reader, _CHUNK)
        self.check(CHECK_PART_GZIP, CHECK_RECORDS_PARSE, CHECK_RECORD_TYPES)
        bad = unreadable = 0
        try:
            with gzip.GzipFile(fileobj=buffered, mode="rb") as lines:
                limit = decompressed_limit(part.bytes)
                for lineno, line in enumerate(bounded_lines(lines, part.key, limit, MAX_LINE_BYTES), start=1):
                    if not line.strip():
                        continue
                    scan.records += 1
                    problem = self._record(part, kind, manifest, line)
                    if problem is None:
                        continue
                    bad += 1
                    unreadable += problem.unreadable
                    if bad <= MAX_RECORD_FAILURES_PER_PART:
                        self.fail(part.key, f"{name}: line {lineno}: {problem.text}")
        except LineTooLongError as exc:
            scan.complete = False
            self.fail(part.key, str(exc))
        except PartTooLargeError as exc:
            scan.complete = False
            self.check(CHECK_PART_SIZE_BOUND)
            self.fail(part.key, str(exc))
        except EOFError:
            scan.complete = False
            self.fail(part.key, f"{name}: gzip stream truncated after {scan.records} records")
        except (gzip.BadGzipFile, zlib.error) as exc:
            scan.complete = False
            self.fail(part.key, f"{name}: not a valid gzip stream ({exc})")
        if bad > MAX_RECORD_FAILURES_PER_PART:
            self.fail(part.key, f"{name}: {bad - MAX_RECORD_FAILURES_PER_PART} more bad records")
        if unreadable or not scan.complete:
            self._lost(kind)  # what it held is unknown: checks that need all of it are skipped
        buffered.detach()  # keep the reader open: what gzip did not read is still hashed
        reader.drain()
        scan.bytes = reader.bytes
        scan.sha256 = reader.sha256.hexdigest()
        return scan

    # ------------------------------------------------------------------ records
    def _record(self, part: PartInfo, kind: PartKind, manifest: Manifest, line: bytes) -> _Problem | None:
        """Parse and account for one record; a problem found, or None."""
        try:
            record = parse_record(line)
        except ValidationError as exc:
            return _Problem(f"record does not parse ({_first_error(exc)})", unreadable=True)
        self.found.records += 1
        if record.type not in ALLOWED_TYPES[kind]:
            return _Problem(f"a {record.type!r} record does not belong in a {kind} part", unreadable=True)
        if kind == "state":
            self._state(record)
            return None
        self._count(record)
        problem = self._full_record(record) if manifest.kind == "full" else self._change(part, record)
        return None if problem is None else _Problem(problem, unreadable=False)

    def _count(self, record: Record) -> None:
        match record:
            case UserRecord():
                self.found.users += 1
            case GroupRecord():
                self.found.groups += 1
            case MembershipRecord():
                self.found.memberships += 1
            case UserDeletedRecord():
                self.found.users_deleted += 1
            case GroupDeletedRecord():
                self.found.groups_deleted += 1
            case MembershipRemovedRecord():
                self.found.memberships_removed += 1
            case PoolConfigRecord():
                self.found.configs += 1
            case _:
                pass

    def _state(self, record: Record) -> None:
        match record:
            case UserStateRecord():
                self.found.state_users += 1
            case GroupStateRecord():
                self.found.state_groups += 1
            case _:
                self.found.state_memberships += 1

    def _full_record(self, record: Record) -> str | None:
        match record:
            case UserRecord():
                self.users.add(record.username)
            case GroupRecord():
                self.groups.add(record.name)
            case MembershipRecord() if self.names_complete:
                self.check(CHECK_MEMBERSHIPS)
                return self._membership_problem(record, "the snapshot")
            case _:
                pass
        return None

    def _change(self, part: PartInfo, record: Record) -> str | None:
        if not is_change(record):
            return None
        self._changes_part = part.key
        return replay(record, self)

    # ChangeSink: the names an incremental's changes leave, and the problems they show
    def put_user(self, record: UserRecord) -> str | None:
        self.users.add(record.username)
        self.deleted_users.discard(record.username)
        return None

    def put_group(self, record: GroupRecord) -> str | None:
        self.groups.add(record.name)
        self.deleted_groups.discard(record.name)
        return None

    def drop_user(self, record: UserDeletedRecord) -> str | None:
        self.deleted_users.add(record.username)
        self.users.discard(record.username)
        if self._tombstone_orphaned(record.username, self.base_users):
            return f"tombstone for user {record.username!r}, who is not in the base chain"
        return None

    def drop_group(self, record: GroupDeletedRecord) -> str | None:
        self.deleted_groups.add(record.name)
        self.groups.discard(record.name)
        if self._tombstone_orphaned(record.name, self.base_groups):
            return f"tombstone for group {record.name!r}, which is not in the base chain"
        return None

    def add_member(self, record: MembershipRecord) -> str | None:
        self.pending.append((self._changes_part, record))  # judged once every name is known
        return None

    def remove_member(self, record: MembershipRemovedRecord) -> str | None:
        return None  # a removal needs no name of the chain to be right

    def _tombstone_orphaned(self, name: str, base_names: set[str]) -> bool:
        """A deletion of something the base chain never had (judged only if names are known)."""
        if not self.names_complete:
            return False
        self.check(CHECK_TOMBSTONES)
        return name not in base_names

    def _user_exists(self, username: str) -> bool:
        return username in self.users or (username in self.base_users and username not in self.deleted_users)

    def _group_exists(self, name: str) -> bool:
        return name in self.groups or (name in self.base_groups and name not in self.deleted_groups)

    def _membership_problem(self, record: MembershipRecord, where: str) -> str | None:
        if not self._user_exists(record.username):
            return f"membership of {record.username!r} in {record.group!r} names a user not in {where}"
        if not self._group_exists(record.group):
            return f"membership of {record.username!r} in {record.group!r} names a group not in {where}"
        return None

    def _check_pending(self) -> None:
        """An incremental's memberships, against the pool as it is after all its changes."""
        if not self.pending or not self.names_complete:
            return
        self.check(CHECK_MEMBERSHIPS)
        for key, record in self.pending:
            problem = self._membership_problem(record, "the chain at this snapshot")
            if problem:
                self.fail(key, f"{_name(key)}: {problem}")
        self.pending.clear()

    # ------------------------------------------------------------------ snapshot-wide
    def _strays(self, manifest: Manifest, present: set[str]) -> None:
        self.check(CHECK_STRAYS)
        listed = {p.key for p in manifest.parts}
        for key in sorted(present):
            name = key[len(self.dir) :]
            if key in listed or name in (MANIFEST_NAME, VALIDATION_REPORT_NAME):
                continue
            if is_restore_report_object(name):
                continue
            self.fail(key, f"{name}: stray object (in the snapshot's folder, not listed in the manifest)")

    def _counts(self, manifest: Manifest) -> None:
        if not self.parts_complete:
            return  # a part could not be read whole: its failure says so; counts would only echo it
        self.check(CHECK_MANIFEST_COUNTS)
        for field in COUNT_FIELDS:
            declared = getattr(manifest.counts, field)
            found = getattr(self.found, field)
            if declared != found:
                self.fail(self.key, f"{MANIFEST_NAME}: counts.{field} is {declared}, the parts hold {found}")
        has_state = any(p.kind == "state" or _kind_from_name(_name(p.key)) == "state" for p in manifest.parts)
        if manifest.kind == "full" and has_state:
            self.check(CHECK_STATE_INDEX)
            for what, indexed, held in (
                ("users", self.found.state_users, self.found.users),
                ("groups", self.found.state_groups, self.found.groups),
                ("memberships", self.found.state_memberships, self.found.memberships),
            ):
                if indexed != held:
                    self.fail(
                        self.key, f"state parts: the index lists {indexed} {what}, the snapshot holds {held}"
                    )

    # ------------------------------------------------------------------ base
    def _base(self, manifest: Manifest) -> None:
        self.check(CHECK_BASE)
        key = manifest.base_manifest_key
        if not key:
            self.fail(self.key, f"{MANIFEST_NAME}: an incremental without a base_manifest_key")
            self.names_complete = False
            return
        base = self._base_manifest(manifest, key)
        if base is None:
            self.names_complete = False
            return
        if not self._chain_signed(key):
            self.names_complete = False
            return
        self._base_verdict(key)
        try:
            self._load_base_names(key, base)
        except (
            SnapshotCorruptError,
            SnapshotNotFoundError,
            ValidationError,
            gzip.BadGzipFile,
            EOFError,
            zlib.error,
        ) as exc:
            self.fail(key, f"base {key}: its users and groups cannot be read ({exc})")
            self.names_complete = False

    def _base_manifest(self, manifest: Manifest, key: str) -> Manifest | None:
        if key in self.seen:
            self.fail(key, f"base {key}: the chain loops back to it")
            return None
        try:
            base = self.store.read_manifest(key)
        except SnapshotNotFoundError:
            self.fail(key, f"base {key}: does not exist")
            return None
        except SignatureError as exc:
            self.report.signature_failure = exc.reason
            self.fail(key, f"base {key}: refused: {exc}")
            return None
        except SnapshotCorruptError as exc:
            self.fail(key, f"base {key}: {exc}")
            return None
        if base.user_pool_id != manifest.user_pool_id:
            self.fail(key, f"base {key}: a snapshot of another pool ({base.user_pool_id})")
            return None
        if base.snapshot_id >= manifest.snapshot_id:
            self.fail(
                key, f"base {key}: snapshot {base.snapshot_id} is not older than {manifest.snapshot_id}"
            )
        return base

    def _chain_signed(self, key: str) -> bool:
        """Every manifest of the base's chain carries the signing key's signature (tags aside)."""
        try:
            chain = resolve_chain(self.store, key)  # each link read is a link verified
        except SignatureError as exc:
            self.report.signature_failure = exc.reason
            self.fail(exc.manifest_key, f"base chain: refused: {exc}")
            return False
        except SnapshotCorruptError as exc:  # a broken chain: missing, looping, another pool
            self.fail(key, f"base {key}: {exc}")
            return False
        if any(link.manifest.signature is None for link in chain):
            self.report.signature = "unsigned"
        return True

    def _base_verdict(self, key: str) -> None:
        verdict = verdict_of(self.store, key)
        if verdict == "failed":
            self.fail(key, f"base {key}: its validation failed (tag {VALIDATION_TAG}=failed)")
        elif verdict is None:
            sub = _Validator(self.store, key, self.seen).run()  # not recorded: only this one is
            if not sub.valid:
                first = sub.failures[0].problem
                self.fail(key, f"base {key}: invalid ({len(sub.failures)} problem(s), first: {first})")

    def _load_base_names(self, key: str, base: Manifest) -> None:
        """Users and groups as of the base: its state index, else the chain replayed."""
        state = [p for p in base.parts if (p.kind or _kind_from_name(_name(p.key))) == "state"]
        if state:
            for part in state:
                for record in self.store.iter_records(part):
                    if isinstance(record, UserStateRecord):
                        self.base_users.add(record.username)
                    elif isinstance(record, GroupStateRecord):
                        self.base_groups.add(record.name)
            return
        view = open_view(self.store, key)
        self.base_users.update(u.username for u in view.users())
        self.base_groups.update(g.name for g in view.groups())


def _kind_from_name(name: str) -> PartKind | None:
    if not name.endswith(PART_SUFFIX):
        return None
    stem = name[: -len(PART_SUFFIX)].rsplit("-", 1)[0]
    for kind in ALLOWED_TYPES:
        if stem == kind:
            return kind
    return None
