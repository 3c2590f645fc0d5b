"""The snapshot key layout (README, "Snapshot format") is built and read in one module,
store.py: whatever it builds, it reads back; anything else is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cognito_backup.errors import UsageError
from cognito_backup.store import (
    MANIFEST_NAME,
    checkpoint_key,
    layout_kind,
    layout_pool_id,
    layout_prefix,
    layout_snapshot_id,
    layout_time,
    manifest_dir,
    pool_root,
    snapshot_dir,
    snapshot_id_for,
)

POOL = "eu-west-1_AbC123"


@pytest.mark.parametrize("prefix", ["backups", "team/a/backups", ""])
@pytest.mark.parametrize("kind", ["full", "incremental"])
@pytest.mark.parametrize("suffix", ["", "-01"])
def test_what_the_layout_builds_it_reads_back(prefix: str, kind: str, suffix: str) -> None:
    when = datetime(2026, 11, 21, 23, 0, 5, tzinfo=UTC)
    snapshot_id = snapshot_id_for(when) + suffix
    directory = snapshot_dir(prefix, POOL, kind, snapshot_id)  # type: ignore[arg-type]
    key = directory + MANIFEST_NAME
    assert key.startswith(pool_root(prefix, POOL).lstrip("/"))
    assert f"/{kind}/2026/11/21/{snapshot_id}/" in key
    assert layout_pool_id(key) == POOL
    assert layout_snapshot_id(key) == snapshot_id
    assert layout_kind(key) == kind
    assert layout_prefix(key) == prefix and layout_prefix(key, POOL) == prefix
    assert layout_time(key) == when
    assert manifest_dir(key) == directory


@pytest.mark.parametrize(
    "key",
    [
        "elsewhere/manifest.json",
        f"backups/{POOL}/weekly/2026/11/21/20261121T230000Z/manifest.json",
        f"backups/{POOL}/full/2026/11/21/20261121T230000Z/report.json",
        f"backups/{POOL}/checkpoints/export-full.json",
    ],
)
def test_a_key_outside_the_layout_is_refused(key: str) -> None:
    with pytest.raises(UsageError):
        layout_snapshot_id(key)


def test_a_snapshot_of_another_pool_is_refused_where_a_pool_is_named() -> None:
    key = snapshot_dir("backups", POOL, "full", "20261121T230000Z") + MANIFEST_NAME
    with pytest.raises(UsageError):
        layout_prefix(key, "eu-west-1_Other")
    assert checkpoint_key("backups", POOL, "export-full") == f"backups/{POOL}/checkpoints/export-full.json"
