"""The in-memory pool used by the size benchmark answers like the gateway it stands in for."""

from __future__ import annotations

from typing import Any

from cognito_backup.cognito import PAGE_LIMIT
from cognito_backup.snapshot import run_export
from cognito_local.memory_pool import MemoryPool


def test_pages_cover_every_user_once_and_respect_the_page_limit() -> None:
    pool = MemoryPool.generate(1_000, groups=3)
    seen: list[str] = []
    for shard in "0123456789abcdef":
        token = None
        while True:
            page = pool.list_users_page(pool.pool_id, token, f'sub ^= "{shard}"')
            assert len(page.items) <= PAGE_LIMIT
            assert all((u.sub or "").startswith(shard) for u in page.items)
            seen += [u.username for u in page.items]
            token = page.next_token
            if not token:
                break
    assert sorted(seen) == sorted(pool.users)


def test_the_real_export_reads_it_whole(store) -> None:
    pool = MemoryPool.generate(500, groups=4)
    gateway: Any = pool
    result = run_export(gateway, store, pool.pool_id)
    assert result.counts.users == 500 and result.counts.groups == 4
    assert result.counts.memberships == sum(len(m) for m in pool.members.values())
