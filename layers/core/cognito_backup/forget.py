"""Erasure: remove people from every snapshot of a pool and every object version (`forget`).

1. Refuse, changing nothing, while an export of the pool is under way (its unfinished parts
   would be rewritten under it), or with no one named.
2. Find the people in every snapshot: the usernames, subs and e-mail addresses / phone numbers
   the snapshots hold for the usernames and subs given (a pool that signs in with e-mail takes
   the address as the username).
3. Write the ledger entry (erasure.py), so that every export from now on leaves them out;
   with `delete_from_pool`, delete them from the live pool.
4. Rewrite every snapshot that holds them: each part without their records (a new version of
   the same key), the manifest with its new parts and counts, the erasure in its
   `erasures_applied`, signed again; then validate each again (verdict tag and report).
5. Clear every other current object of the pool (reports, drill records, checkpoints): JSON
   values naming them become "[erased]", JSON Lines naming them are dropped.
6. Delete every older version that names them. A version that Object Lock keeps cannot be
   deleted before its retention ends: it is listed with that date, and a later run deletes it.
7. Check: every version of every object of the pool is read again; a run reports success only
   when none names them but those listed as locked. Then the entry is marked complete.

Everything printed, returned or logged is ids and counts, never an identifier.
"""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from .cognito import CognitoGateway
from .erasure import (
    ErasureEntry,
    Forgotten,
    Ledger,
    LedgerHasher,
    LockedVersion,
    new_erasure_id,
    write_entry,
)
from .errors import (
    EraseIncompleteError,
    ForgetRefusedError,
    SnapshotCorruptError,
    SnapshotNotFoundError,
    UsageError,
)
from .models import (
    Counts,
    GroupDeletedRecord,
    GroupRecord,
    MembershipRecord,
    MembershipRemovedRecord,
    PartInfo,
    Record,
    UserDeletedRecord,
    UserRecord,
    UserStateRecord,
    parse_record,
    utcnow,
)
from .store import (
    MANIFEST_NAME,
    MAX_PART_DECOMPRESSED_BYTES,
    REPORT_PART_SUFFIX,
    SnapshotStore,
    join_key,
    layout_kind,
    layout_snapshot_id,
    manifest_dir,
    pool_root,
)

ERASED = "[erased]"
# Attributes that name a person and may be a username (UsernameAttributes): cleared everywhere.
IDENTIFYING_ATTRIBUTES = ("email", "phone_number")

ProgressFn = Callable[[str, int], None]
# Records that name a user by username only.
NAMED_RECORDS = (MembershipRecord, MembershipRemovedRecord, UserDeletedRecord, UserStateRecord)
# How often the ledger entry records the snapshots checked so far, while snapshots are rewritten.
PROGRESS_SAVE_SECONDS = 30.0


@dataclass
class People:
    """The identifiers of the people to forget: given, and found in the snapshots."""

    usernames: set[str] = field(default_factory=set)
    subs: set[str] = field(default_factory=set)
    contacts: set[str] = field(default_factory=set)  # e-mail addresses and phone numbers, casefolded
    # The keyed hashes of unfinished erasures this run adopts (their identifiers may be gone).
    hashed: Forgotten | None = None
    _needles: tuple[list[bytes], list[bytes]] | None = field(default=None, repr=False)

    def learn_username(self, username: str) -> None:
        self.usernames.add(username)
        self._needles = None

    def learn(self, user: UserRecord) -> None:
        self.usernames.add(user.username)
        if user.sub:
            self.subs.add(user.sub)
        for name in IDENTIFYING_ATTRIBUTES:
            value = user.attributes.get(name)
            if value:
                self.contacts.add(value.casefold())
        self._needles = None

    def holds(self, record: Record) -> bool:
        if self.hashed is not None and self.hashed.holds(record):
            return True
        match record:
            case UserRecord():
                return record.username in self.usernames or (record.sub or "") in self.subs
            case MembershipRecord() | MembershipRemovedRecord() | UserDeletedRecord() | UserStateRecord():
                return record.username in self.usernames
            case _:
                return False

    def needles(self) -> tuple[list[bytes], list[bytes]]:
        """What names them in stored text: exact byte strings, and casefolded ones."""
        if self._needles is None:
            self._needles = self._make_needles()
        return self._needles

    def _make_needles(self) -> tuple[list[bytes], list[bytes]]:
        exact: set[bytes] = set()
        for name in self.usernames:
            exact.add(json.dumps(name).encode())
            exact.add(json.dumps(name, ensure_ascii=False).encode())
            exact.add(repr(name).encode())  # messages quote names with !r
        exact |= {sub.encode() for sub in self.subs}
        folded = {c.encode() for c in self.contacts}
        return sorted(exact), sorted(folded)

    def named_in(self, text: bytes) -> bool:
        exact, folded = self.needles()
        if any(n in text for n in exact):
            return True
        lowered = text.lower() if folded else b""
        return any(n in lowered for n in folded)

    def names_value(self, value: str) -> bool:
        return value in self.usernames or self.named_in(value.encode())


