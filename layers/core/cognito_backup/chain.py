"""A snapshot chain (a full snapshot and the incrementals on it) and the pool it describes.

`PointInTimeView` streams the users, groups and memberships of the pool as it was at the
chain's last snapshot: the full snapshot's parts, overlaid with every incremental's
changes in order. Only the changes (small by design) are held in memory; the full
snapshot's records are streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ChainBrokenError, SnapshotCorruptError, SnapshotNotFoundError
from .models import (
    GroupDeletedRecord,
    GroupRecord,
    Manifest,
    MembershipRecord,
    MembershipRemovedRecord,
    PartKind,
    PoolConfigRecord,
    Record,
    UserDeletedRecord,
    UserRecord,
)
from .replay import is_change, replay
from .store import SnapshotStore

MAX_CHAIN = 10_000


@dataclass(frozen=True)
class Link:
    key: str
    manifest: Manifest


def resolve_chain(store: SnapshotStore, manifest_key: str) -> list[Link]:
    """The chain ending at `manifest_key`, oldest (the full snapshot) first."""
    links: list[Link] = []
    key: str | None = manifest_key
    seen: set[str] = set()
    while key is not None:
        if key in seen or len(links) > MAX_CHAIN:
            raise ChainBrokenError(f"snapshot chain loops at {key}")
        seen.add(key)
        try:
            manifest = store.read_manifest(key)
        except SnapshotNotFoundError as exc:
            if not links:
                raise
            raise ChainBrokenError(
                f"broken chain: {links[-1].key} builds on {key}, which does not exist"
            ) from exc
        if links and manifest.user_pool_id != links[-1].manifest.user_pool_id:
            raise ChainBrokenError(f"broken chain: {key} is a snapshot of another pool")
        links.append(Link(key, manifest))
        if manifest.kind == "full":
            break
        if not manifest.base_manifest_key:
            raise ChainBrokenError(f"broken chain: incremental {key} names no base")
        key = manifest.base_manifest_key
    links.reverse()
    return links


class PointInTimeView:
    """The pool as of the chain's last snapshot."""

    def __init__(self, store: SnapshotStore, chain: list[Link]) -> None:
        if not chain or chain[0].manifest.kind != "full":
            raise ChainBrokenError("a chain starts with a full snapshot")
        self.store = store
        self.chain = chain
        self._users: dict[str, UserRecord | None] = {}
        self._groups: dict[str, GroupRecord | None] = {}
        self._added: set[tuple[str, str]] = set()
        self._removed: set[tuple[str, str]] = set()
        for link in chain[1:]:
            for record in self._records(link.manifest, "changes"):
                self._apply(record)

    @property
    def target(self) -> Link:
        return self.chain[-1]

    def _records(self, manifest: Manifest, kind: PartKind) -> Iterator[Record]:
        for part in manifest.parts:
            if part.kind == kind:
                yield from self.store.iter_records(part)

    def _apply(self, record: Record) -> None:
        if not is_change(record):
            raise SnapshotCorruptError(f"unexpected record type {record.type!r} in changes")
        replay(record, self)

    # ChangeSink: the view's state as of the chain's last snapshot
    def put_user(self, record: UserRecord) -> None:
        self._users[record.username] = record

    def drop_user(self, record: UserDeletedRecord) -> None:
        self._users[record.username] = None

    def put_group(self, record: GroupRecord) -> None:
        self._groups[record.name] = record

    def drop_group(self, record: GroupDeletedRecord) -> None:
        self._groups[record.name] = None

    def add_member(self, record: MembershipRecord) -> None:
        self._added.add((record.group, record.username))
        self._removed.discard((record.group, record.username))

    def remove_member(self, record: MembershipRemovedRecord) -> None:
        self._removed.add((record.group, record.username))
        self._added.discard((record.group, record.username))

    def config(self) -> PoolConfigRecord | None:
        for link in reversed(self.chain):
            for record in self._records(link.manifest, "config"):
                if isinstance(record, PoolConfigRecord):
                    return record
        return None

    def users(self) -> Iterator[UserRecord]:
        done: set[str] = set()
        for record in self._records(self.chain[0].manifest, "users"):
            if not isinstance(record, UserRecord):
                continue
            if record.username in self._users:
                override = self._users[record.username]
                done.add(record.username)
                if override is not None:
                    yield override
            else:
                yield record
        for username, override in self._users.items():
            if override is not None and username not in done:
                yield override

    def groups(self) -> Iterator[GroupRecord]:
        done: set[str] = set()
        for record in self._records(self.chain[0].manifest, "groups"):
            if not isinstance(record, GroupRecord):
                continue
            if record.name in self._groups:
                override = self._groups[record.name]
                done.add(record.name)
                if override is not None:
                    yield override
            else:
                yield record
        for name, override in self._groups.items():
            if override is not None and name not in done:
                yield override

    def memberships(self) -> Iterator[MembershipRecord]:
        for record in self._records(self.chain[0].manifest, "memberships"):
            if not isinstance(record, MembershipRecord):
                continue
            pair = (record.group, record.username)
            if pair not in self._removed and pair not in self._added:
                yield record
        for group, username in sorted(self._added):
            yield MembershipRecord(group=group, username=username)


def open_view(store: SnapshotStore, manifest_key: str) -> PointInTimeView:
    return PointInTimeView(store, resolve_chain(store, manifest_key))
