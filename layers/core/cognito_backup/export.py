"""Full export of a user pool: streamed, paced, resumable.

The run is a sequence of steps; between steps it checks its deadline and whether a part
is full, and at those boundaries it closes the open parts and saves a checkpoint in S3.
A later call with the same pool, bucket and prefix continues the same snapshot. Part
keys are numbered from the checkpoint, so a run that crashed between checkpoints is
simply redone from the last one, overwriting what it had written.

Listing runs as "cursors" (16 `sub` prefix shards of ListUsers, then one per group for
ListUsersInGroup) fetched a page at a time, several cursors at once, all sharing the
UserList quota through the pacer.

There is no serial prelude: the S3 checks, the pool check and the checkpoint read run at
once, and the pool's configuration (a dozen calls on other quota categories than UserList)
is read on a thread of its own while the groups and users are listed; it is written as soon
as it is read, and always before a checkpoint or the manifest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from . import __version__
from .cognito import SUB_SHARDS, CognitoGateway, Page
from .digest import group_digest, user_digest
from .erasure import Forgotten
from .models import (
    SCHEMA_VERSION,
    Counts,
    ExportCheckpoint,
    GroupStateRecord,
    Manifest,
    MembershipRecord,
    PartKind,
    PoolConfigRecord,
    SnapshotKind,
    UserRecord,
    UserStateRecord,
    utcnow,
)
from .pacing import Deadline
from .store import (
    DEFAULT_PART_MAX_BYTES,
    PART_SUFFIX,
    PartWriter,
    SnapshotStore,
    checkpoint_key,
    join_key,
    snapshot_dir,
    snapshot_id_for,
)

# Listing calls in flight. At Cognito's 30 UserList calls per second and ~50-100 ms a
# call, 3 in flight is the least that can spend the budget; 6 leaves room for slow calls
# while a long group's chain of pages still gets a sixth of the budget (docs/benchmarks.md).
DEFAULT_PARALLELISM = 6


@dataclass(frozen=True)
class ExportOptions:
    prefix: str = "backups"
    parallelism: int = DEFAULT_PARALLELISM
    part_max_bytes: int = DEFAULT_PART_MAX_BYTES


class ExportResult(BaseModel):
    status: Literal["complete", "incomplete"]
    kind: SnapshotKind
    snapshot_id: str
    manifest_key: str | None = None
    base_manifest_key: str | None = None
    counts: Counts
    parts: int
    invocations: int


ProgressFn = Callable[[Counts], None]


def _cursor_ids(cp: ExportCheckpoint) -> list[str]:
    return [f"u:{s}" for s in SUB_SHARDS] + [f"g:{i}" for i in range(len(cp.group_names))]


def _priority(cursor: str, rank: int) -> tuple[int, int]:
    """Which waiting cursor gets the next free slot (smallest first).

    A group's length is unknown until it is listed, and a long group is a chain of pages
    that can only be fetched one after another: it must start early and keep its slot
    (a cursor under way asks for its next page as soon as a page arrives), or it is left
    running alone at the end, with the budget idle. The 16 `sub` shards are all about the
    same length and fill the budget around the groups. So: groups before shards.
    """
    return (0 if cursor.startswith("g:") else 1, rank)


class ExportRun:
    """One invocation's worth of work on one snapshot (new or resumed)."""

    # Part kinds written for the run's own use, outside the snapshot, deleted at the end.
    WORKING_KINDS: frozenset[PartKind] = frozenset()

    def __init__(
        self,
        gateway: CognitoGateway,
        store: SnapshotStore,
        cp: ExportCheckpoint,
        deadline: Deadline,
        options: ExportOptions,
        progress: ProgressFn | None = None,
    ) -> None:
        self.gw = gateway
        self.store = store
        self.cp = cp
        self.deadline = deadline
        self.options = options
        self.progress = progress
        self.directory = snapshot_dir(cp.prefix, cp.user_pool_id, cp.kind, cp.snapshot_id)
        self._writers: dict[PartKind, PartWriter] = {}
        self._ckpt_key = checkpoint_key(cp.prefix, cp.user_pool_id, f"export-{cp.kind}")
        self.working_dir = join_key(cp.prefix, cp.user_pool_id, "checkpoints", f"work-{cp.snapshot_id}") + "/"
        self._config: Future[PoolConfigRecord] | None = None  # the configuration being read
        # The first ListGroups page, fetched beside the checks (`run_export`), if it was.
        self.first_groups_page: Future[Page[Any]] | None = None
        # The people the erasure ledger names (erasure.py): never written. None: nobody.
        self.forgotten: Forgotten | None = None

    # ------------------------------------------------------------------ parts
    def _writer(self, kind: PartKind) -> PartWriter:
        if kind not in self._writers:
            directory = self.working_dir if kind in self.WORKING_KINDS else self.directory
            self._writers[kind] = PartWriter(
                self.store, directory, kind, max_bytes=self.options.part_max_bytes
            )
        return self._writers[kind]

    def emit(self, kind: PartKind, record: BaseModel) -> None:
        self._writer(kind).write(record)

    def _close_parts(self) -> None:
        for writer in self._writers.values():
            self.cp.part_seq += 1
            info = writer.close(self.cp.part_seq)
            if info is None:
                self.cp.part_seq -= 1
            elif writer.kind in self.WORKING_KINDS:
                self.cp.working_parts.append(info)
            else:
                self.cp.parts.append(info)

    def roll_full_parts(self) -> None:
        if any(w.full for w in self._writers.values()):
            self._close_parts()

    def checkpoint(self) -> None:
        self._settle_config()
        self._close_parts()
        self.store.put_json(self._ckpt_key, self.cp)

    def _boundary(self) -> bool:
        """Between steps: roll full parts; True when the run must stop now."""
        if self.progress:
            self.progress(self.cp.counts)
        if self._config is not None and self._config.done():
            self._settle_config()  # written as soon as it is read; a failure surfaces here
        if self.deadline.expired():
            self.checkpoint()
            return True
        if any(w.full for w in self._writers.values()):
            self.checkpoint()
        return False

    # ------------------------------------------------------------------ steps
    def start_config(self) -> None:
        """Start reading the pool's configuration, on a thread of its own (once per snapshot).

        Its calls draw on other quota categories than the listing, so they cost the listing
        nothing; `_settle_config` writes the record. The config part's writer is made now, so
        that parts are numbered in the same order as when the configuration came first."""
        if self.cp.phase != "config" or self._config is not None:
            return
        self._writer("config")
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-config")
        self._config = reader.submit(self.gw.pool_config, self.cp.user_pool_id)
        reader.shutdown(wait=False)  # the thread ends with its one task

    def _settle_config(self) -> None:
        """Write the configuration record, waiting for it if it is still being read."""
        if self._config is None:
            return
        future, self._config = self._config, None
        self.emit("config", future.result())

    def run(self) -> bool:
        """Do as much as the deadline allows; True when the snapshot is written."""
        self.cp.invocations += 1
        if self.cp.phase == "config":
            self.start_config()
            self.cp.phase = "groups"
            if self._boundary():
                return False
        if self.cp.phase == "groups" and not self._groups():
            return False
        if self.cp.phase == "users" and not self._listing():
            return False
        self.finish()
        return True

    def _groups_page(self) -> Page[Any]:
        first, self.first_groups_page = self.first_groups_page, None
        if first is not None and self.cp.token is None and first.exception() is None:
            return first.result()
        return self.gw.list_groups_page(self.cp.user_pool_id, self.cp.token)

    def _groups(self) -> bool:
        while True:
            page = self._groups_page()
            for group in page.items:
                self.on_group(group)
                self.cp.group_names.append(group.name)
            self.cp.token = page.next_token
            if not page.next_token:
                self.cp.phase = "users"
                self.cp.token = None
            if self._boundary():
                return False
            if self.cp.phase != "groups":
                return True

    def _fetch(self, cursor: str, token: str | None) -> Page[Any]:
        kind, _, ref = cursor.partition(":")
        if kind == "u":
            return self.gw.list_users_page(self.cp.user_pool_id, token, f'sub ^= "{ref}"')
        return self.gw.list_members_page(self.cp.user_pool_id, self.cp.group_names[int(ref)], token)

    def _listing(self) -> bool:
        """Fetch every cursor's pages, `parallelism` calls in flight, with no barrier.

        Every cursor is started at once (`next_cursor` still counts them in `_cursor_ids`
        order, so checkpoints keep their meaning); which waiting cursor gets a free slot
        is a matter of speed only (`_priority`). A page is handled on this thread while
        the others are in flight, and its cursor's next page is requested before its
        records are written, so a cursor under way keeps its slot until it is done.
        `active` advances only once a page's records are written, so a checkpoint taken at
        a boundary names exactly the pages still to fetch; pages in flight when the run
        stops are fetched again by the next run.
        """
        cursors = _cursor_ids(self.cp)
        rank = {cursor: n for n, cursor in enumerate(cursors)}
        active = self.cp.active  # cursor -> token of its next page (None: first page)
        for cursor in cursors[self.cp.next_cursor :]:
            active[cursor] = None
        self.cp.next_cursor = len(cursors)
        waiting = deque(sorted(active, key=lambda c: _priority(c, rank[c])))
        width = max(1, self.options.parallelism)
        in_flight: dict[Future[Page[Any]], str] = {}

        def fill() -> None:
            while waiting and len(in_flight) < width:
                cursor = waiting.popleft()
                in_flight[pool.submit(self._fetch, cursor, active[cursor])] = cursor

        with ThreadPoolExecutor(max_workers=width) as pool:
            fill()
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: rank[in_flight[f]]):
                    cursor = in_flight.pop(future)
                    page = future.result()
                    if page.next_token:  # ask for the next page before writing this one
                        in_flight[pool.submit(self._fetch, cursor, page.next_token)] = cursor
                    self._take(page.items)
                    if page.next_token:
                        active[cursor] = page.next_token
                    else:
                        del active[cursor]
                    # After every page, not every wait: how many pages finish together is a
                    # matter of timing, and where a run may stop must not be. A finished page
                    # not yet handled stays in `active` and is fetched again by the next run.
                    if self._boundary():
                        for pending in in_flight:
                            pending.cancel()
                        return False
                fill()
        return True

    # ------------------------------------------------------------------ records
    def _take(self, items: list[Any]) -> None:
        """A listing page's users or memberships; the people the erasure ledger names left out."""
        for item in items:
            if self.forgotten is not None and self.forgotten.holds(item):
                continue
            if isinstance(item, UserRecord):
                self.on_user(item)
            else:
                self.on_membership(item)

    def on_group(self, group: Any) -> None:
        self.emit("groups", group)
        self.emit("state", GroupStateRecord(name=group.name, digest=group_digest(group)))
        self.cp.counts.groups += 1

    def on_user(self, user: UserRecord) -> None:
        self.emit("users", user)
        self.emit("state", UserStateRecord(username=user.username, digest=user_digest(user)))
        self.cp.counts.users += 1

    def on_membership(self, membership: MembershipRecord) -> None:
        self.emit("memberships", membership)
        self.emit("state", membership)
        self.cp.counts.memberships += 1

    # ------------------------------------------------------------------ finish
    def finish(self) -> str:
        self._settle_config()
        self._close_parts()
        self._remove_strays()
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            snapshot_id=self.cp.snapshot_id,
            kind=self.cp.kind,
            user_pool_id=self.cp.user_pool_id,
            region=self.cp.region,
            started_at=self.cp.started_at,
            finished_at=utcnow(),
            base_manifest_key=self.cp.base_manifest_key,
            counts=self.cp.counts,
            parts=self.cp.parts,
            tool_version=__version__,
            erasures_applied=self.cp.erasures,
        )
        key = self.store.write_manifest(self.directory, manifest)
        self.store.delete(self._ckpt_key)
        for working in list(self.store.list_keys(self.working_dir)):
            self.store.delete(working)
        return key

    def _remove_strays(self) -> None:
        """Parts left by a run that crashed between checkpoints are not in the snapshot."""
        listed = {p.key for p in self.cp.parts}
        for key in self.store.list_keys(self.directory):
            if key.endswith(PART_SUFFIX) and key not in listed:
                self.store.delete(key)


def new_snapshot_id(store: SnapshotStore, prefix: str, pool_id: str, now: datetime) -> str:
    """A time-sorted id, unique across both kinds of a pool (so an incremental taken in the
    same second as its base still sorts after it)."""
    base = snapshot_id_for(now)
    candidate, n = base, 0
    while any(
        any(True for _ in store.list_keys(snapshot_dir(prefix, pool_id, kind, candidate)))
        for kind in ("full", "incremental")
    ):
        n += 1
        candidate = f"{base}-{n:02d}"
    return candidate


def open_checkpoint(
    store: SnapshotStore, prefix: str, pool_id: str, requested: SnapshotKind
) -> ExportCheckpoint | None:
    """An unfinished export of this pool, if any. An incremental request with no base
    becomes a full export, so an open full checkpoint is continued for it too."""
    names = ["export-incremental", "export-full"] if requested == "incremental" else ["export-full"]
    for name in names:
        raw = store.get_json(checkpoint_key(prefix, pool_id, name))
        if raw is not None:
            return ExportCheckpoint.model_validate(raw)
    return None