class ForgetResult(BaseModel):
    status: Literal["complete", "locked"]
    erasure_id: str
    ledger_key: str
    people_requested: int
    people_found: int
    snapshots_checked: int
    snapshots_rewritten: int
    parts_rewritten: int
    records_removed: int
    objects_cleared: int
    versions_deleted: int
    versions_locked: int
    locked_until: datetime | None = None
    deleted_from_pool: int = 0
    seconds: float
    seconds_per_snapshot_rewritten: float | None = None
    revalidated: dict[str, int]

    def lines(self) -> list[str]:
        out = [
            f"erasure {self.erasure_id}: {self.status}",
            f"people: {self.people_requested} named, {self.people_found} found in the snapshots",
            f"snapshots: {self.snapshots_checked} checked, {self.snapshots_rewritten} rewritten "
            f"({self.parts_rewritten} parts, {self.records_removed} records removed), revalidated "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.revalidated.items())),
            f"other objects cleared: {self.objects_cleared}; older versions deleted: {self.versions_deleted}",
        ]
        if self.versions_locked:
            out.append(
                f"versions kept by Object Lock: {self.versions_locked}, until {self.locked_until} at the "
                "latest (see the ledger entry; run forget again after that date to delete them)"
            )
        if self.deleted_from_pool:
            out.append(f"deleted from the pool: {self.deleted_from_pool}")
        out.append(f"ledger: {self.ledger_key}")
        return out


def _counted(record: Record) -> str | None:
    """The manifest count a record of a data part adds to (as the validator counts)."""
    match record:
        case UserRecord():
            return "users"
        case GroupRecord():
            return "groups"
        case MembershipRecord():
            return "memberships"
        case UserDeletedRecord():
            return "users_deleted"
        case GroupDeletedRecord():
            return "groups_deleted"
        case MembershipRemovedRecord():
            return "memberships_removed"
        case _:
            return None


def _gzip_lines(lines: Iterable[bytes]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as out:
        for line in lines:
            out.write(line)
    return buffer.getvalue()


def _text_of(key: str, body: bytes) -> bytes:
    """An object's bytes as text to search: decompressed when gzipped (bounded)."""
    if not key.endswith(".gz"):
        return body
    with gzip.GzipFile(fileobj=io.BytesIO(body), mode="rb") as stream:
        data = stream.read(MAX_PART_DECOMPRESSED_BYTES + 1)
    if len(data) > MAX_PART_DECOMPRESSED_BYTES:
        raise SnapshotCorruptError(f"{key}: decompresses to more than {MAX_PART_DECOMPRESSED_BYTES} bytes")
    return data


def _redact(value: Any, people: People) -> tuple[Any, bool]:
    """A JSON value with every string naming the people replaced, every key naming them dropped."""
    if isinstance(value, str):
        return (ERASED, True) if people.names_value(value) else (value, False)
    if isinstance(value, list):
        changed = False
        items = []
        for item in value:
            new, hit = _redact(item, people)
            items.append(new)
            changed |= hit
        return items, changed
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, v in value.items():
            if people.names_value(k):
                changed = True
                continue
            new, hit = _redact(v, people)
            out[k] = new
            changed |= hit
        return out, changed
    return value, False


def _filter(attribute: str, value: str) -> str:
    """A ListUsers filter for an exact value (quotes and backslashes escaped)."""
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} = "{quoted}"'


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _repoint_parts(document: dict[str, Any], rewritten: dict[str, dict[str, Any]]) -> bool:
    """A report's `parts` entries of parts just rewritten, given their new size, hash and count."""
    changed = False
    for part in document.get("parts") or []:
        if isinstance(part, dict) and part.get("key") in rewritten:
            part.update(rewritten[part["key"]])
            changed = True
    return changed


