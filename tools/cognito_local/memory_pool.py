"""An in-memory stand-in for the Cognito gateway's read side, for size benchmarks.

moto's ListUsers rebuilds the whole user list for every page, so a 100k-user pool in
moto takes minutes to list. Snapshot *sizes* do not depend on Cognito at all, so the
size benchmark feeds the real export code from generated data through this object,
which implements exactly the read methods `ExportRun` uses.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cognito_backup.cognito import PAGE_LIMIT, CallStats, Page
from cognito_backup.models import GroupRecord, MembershipRecord, PoolConfigRecord, UserRecord

GIVEN = ("José", "Zoë", "Anna", "Mohammed", "Søren", "Aiko", "Łukasz", "Chloé", "Priya", "David")
FAMILY = ("García", "Müller", "O'Brien", "Smith", "Nakamura", "Kowalski", "Dubois", "Rossi")


@dataclass
class MemoryPool:
    pool_id: str = "us-east-1_Bench"
    users: dict[str, UserRecord] = field(default_factory=dict)
    groups: dict[str, GroupRecord] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    stats: CallStats = field(default_factory=CallStats)
    region: str = "us-east-1"
    _shards: dict[str, list[UserRecord]] = field(default_factory=dict, repr=False)

    def reindex(self) -> None:
        """Call after changing `users`: rebuilds the per-`sub`-prefix listing order."""
        self._shards = {}
        for user in self.users.values():
            self._shards.setdefault((user.sub or "")[:1], []).append(user)

    @classmethod
    def generate(cls, users: int, groups: int = 20, seed: int = 7) -> MemoryPool:
        rng = random.Random(seed)
        pool = cls()
        base = datetime(2025, 1, 1, tzinfo=UTC)
        for g in range(groups):
            pool.groups[f"group-{g:02d}"] = GroupRecord(
                name=f"group-{g:02d}",
                description=f"Generated group {g}",
                precedence=g,
                role_arn=f"arn:aws:iam::123456789012:role/group-{g}",
                created=base,
                modified=base,
            )
            pool.members[f"group-{g:02d}"] = []
        names = list(pool.groups)
        for i in range(users):
            user = pool.make_user(rng, i, base + timedelta(seconds=i))
            pool.users[user.username] = user
            for group_name in rng.sample(names, rng.choice((0, 1, 1, 2))):
                pool.members[group_name].append(user.username)
        pool.reindex()
        return pool

    @staticmethod
    def make_user(rng: random.Random, i: int, when: datetime) -> UserRecord:
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        username = f"{given.lower()}.{family.lower()}.{i}"
        attrs = {
            "sub": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "email": f"{username}@example.com",
            "email_verified": "true" if i % 4 else "false",
            "given_name": given,
            "family_name": family,
            "custom:tenant": f"tenant-{i % 50}",
            "custom:employee_id": f"E{i:07d}",
        }
        if i % 3 == 0:
            attrs["phone_number"] = f"+1555{i:07d}"
            attrs["phone_number_verified"] = "false"
        return UserRecord(
            username=username,
            attributes=attrs,
            status="CONFIRMED",
            enabled=i % 20 != 0,
            created=when,
            modified=when,
        )

    # ---------------------------------------------------------------- gateway reads
    def describe_pool(self, pool_id: str) -> dict[str, Any]:
        return {"Id": pool_id, "Name": "bench", "SchemaAttributes": []}

    def pool_config(self, pool_id: str) -> PoolConfigRecord:
        return PoolConfigRecord(user_pool=self.describe_pool(pool_id))

    def list_groups_page(self, pool_id: str, token: str | None) -> Page[GroupRecord]:
        start = int(token or 0)
        items = list(self.groups.values())[start : start + PAGE_LIMIT]
        nxt = start + PAGE_LIMIT
        return Page(items, str(nxt) if nxt < len(self.groups) else None)

    def list_users_page(
        self, pool_id: str, token: str | None, filter_: str | None = None
    ) -> Page[UserRecord]:
        if filter_:
            shard = self._shards.get(filter_.split('"')[1], [])
        else:
            shard = [u for users in self._shards.values() for u in users]
        start = int(token or 0)
        nxt = start + PAGE_LIMIT
        return Page(shard[start:nxt], str(nxt) if nxt < len(shard) else None)

    def list_members_page(self, pool_id: str, group: str, token: str | None) -> Page[MembershipRecord]:
        start = int(token or 0)
        names = self.members.get(group, [])
        nxt = start + PAGE_LIMIT
        page = [MembershipRecord(group=group, username=n) for n in names[start:nxt]]
        return Page(page, str(nxt) if nxt < len(names) else None)
