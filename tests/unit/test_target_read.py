"""The restore reads its target as the export lists a pool: shards and groups at once.

A fake gateway (the calls TargetIndex.read makes); no network. Its first call waits for a
second one to begin: a read one page at a time would find it never did.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cognito_backup.cognito import SUB_SHARDS, Page
from cognito_backup.errors import BackupError
from cognito_backup.models import GroupRecord, MembershipRecord, UserRecord
from cognito_backup.restore.target import TargetIndex
from cognito_backup.restore_rules import UsernameScheme


class FakeGateway:
    """Two pages per shard and per group; the first call waits until a second one has begun."""

    def __init__(self, *, fail_shard: str | None = None) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.second = threading.Event()
        self.met: bool | None = None
        self.fail_shard = fail_shard

    def iter_groups(self, pool_id: str) -> Any:
        return iter([GroupRecord(name="g1"), GroupRecord(name="g2")])

    def _call(self) -> None:
        with self.lock:
            self.calls += 1
            n = self.calls
        if n == 1:  # one page at a time, the second call never begins: met stays False
            self.met = self.second.wait(timeout=10)
        elif n == 2:
            self.second.set()

    def list_users_page(
        self, pool_id: str, token: str | None, filter_: str | None = None
    ) -> Page[UserRecord]:
        self._call()
        shard = (filter_ or "").split('"')[1]
        if shard == self.fail_shard:
            raise BackupError("refused")
        n = 0 if token is None else 1
        users = [
            UserRecord(
                username=f"{shard}-{n}-{i}", attributes={"sub": f"{shard}x"}, status="CONFIRMED", enabled=True
            )
            for i in range(3)
        ]
        return Page(users, "next" if token is None else None)

    def list_members_page(self, pool_id: str, group: str, token: str | None) -> Page[MembershipRecord]:
        self._call()
        n = 0 if token is None else 1
        return Page([MembershipRecord(group=group, username=f"0-{n}-0")], "next" if token is None else None)


def test_every_shard_and_group_is_read_with_calls_in_flight_together() -> None:
    gateway = FakeGateway()

    index = TargetIndex.read(gateway, "pool", UsernameScheme(), parallelism=4)  # type: ignore[arg-type]
    try:
        users = index.db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        members = index.db.execute("SELECT grp, COUNT(*) FROM members GROUP BY grp").fetchall()
        groups = index.db.execute("SELECT COUNT(*) FROM groups").fetchone()[0]
    finally:
        index.close()

    assert users == len(SUB_SHARDS) * 2 * 3 and groups == 2
    assert sorted(members) == [("g1", 2), ("g2", 2)]
    assert gateway.met is True  # a second call began while the first was in flight


def test_a_failed_page_fails_the_read_and_nothing_hangs() -> None:
    gateway = FakeGateway(fail_shard="7")

    with pytest.raises(BackupError, match="refused"):
        TargetIndex.read(gateway, "pool", UsernameScheme(), parallelism=3)  # type: ignore[arg-type]