class Forget:
    """One erasure of some people from one pool's backups."""

    def __init__(
        self,
        store: SnapshotStore,
        pool_id: str,
        *,
        prefix: str,
        usernames: Iterable[str] = (),
        subs: Iterable[str] = (),
        gateway: CognitoGateway | None = None,
        delete_from_pool: bool = False,
        progress: ProgressFn | None = None,
    ) -> None:
        self.store = store
        self.pool_id = pool_id
        self.prefix = prefix
        self.given_usernames = [u for u in usernames]
        self.given_subs = [s for s in subs]
        self.gateway = gateway
        self.delete_from_pool = delete_from_pool
        self.progress = progress
        self.people = People(set(self.given_usernames), set(self.given_subs))
        self.root = pool_root(prefix, pool_id)
        self.counts: dict[str, int] = dict.fromkeys(
            (
                "snapshots_checked",
                "snapshots_rewritten",
                "parts_rewritten",
                "records_removed",
                "objects_cleared",
                "versions_deleted",
                "deleted_from_pool",
            ),
            0,
        )
        self.checked: list[str] = []
        self.unreadable: list[str] = []
        self.rewritten: list[str] = []
        self.clean_keys: set[str] = set()  # keys whose current version is known clear
        self.locked: dict[tuple[str, str], LockedVersion] = {}

    # ------------------------------------------------------------------ checks
    def _refuse_bad_input(self) -> None:
        if not self.pool_id:
            raise UsageError("a user pool id is required")
        if not self.given_usernames and not self.given_subs:
            raise UsageError("name at least one person: --username U or --sub S (repeatable)")
        if any(not v or not v.strip() for v in self.given_usernames + self.given_subs):
            raise UsageError("an empty username or sub was given")
        if self.delete_from_pool and self.gateway is None:
            raise UsageError("deleting from the pool needs access to it")
        self.store.signing.require_key("forget (it signs the snapshots it rewrites)")
        self.store.check_bucket(self.root)
        checkpoints = join_key(self.prefix, self.pool_id, "checkpoints") + "/"
        running = [k for k in self.store.list_keys(checkpoints) if k.rsplit("/", 1)[-1].startswith("export-")]
        if running:
            raise ForgetRefusedError(
                f"an export of {self.pool_id} is under way ({running[0]}): run forget when it has "
                "finished (the state machine's execution ends). Nothing was changed."
            )

    # ------------------------------------------------------------------ run
    def run(self) -> ForgetResult:
        started = time.monotonic()
        self._refuse_bad_input()
        manifests = sorted(
            self.store.manifest_keys(self.prefix, self.pool_id), key=lambda k: (layout_snapshot_id(k), k)
        )
        hasher = LedgerHasher.for_pool(self.store, self.pool_id)
        adopted = self._adopt(hasher)
        found = self._find(manifests)
        if adopted:
            self._find_in_versions()
        if self.delete_from_pool:
            self._find_in_pool()
        erasure_id = new_erasure_id()
        entry = ErasureEntry(
            erasure_id=erasure_id,
            user_pool_id=self.pool_id,
            requested_at=utcnow(),
            usernames=sorted(
                {hasher.hash("username", u) for u in self.people.usernames}
                | {h for e in adopted for h in e.usernames}
            ),
            subs=sorted(
                {hasher.hash("sub", s) for s in self.people.subs} | {h for e in adopted for h in e.subs}
            ),
            adopts=[e.erasure_id for e in adopted],
        )
        # Written first: from now on every export leaves these people out.
        ledger_key = write_entry(self.store, self.prefix, entry)
        self.clean_keys.add(ledger_key)
        if self.delete_from_pool:
            self._delete_from_pool()
        saved = time.monotonic()
        for key in manifests:
            try:
                self._rewrite_snapshot(key, erasure_id)
            except (SnapshotCorruptError, SnapshotNotFoundError):
                # Unreadable (or gone since it was listed): left unchecked, so it is never
                # restored; the others are cleared all the same, and the run says so.
                self.unreadable.append(key)
            if time.monotonic() - saved > PROGRESS_SAVE_SECONDS:
                # What is cleared so far is restorable even if this run is cut short (a timeout).
                write_entry(
                    self.store, self.prefix, entry.model_copy(update={"checked_manifests": self.checked})
                )
                saved = time.monotonic()
        revalidated = self._revalidate()
        self._clear_other_objects(set(manifests))
        self._sweep(delete=True)
        remaining = self._sweep(delete=False)
        entry = entry.model_copy(
            update={
                "checked_manifests": self.checked,
                "counts": dict(self.counts),
                "locked_versions": sorted(self.locked.values(), key=lambda v: (v.key, v.version_id)),
            }
        )
        if remaining or revalidated.get("failed", 0) or self.unreadable:
            write_entry(self.store, self.prefix, entry)
            raise EraseIncompleteError(
                f"erasure {erasure_id} is not complete: {remaining} object version(s) still name the "
                f"people, {revalidated.get('failed', 0)} rewritten snapshot(s) no longer validate, "
                f"{len(self.unreadable)} snapshot(s) could not be read (first: "
                f"{self.unreadable[0] if self.unreadable else 'none'}; they are never restored); run "
                f"forget again with the same people (ledger: {ledger_key})"
            )
        entry = entry.model_copy(update={"status": "complete", "finished_at": utcnow()})
        write_entry(self.store, self.prefix, entry)
        seconds = time.monotonic() - started
        rewritten = self.counts["snapshots_rewritten"]
        until = max((v.retain_until for v in self.locked.values() if v.retain_until), default=None)
        return ForgetResult(
            status="locked" if self.locked else "complete",
            erasure_id=erasure_id,
            ledger_key=ledger_key,
            people_requested=len(self.given_usernames) + len(self.given_subs),
            people_found=found,
            versions_locked=len(self.locked),
            locked_until=until,
            seconds=round(seconds, 3),
            seconds_per_snapshot_rewritten=round(seconds / rewritten, 3) if rewritten else None,
            revalidated=revalidated,
            **{k: v for k, v in self.counts.items()},
        )

    def _adopt(self, hasher: LedgerHasher) -> list[ErasureEntry]:
        """Unfinished erasures of the same people (a run cut short): this run finishes them.
        Their hashes find the people where their identifiers are no longer known (a snapshot
        the earlier run cleared only in part), and the new entry says it adopts them."""
        usernames = {hasher.hash("username", u) for u in self.given_usernames}
        subs = {hasher.hash("sub", s) for s in self.given_subs}
        adopted = [
            entry
            for _, entry in Ledger.load(self.store, self.prefix, self.pool_id).entries
            if entry.status == "in_progress" and (usernames & set(entry.usernames) or subs & set(entry.subs))
        ]
        if adopted:
            self.people.hashed = Forgotten(
                hasher, {h for e in adopted for h in e.usernames}, {h for e in adopted for h in e.subs}
            )
        return adopted

    def _note(self, what: str, n: int) -> None:
        if self.progress:
            self.progress(what, n)

    # ------------------------------------------------------------------ find
    def _matches_user(self, user: UserRecord, username_attributes: set[str]) -> bool:
        if self.people.holds(user):
            return True
        given = {u.casefold() for u in self.given_usernames}
        return any(
            user.attributes.get(a, "").casefold() in given
            for a in username_attributes
            if a in user.attributes
        )

    def _find(self, manifests: list[str]) -> int:
        """Learns every identifier the snapshots hold for the people named; how many users match."""
        found: set[str] = set()
        for key in manifests:
            try:
                self._find_in(key, found)
            except (SnapshotCorruptError, SnapshotNotFoundError):
                continue  # reported by the rewrite, which cannot read it either
        return len(found)

    def _find_in(self, key: str, found: set[str]) -> None:
        manifest = self.store.read_manifest(key)
        username_attributes: set[str] = set()
        for part in manifest.parts:
            if part.kind == "config":
                for record in self.store.iter_records(part):
                    pool = getattr(record, "user_pool", {}) or {}
                    username_attributes = {a for a in pool.get("UsernameAttributes") or []}
        for part in manifest.parts:
            if part.kind not in ("users", "changes"):
                continue
            for record in self.store.iter_records(part):
                if isinstance(record, UserRecord) and self._matches_user(record, username_attributes):
                    self.people.learn(record)
                    found.add(record.sub or record.username)

    def _find_in_versions(self) -> None:
        """After a run cut short, the people's identifiers may survive only in older versions
        (the earlier run cleared the current ones): learn them there, by the keyed hashes."""
        for version in self.store.list_versions(self.root):
            key = version["Key"]
            if not key.endswith(".jsonl.gz"):
                continue
            for line in _text_of(key, self.store.get_bytes(key, version["VersionId"])).splitlines():
                try:
                    record = parse_record(line)
                except ValueError:
                    continue  # not a record of the snapshot format (a report's lines)
                if not self.people.holds(record):
                    continue
                if isinstance(record, UserRecord):
                    self.people.learn(record)
                elif isinstance(
                    record, MembershipRecord | MembershipRemovedRecord | UserDeletedRecord | UserStateRecord
                ):
                    self.people.learn_username(record.username)

    def _find_in_pool(self) -> None:
        assert self.gateway is not None
        for kind, values in (("username", self.given_usernames), ("sub", self.given_subs)):
            for value in values:
                for user in self.gateway.iter_users(self.pool_id, _filter(kind, value)):
                    self.people.learn(user)

    def _delete_from_pool(self) -> None:
        assert self.gateway is not None
        for username in sorted(self.people.usernames):
            if any(True for _ in self.gateway.iter_users(self.pool_id, _filter("username", username))):
                self.gateway.delete_user(self.pool_id, username)
                self.counts["deleted_from_pool"] += 1

    # ------------------------------------------------------------------ snapshots
    def _rewrite_part(self, part: PartInfo, dropped: dict[str, int]) -> PartInfo | None:
        """The part without the people's records, written as a new version; None if it has none."""
        kept: list[bytes] = []
        removed = 0
        for record in self.store.iter_records(part):
            if self.people.holds(record):
                removed += 1
                counted = _counted(record) if part.kind != "state" else None
                if counted:
                    dropped[counted] = dropped.get(counted, 0) + 1
                continue
            kept.append(record.model_dump_json(exclude_defaults=False).encode() + b"\n")
        if not removed:
            return None
        body = _gzip_lines(kept)
        sha, version = self.store.put_bytes(part.key, body, "application/x-ndjson")
        self.counts["parts_rewritten"] += 1
        self.counts["records_removed"] += removed
        update: dict[str, Any] = {
            "records": len(kept),
            "bytes": len(body),
            "sha256": sha,
            "version_id": version,
        }
        return part.model_copy(update=update)

    def _rewrite_snapshot(self, key: str, erasure_id: str) -> None:
        manifest = self.store.read_manifest(key)
        dropped: dict[str, int] = {}
        parts: list[PartInfo] = []
        changed = False
        for part in manifest.parts:
            new = self._rewrite_part(part, dropped)
            changed |= new is not None
            parts.append(new or part)
            self.clean_keys.add(part.key)
        self.counts["snapshots_checked"] += 1
        self.checked.append(key)
        if changed:
            counts = manifest.counts.model_copy(
                update={k: getattr(manifest.counts, k) - n for k, n in dropped.items()}
            )
            rewritten = manifest.model_copy(
                update={
                    "parts": parts,
                    "counts": Counts.model_validate(counts.model_dump()),
                    "erasures_applied": [*manifest.erasures_applied, erasure_id],
                    "signature": None,
                }
            )
            self.store.write_manifest(manifest_dir(key), rewritten)
            self.counts["snapshots_rewritten"] += 1
            self.rewritten.append(key)
        self._note("snapshots", self.counts["snapshots_checked"])

    def _revalidate(self) -> dict[str, int]:
        """Validates every rewritten snapshot again, oldest first (an incremental's check reads
        its base's verdict). `failed` counts those that had passed and no longer do."""
        from .validate import validate_snapshot

        out = {"passed": 0, "failed": 0}
        for key in sorted(self.rewritten, key=lambda k: (layout_snapshot_id(k), layout_kind(k) != "full")):
            report = validate_snapshot(self.store, key, record=True)
            out["passed" if report.valid else "failed"] += 1
        return out

    # ------------------------------------------------------------------ other objects
    def _clear_other_objects(self, manifests: set[str]) -> None:
        """Reports, records and checkpoints beside the snapshots. JSON Lines parts (a restore
        report's sections) first, so that a report naming a part it rewrote is then given the
        part's new size, hash and count along with its own clearing."""
        keys = [
            k
            for k in self.store.list_keys(self.root)
            if k not in manifests and not k.endswith("/" + MANIFEST_NAME) and k not in self.clean_keys
        ]
        rewritten: dict[str, dict[str, Any]] = {}  # part key -> its new records, bytes, sha256
        for key in sorted(keys, key=lambda k: (k.endswith(".json"), k)):
            body = self.store.get_bytes(key)
            if key.endswith(".json") and rewritten:
                document = _json_or_none(body)
                if isinstance(document, dict) and _repoint_parts(document, rewritten):
                    cleared, _ = _redact(document, self.people)
                    self.store.put_bytes(key, json.dumps(cleared, indent=2).encode(), "application/json")
                    self.counts["objects_cleared"] += 1
                    continue
            if not self.people.named_in(_text_of(key, body)):
                continue
            self._clear(key, body, rewritten)
            self.counts["objects_cleared"] += 1

    def _clear(self, key: str, body: bytes, rewritten: dict[str, dict[str, Any]]) -> None:
        if key.endswith((".jsonl.gz", REPORT_PART_SUFFIX)):
            lines = _text_of(key, body).splitlines(keepends=True)
            kept = [line for line in lines if not self.people.named_in(line)]
            new = _gzip_lines(kept)
            sha, _ = self.store.put_bytes(key, new, "application/x-ndjson")
            rewritten[key] = {"records": len(kept), "bytes": len(new), "sha256": sha}
            return
        if key.endswith(".json"):
            document = _json_or_none(body)
            if document is not None:
                cleared, _ = _redact(document, self.people)
                self.store.put_bytes(key, json.dumps(cleared, indent=2).encode(), "application/json")
                return
        self.store.delete(key)  # not a format it can clear: gone (its versions are swept next)

    # ------------------------------------------------------------------ versions
    def _sweep(self, *, delete: bool) -> int:
        """Older versions that name the people: deleted (or found locked). With `delete`
        False, every version is read and those that still name them counted."""
        remaining = 0
        for version in self.store.list_versions(self.root):
            key, version_id, latest = version["Key"], version["VersionId"], version["IsLatest"]
            if (key, version_id) in self.locked:
                continue
            if delete and latest:
                continue  # current versions were rewritten above; the check reads them
            if key.endswith("/" + MANIFEST_NAME) and delete:
                continue  # a manifest names parts and counts, never a person (checked below)
            body = self.store.get_bytes(key, version_id)
            if not self.people.named_in(_text_of(key, body)):
                continue
            if not delete:
                remaining += 1
                continue
            locked = self.store.delete_version(key, version_id)
            if locked is None:
                self.counts["versions_deleted"] += 1
            else:
                self.locked[(key, version_id)] = LockedVersion(
                    key=key, version_id=version_id, retain_until=locked
                )
        return remaining
