"""The erasure ledger: who was forgotten, as keyed hashes, and what every later run must honour.

Layout (beside the snapshots, never inside one):
    <prefix>/<pool>/erasures/<erasure-id>.json     one signed entry per `forget`

An entry holds HMAC-SHA-256 hashes of the usernames and subs erased, never the identifiers.
The hash key is derived from the signing key (`ManifestSigning.derived_key`: a KMS GenerateMac
of a label naming the pool), so only a holder of GenerateMac on it (the exports and `forget`)
can test a candidate identifier against the ledger: a reader of the bucket cannot.

What consults it:
- every export (`Forgotten`): a forgotten person is never written again, even while still in
  the pool; the manifest lists the entries applied (`erasures_applied`, signed);
- every restore (`require_cleared`): each snapshot of the chain must be clear of every entry,
  either because it was written after it (the id is in its `erasures_applied`) or because the
  `forget` that made the entry checked it (its key is in the entry's `checked_manifests`).
  Otherwise the restore is refused: a forgotten person never comes back.
Entries are signed like manifests, so that a forged entry cannot make the exports drop a user.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ErasurePendingError, SnapshotCorruptError
from .models import (
    Manifest,
    MembershipRecord,
    MembershipRemovedRecord,
    Record,
    UserDeletedRecord,
    UserRecord,
    UserStateRecord,
    utcnow,
)
from .store import MAX_MANIFEST_BYTES, SnapshotStore, join_key, snapshot_id_for

ERASURES = "erasures"
HASH_LABEL = "cognito-backup/erasure-ledger/v1\n"
EntryStatus = Literal["in_progress", "complete"]


def erasures_prefix(prefix: str, pool_id: str) -> str:
    return join_key(prefix, pool_id, ERASURES) + "/"


def entry_key(prefix: str, pool_id: str, erasure_id: str) -> str:
    return erasures_prefix(prefix, pool_id) + f"{erasure_id}.json"


def new_erasure_id(now: datetime | None = None) -> str:
    """Sorts by time; the random tail keeps two forgets of one second apart."""
    return f"{snapshot_id_for(now or utcnow())}-{secrets.token_hex(3)}"


class LockedVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    version_id: str
    retain_until: datetime | None = None


class ErasureEntry(BaseModel):
    """One `forget`: keyed hashes, what it checked, what it could not delete yet."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = 1
    erasure_id: str
    user_pool_id: str
    requested_at: datetime
    finished_at: datetime | None = None
    status: EntryStatus = "in_progress"
    usernames: list[str] = Field(default_factory=list, description="HMAC-SHA-256 (hex) of each username")
    subs: list[str] = Field(default_factory=list, description="HMAC-SHA-256 (hex) of each sub")
    checked_manifests: list[str] = Field(
        default_factory=list, description="Keys of the manifests found clear of these people, or made so"
    )
    adopts: list[str] = Field(
        default_factory=list, description="Unfinished erasures of the same people that this one finishes"
    )
    counts: dict[str, int] = Field(default_factory=dict)
    locked_versions: list[LockedVersion] = Field(default_factory=list)


class LedgerHasher:
    """The keyed hash of an identifier (kind `username` or `sub`) for one pool."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_pool(cls, store: SnapshotStore, pool_id: str) -> LedgerHasher:
        return cls(store.signing.derived_key(HASH_LABEL + pool_id))

    def hash(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\n{value}".encode(), hashlib.sha256).hexdigest()


class Ledger:
    """The verified entries of one pool's ledger, oldest first."""

    def __init__(self, entries: Sequence[tuple[str, ErasureEntry]]) -> None:
        self.entries = list(entries)

    @property
    def ids(self) -> list[str]:
        return [entry.erasure_id for _, entry in self.entries]

    @classmethod
    def load(cls, store: SnapshotStore, prefix: str, pool_id: str) -> Ledger:
        """Every entry, its signature checked (SignatureError names a forged one)."""
        entries: list[tuple[str, ErasureEntry]] = []
        for key in sorted(store.list_keys(erasures_prefix(prefix, pool_id))):
            if not key.endswith(".json"):
                continue
            raw = store.get_bytes(key, max_bytes=MAX_MANIFEST_BYTES)
            try:
                document = json.loads(raw)
                store.signing.check_document(key, document)
                entry = ErasureEntry.model_validate(document)
            except (ValueError, ValidationError) as exc:
                raise SnapshotCorruptError(f"{key}: not an erasure ledger entry") from exc
            if entry.user_pool_id != pool_id:
                raise SnapshotCorruptError(f"{key}: an erasure of another pool")
            entries.append((key, entry))
        return cls(entries)

    def forgotten(self, store: SnapshotStore, pool_id: str) -> Forgotten | None:
        """The filter of every person the ledger names; None when it names nobody (no KMS call)."""
        if not self.entries:
            return None
        hasher = LedgerHasher.for_pool(store, pool_id)
        usernames = {h for _, e in self.entries for h in e.usernames}
        subs = {h for _, e in self.entries for h in e.subs}
        return Forgotten(hasher, usernames, subs)


def write_entry(store: SnapshotStore, prefix: str, entry: ErasureEntry) -> str:
    key = entry_key(prefix, entry.user_pool_id, entry.erasure_id)
    document = json.loads(entry.model_dump_json())
    store.put_bytes(
        key, json.dumps(store.signing.sign_document(document), indent=2).encode(), "application/json"
    )
    return key


class Forgotten:
    """Whether a record is of a forgotten person, by the keyed hashes of its username and sub."""

    def __init__(self, hasher: LedgerHasher, usernames: Iterable[str], subs: Iterable[str]) -> None:
        self._hasher = hasher
        self._usernames = frozenset(usernames)
        self._subs = frozenset(subs)

    def username(self, username: str) -> bool:
        return self._hasher.hash("username", username) in self._usernames

    def holds(self, record: Record | object) -> bool:
        match record:
            case UserRecord():
                sub = record.sub
                return self.username(record.username) or (
                    sub is not None and self._hasher.hash("sub", sub) in self._subs
                )
            case MembershipRecord() | MembershipRemovedRecord() | UserDeletedRecord() | UserStateRecord():
                return self.username(record.username)
            case _:
                return False


def require_cleared(
    store: SnapshotStore, prefix: str, pool_id: str, manifests: Sequence[tuple[str, Manifest]]
) -> None:
    """Refuse (ErasurePendingError) a chain of which a snapshot may still hold a forgotten
    person. `manifests` are (key, Manifest) pairs; ids only in the message."""
    ledger = Ledger.load(store, prefix, pool_id)
    entries = [entry for _, entry in ledger.entries]
    for key, entry in ledger.entries:
        # An unfinished erasure (a run cut short) is continued by the one that adopted it.
        covering = [entry] + [e for e in entries if entry.erasure_id in e.adopts]
        for manifest_key, manifest in manifests:
            if any(
                c.erasure_id in manifest.erasures_applied or manifest_key in c.checked_manifests
                for c in covering
            ):
                continue
            raise ErasurePendingError(
                f"snapshot {manifest_key.rsplit('/', 2)[-2]} predates erasure {entry.erasure_id} "
                f"({key}) and has not been cleared of it: run `cognito-backup forget` again with the "
                "same people to finish that erasure, then restore. Nothing was written."
            )
