"""Incremental exports, their base, and diffs between snapshots.

How an incremental knows the previous state cheaply: a full snapshot carries a compact
*state index* (parts of kind `state`): one `state_user` (username, content digest) per
user, one `state_group` per group and one `membership` per membership. The state at an
incremental's base is that index with the changes of the chain's incrementals applied
in order: it reads the last full snapshot's index and a few small change parts, never
the users themselves, and never anything older than the last full snapshot. Changes are
found by content (digest.py), so disabling a user or a group change is seen even though
Cognito's modification date does not move. Whatever the base had and the listing did not
see is a deletion, written as a tombstone.

Measured on 100,000 users with 1 % changed (scripts/bench_incremental.py): the full
snapshot is about 8 MiB, the incremental about 50 KiB.

The base state lives in a SQLite file in the temporary directory, not in memory, so an
incremental of a large pool stays flat in memory. While it runs, an incremental writes
its own state index as *working* parts beside its checkpoint (deleted when it finishes):
on a resumed run they rebuild the "seen" marks, since a checkpoint always describes
exactly the parts written so far.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .digest import group_digest, user_digest
from .errors import BackupError, SnapshotCorruptError
from .export import ExportRun
from .models import (
    GroupDeletedRecord,
    GroupRecord,
    GroupStateRecord,
    Manifest,
    MembershipRecord,
    MembershipRemovedRecord,
    Record,
    UserDeletedRecord,
    UserRecord,
    UserStateRecord,
)
from .observability import logger
from .replay import is_change, replay
from .store import SnapshotStore

_SCHEMA = """
CREATE TABLE users (username TEXT PRIMARY KEY, digest TEXT, seen INTEGER DEFAULT 0);
CREATE TABLE groups_ (name TEXT PRIMARY KEY, digest TEXT, seen INTEGER DEFAULT 0);
CREATE TABLE members (grp TEXT, username TEXT, seen INTEGER DEFAULT 0, PRIMARY KEY (grp, username));
"""


class StateIndex:
    """A snapshot's state index in SQLite: lookups by key, seen marks, leftovers."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cognito-backup-state-")
        self.db = sqlite3.connect(str(Path(self._dir.name) / "state.db"))
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def load(self, store: SnapshotStore, manifest: Manifest, *, seen: int = 0) -> None:
        rows_u: list[tuple[str, str, int]] = []
        rows_g: list[tuple[str, str, int]] = []
        rows_m: list[tuple[str, str, int]] = []
        for part in manifest.parts:
            if part.kind != "state":
                continue
            for record in store.iter_records(part):
                if isinstance(record, UserStateRecord):
                    rows_u.append((record.username, record.digest, seen))
                elif isinstance(record, GroupStateRecord):
                    rows_g.append((record.name, record.digest, seen))
                elif isinstance(record, MembershipRecord):
                    rows_m.append((record.group, record.username, seen))
                if len(rows_u) + len(rows_m) >= 10_000:
                    self._insert(rows_u, rows_g, rows_m)
        self._insert(rows_u, rows_g, rows_m)

    def load_chain(self, store: SnapshotStore, manifest_key: str) -> None:
        """The state as of `manifest_key`: its full snapshot's index plus the changes since."""
        from .chain import resolve_chain

        chain = resolve_chain(store, manifest_key)
        self.load(store, chain[0].manifest)
        for link in chain[1:]:
            for part in link.manifest.parts:
                if part.kind == "changes":
                    for record in store.iter_records(part):
                        self.apply(record)

    def apply(self, record: Record) -> None:
        """One change record of an incremental, applied to the index (others are ignored)."""
        if is_change(record):
            replay(record, self)

    # ChangeSink: the digest index
    def put_user(self, record: UserRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO users VALUES (?, ?, 0)", (record.username, user_digest(record))
        )

    def drop_user(self, record: UserDeletedRecord) -> None:
        self.db.execute("DELETE FROM users WHERE username = ?", (record.username,))

    def put_group(self, record: GroupRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO groups_ VALUES (?, ?, 0)", (record.name, group_digest(record))
        )

    def drop_group(self, record: GroupDeletedRecord) -> None:
        self.db.execute("DELETE FROM groups_ WHERE name = ?", (record.name,))

    def add_member(self, record: MembershipRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO members VALUES (?, ?, 0)", (record.group, record.username))

    def remove_member(self, record: MembershipRemovedRecord) -> None:
        self.db.execute("DELETE FROM members WHERE grp = ? AND username = ?", (record.group, record.username))

    def iter_users(self) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT username, digest FROM users ORDER BY username")

    def iter_groups(self) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT name, digest FROM groups_ ORDER BY name")

    def iter_members(self) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT grp, username FROM members ORDER BY grp, username")

    def _insert(self, u: list[Any], g: list[Any], m: list[Any]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO users VALUES (?, ?, ?)", u)
        self.db.executemany("INSERT OR REPLACE INTO groups_ VALUES (?, ?, ?)", g)
        self.db.executemany("INSERT OR REPLACE INTO members VALUES (?, ?, ?)", m)
        u.clear()
        g.clear()
        m.clear()

    def mark_seen_from(self, store: SnapshotStore, manifest_parts: list[Any]) -> None:
        for part in manifest_parts:
            if part.kind != "state":
                continue
            for record in store.iter_records(part):
                if isinstance(record, UserStateRecord):
                    self.user_seen(record.username)
                elif isinstance(record, GroupStateRecord):
                    self.group_seen(record.name)
                elif isinstance(record, MembershipRecord):
                    self.member_seen(record.group, record.username)

    def user_digest(self, username: str) -> str | None:
        row = self.db.execute("SELECT digest FROM users WHERE username = ?", (username,)).fetchone()
        return None if row is None else str(row[0])

    def group_digest(self, name: str) -> str | None:
        row = self.db.execute("SELECT digest FROM groups_ WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def has_member(self, group: str, username: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM members WHERE grp = ? AND username = ?", (group, username)
        ).fetchone()
        return row is not None

    def user_seen(self, username: str) -> None:
        self.db.execute("UPDATE users SET seen = 1 WHERE username = ?", (username,))

    def group_seen(self, name: str) -> None:
        self.db.execute("UPDATE groups_ SET seen = 1 WHERE name = ?", (name,))

    def member_seen(self, group: str, username: str) -> None:
        self.db.execute("UPDATE members SET seen = 1 WHERE grp = ? AND username = ?", (group, username))

    def unseen_users(self) -> Iterator[str]:
        for (name,) in self.db.execute("SELECT username FROM users WHERE seen = 0 ORDER BY username"):
            yield name

    def unseen_groups(self) -> Iterator[str]:
        for (name,) in self.db.execute("SELECT name FROM groups_ WHERE seen = 0 ORDER BY name"):
            yield name

    def unseen_members(self) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT grp, username FROM members WHERE seen = 0 ORDER BY grp, username")


class IncrementalRun(ExportRun):
    """An export that writes only what changed since its base."""

    WORKING_KINDS = frozenset({"state"})

    def run(self) -> bool:
        assert self.cp.base_manifest_key, "an incremental needs a base"
        self.start_config()  # read while the base's state is loaded
        self.base = StateIndex()
        try:
            self.base.load_chain(self.store, self.cp.base_manifest_key)
            self.base.mark_seen_from(self.store, self.cp.working_parts)
            return super().run()
        finally:
            self.base.close()

    def on_group(self, group: Any) -> None:
        digest = group_digest(group)
        self.emit("state", GroupStateRecord(name=group.name, digest=digest))
        if self.base.group_digest(group.name) != digest:
            self.emit("changes", group)
            self.cp.counts.groups += 1
        self.base.group_seen(group.name)

    def on_user(self, user: UserRecord) -> None:
        digest = user_digest(user)
        self.emit("state", UserStateRecord(username=user.username, digest=digest))
        if self.base.user_digest(user.username) != digest:
            self.emit("changes", user)
            self.cp.counts.users += 1
        self.base.user_seen(user.username)

    def on_membership(self, membership: MembershipRecord) -> None:
        self.emit("state", membership)
        if not self.base.has_member(membership.group, membership.username):
            self.emit("changes", membership)
            self.cp.counts.memberships += 1
        self.base.member_seen(membership.group, membership.username)

    def finish(self) -> str:
        for username in self.base.unseen_users():
            if self.forgotten is not None and self.forgotten.username(username):
                continue  # in a base `forget` has not cleared yet: its tombstone would name them
            self.emit("changes", UserDeletedRecord(username=username))
            self.cp.counts.users_deleted += 1
            self.roll_full_parts()
        for name in self.base.unseen_groups():
            self.emit("changes", GroupDeletedRecord(name=name))
            self.cp.counts.groups_deleted += 1
        for group, username in self.base.unseen_members():
            if self.forgotten is not None and self.forgotten.username(username):
                continue
            self.emit("changes", MembershipRemovedRecord(group=group, username=username))
            self.cp.counts.memberships_removed += 1
            self.roll_full_parts()
        return super().finish()


def find_base(store: SnapshotStore, prefix: str, pool_id: str) -> str | None:
    """The newest valid snapshot of the pool (full or incremental), or None.

    Every manifest of its chain, down to the full snapshot, must carry the signing key's
    signature (checked here whatever the tag says: anyone who may tag can write `passed`).
    A snapshot the validator marked failed is passed over; one not yet validated is
    validated now. So a broken, unsigned or forged link is never built on: the chain
    restarts from the last valid snapshot, or a full export is made.
    """
    from .chain import resolve_chain
    from .validate import validate_snapshot, verdict_of

    for key in store.manifest_keys(prefix, pool_id):
        try:
            resolve_chain(store, key)  # reads, and so verifies, every link
        except SnapshotCorruptError as exc:  # SignatureError and ChainBrokenError included
            logger.warning(
                "skipping a snapshot whose chain does not verify as a base",
                extra={"manifest_key": key, "reason": getattr(exc, "reason", type(exc).__name__)},
            )
            continue
        verdict = verdict_of(store, key)
        if verdict is None:
            verdict = "passed" if validate_snapshot(store, key).valid else "failed"
        if verdict == "passed":
            return key
        logger.warning("skipping invalid snapshot as a base", extra={"manifest_key": key})
    return None


# ---------------------------------------------------------------------- diff


@dataclass
class Delta:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}


@dataclass
class SnapshotDiff:
    from_key: str
    to_key: str
    users: Delta = field(default_factory=Delta)
    groups: Delta = field(default_factory=Delta)
    memberships: Delta = field(default_factory=Delta)

    def as_dict(self, *, details: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.from_key, "to": self.to_key}
        for name in ("users", "groups", "memberships"):
            delta: Delta = getattr(self, name)
            out[name] = delta.counts()
            if details:
                out[name].update(
                    added_names=delta.added, removed_names=delta.removed, changed_names=delta.changed
                )
        return out

    def lines(self, *, details: bool) -> list[str]:
        out = [f"from {self.from_key}", f"to   {self.to_key}"]
        for name in ("users", "groups", "memberships"):
            delta: Delta = getattr(self, name)
            c = delta.counts()
            out.append(f"{name:<12} +{c['added']} -{c['removed']} ~{c['changed']}")
            if details:
                out += [f"  + {n}" for n in delta.added]
                out += [f"  - {n}" for n in delta.removed]
                out += [f"  ~ {n}" for n in delta.changed]
        return out


def diff_snapshots(store: SnapshotStore, from_key: str, to_key: str) -> SnapshotDiff:
    """Users, groups and memberships added, removed and changed between two snapshots."""
    old, new = store.read_manifest(from_key), store.read_manifest(to_key)
    if old.user_pool_id != new.user_pool_id:
        raise BackupError("the two snapshots are of different pools")
    result = SnapshotDiff(from_key, to_key)
    before, after = StateIndex(), StateIndex()
    try:
        before.load_chain(store, from_key)
        after.load_chain(store, to_key)
        for username, digest in after.iter_users():
            _compare(result.users, username, before.user_digest(username), digest)
            before.user_seen(username)
        for name, digest in after.iter_groups():
            _compare(result.groups, name, before.group_digest(name), digest)
            before.group_seen(name)
        for group, username in after.iter_members():
            if not before.has_member(group, username):
                result.memberships.added.append(f"{group}/{username}")
            before.member_seen(group, username)
        result.users.removed = list(before.unseen_users())
        result.groups.removed = list(before.unseen_groups())
        result.memberships.removed = [f"{g}/{u}" for g, u in before.unseen_members()]
    finally:
        before.close()
        after.close()
    return result


def _compare(delta: Delta, name: str, old: str | None, new: str) -> None:
    if old is None:
        delta.added.append(name)
    elif old != new:
        delta.changed.append(name)
