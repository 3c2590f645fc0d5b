"""The target's state, read through the API into an on-disk SQLite index (never into memory).

One read costs ListUsers pages (60 users each), one ListGroups pass and ListUsersInGroup pages
for every group: all UserList / UserPoolResourceRead calls, the cheapest the restore makes. The
plan and the verification each read it once per invocation. The pages are fetched as the export
fetches them, the 16 `sub` shards and every group's members at once (`READ_PARALLELISM` calls in
flight), not as one chain of pages: at one call in flight a 20,000-user target took ~50 s to read
where UserList's quota allows 23 s (docs/benchmarks.md). The calling thread writes them into
SQLite (whose objects stay in their thread) from a bounded queue: at most a few pages are held.
"""

from __future__ import annotations

import queue
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..cognito import SUB_SHARDS, CognitoGateway
from ..models import GroupRecord, UserRecord
from ..restore_rules import UsernameScheme
from .memberships import CACHE_KIB


class TargetIndex:
    """Users (by every name that identifies them), groups and memberships of the target."""

    def __init__(self, scheme: UsernameScheme) -> None:
        self.scheme = scheme
        self._dir = tempfile.TemporaryDirectory(prefix="cognito-backup-target-")
        self.db = sqlite3.connect(str(Path(self._dir.name) / "target.db"))
        self.db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")  # memory flat at any pool size
        self.db.executescript(
            """
            CREATE TABLE users (username TEXT PRIMARY KEY, record TEXT NOT NULL, matched INTEGER DEFAULT 0);
            CREATE TABLE names (name TEXT PRIMARY KEY, username TEXT NOT NULL);
            CREATE TABLE groups (name TEXT PRIMARY KEY, record TEXT NOT NULL);
            CREATE TABLE members (username TEXT NOT NULL, grp TEXT NOT NULL, PRIMARY KEY (username, grp));
            """
        )

    @classmethod
    def read(
        cls,
        gateway: CognitoGateway,
        pool_id: str,
        scheme: UsernameScheme,
        parallelism: int | None = None,
    ) -> TargetIndex:
        index = cls(scheme)
        try:
            groups = list(gateway.iter_groups(pool_id))
            for group in groups:
                index.add_group(group)
            jobs = [_shard_pages(gateway, pool_id, shard) for shard in SUB_SHARDS]
            jobs += [_member_pages(gateway, pool_id, group.name) for group in groups]
            for kind, rows in _fetched(jobs, parallelism or READ_PARALLELISM):
                if kind == "users":
                    for user in rows:
                        index.add_user(user)
                else:
                    index.db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?)", rows)
            index.db.commit()
        except BaseException:
            index.close()
            raise
        return index

    @classmethod
    def read_groups(cls, gateway: CognitoGateway, pool_id: str, scheme: UsernameScheme) -> TargetIndex:
        """The target's groups only (ListGroups), no user and no membership: for a target known
        to hold none but what the caller made itself (apply.RestoreRun._target)."""
        index = cls(scheme)
        try:
            for group in gateway.iter_groups(pool_id):
                index.add_group(group)
            index.db.commit()
        except BaseException:
            index.close()
            raise
        return index

    def user_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    def add_group(self, group: GroupRecord) -> None:
        self.db.execute("INSERT INTO groups VALUES (?, ?)", (group.name, group.model_dump_json()))

    def add_user(self, user: UserRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO users (username, record) VALUES (?, ?)",
            (user.username, user.model_dump_json()),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO names VALUES (?, ?)", ((k, user.username) for k in self.scheme.keys(user))
        )

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    # ------------------------------------------------------------------ lookups
    def find(self, name: str) -> UserRecord | None:
        """The target user that `name` (a login: username, or email/phone) identifies."""
        row = self.db.execute(
            "SELECT u.record FROM names n JOIN users u ON u.username = n.username WHERE n.name = ?",
            (self.scheme.fold(name),),
        ).fetchone()
        return None if row is None else UserRecord.model_validate_json(row[0])

    def groups_of(self, username: str) -> set[str]:
        rows = self.db.execute("SELECT grp FROM members WHERE username = ?", (username,))
        return {r[0] for r in rows}

    def group(self, name: str) -> GroupRecord | None:
        row = self.db.execute("SELECT record FROM groups WHERE name = ?", (name,)).fetchone()
        return None if row is None else GroupRecord.model_validate_json(row[0])

    def group_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM groups ORDER BY name")]

    def members(self, group: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT username FROM members WHERE grp = ?", (group,))}

    # ------------------------------------------------------------------ mirror
    def match(self, usernames: Iterable[str]) -> None:
        self.db.executemany("UPDATE users SET matched = 1 WHERE username = ?", ((u,) for u in usernames))

    def unmatched(self) -> Iterator[UserRecord]:
        """Target users no snapshot user was matched to (after `match`), in username order."""
        for row in self.db.execute("SELECT record FROM users WHERE matched = 0 ORDER BY username"):
            yield UserRecord.model_validate_json(row[0])


# Calls in flight while a target is read: as the export's listing (export.DEFAULT_PARALLELISM).
READ_PARALLELISM = 6

Pages = Callable[[Callable[[tuple[str, list[Any]]], bool]], None]


def _shard_pages(gateway: CognitoGateway, pool_id: str, shard: str) -> Pages:
    def run(put: Callable[[tuple[str, list[Any]]], bool]) -> None:
        token: str | None = None
        while True:
            page = gateway.list_users_page(pool_id, token, f'sub ^= "{shard}"')
            if not put(("users", page.items)) or not page.next_token:
                return
            token = page.next_token

    return run


def _member_pages(gateway: CognitoGateway, pool_id: str, group: str) -> Pages:
    def run(put: Callable[[tuple[str, list[Any]]], bool]) -> None:
        token: str | None = None
        while True:
            page = gateway.list_members_page(pool_id, group, token)
            if not put(("members", [(m.username, group) for m in page.items])) or not page.next_token:
                return
            token = page.next_token

    return run


def _fetched(jobs: list[Pages], parallelism: int) -> Iterator[tuple[str, list[Any]]]:
    """The pages of every job, as they come, fetched `parallelism` jobs at a time.

    A failed job's error is raised here (after the other jobs stop at their next page); a
    consumer that stops early (an error of its own) also stops the jobs, so nothing hangs.
    """
    pages: queue.Queue[tuple[str, list[Any]]] = queue.Queue(maxsize=2 * parallelism)
    stop = threading.Event()

    def put(item: tuple[str, list[Any]]) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    with ThreadPoolExecutor(parallelism, thread_name_prefix="target-read") as pool:
        futures = [pool.submit(job, put) for job in jobs]
        try:
            while True:
                try:
                    yield pages.get(timeout=0.05)
                except queue.Empty:
                    for future in futures:
                        if future.done() and not future.cancelled() and future.exception() is not None:
                            future.result()  # the first error, raised at once: the rest stop
                    if all(f.done() for f in futures):
                        for future in futures:
                            future.result()  # a job's error, raised here
                        if pages.empty():  # every put came before its job was done
                            return
        finally:
            stop.set()
            for future in futures:
                future.cancel()
