"""Incremental exports: deltas by content, tombstones, the chain, diff, broken links."""

from __future__ import annotations

from typing import Any

import pytest
from export_world import change_round, source_state, view_state

from cognito_backup.chain import open_view, resolve_chain
from cognito_backup.errors import ChainBrokenError, RestoreRefusedError
from cognito_backup.export import ExportOptions
from cognito_backup.incremental import diff_snapshots, find_base
from cognito_backup.models import UserDeletedRecord
from cognito_backup.pacing import CountdownDeadline
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.snapshot import run_export
from cognito_backup.validate import validate_snapshot
from cognito_local.inprocess import strict_cognito
from cognito_local.seed import create_pool, seed_pool


@pytest.fixture
def pool(aws: Any) -> str:
    pool_id = create_pool(aws.cognito(), "incremental-source")
    seed_pool(aws.cognito(), pool_id, users=120, groups=5, big_group_members=65)
    return pool_id


def test_each_point_of_a_sequence_is_described_exactly(aws, store, gateway, pool) -> None:
    # Given a full snapshot, then two rounds of changes each followed by an incremental
    cognito = aws.cognito()
    points: list[tuple[str, dict[str, Any]]] = []
    full = run_export(gateway, store, pool)
    assert full.kind == "full" and full.manifest_key
    points.append((full.manifest_key, source_state(cognito, pool)))
    for round_no in (1, 2):
        change_round(cognito, pool, round_no)
        inc = run_export(gateway, store, pool, incremental=True)
        assert inc.kind == "incremental" and inc.manifest_key
        # Then each incremental builds on the previous snapshot and records the round's changes
        assert inc.base_manifest_key == points[-1][0]
        c = inc.counts
        assert (c.users_deleted, c.groups_deleted) == (5, 1)
        assert c.users >= 7 + 4 + 3  # added, attributes changed, enabled flips (by content)
        assert c.groups >= 2 and c.memberships >= 7 + 3 and c.memberships_removed >= 3
        assert validate_snapshot(store, inc.manifest_key).valid
        points.append((inc.manifest_key, source_state(cognito, pool)))
    # Then every point's chain gives exactly the pool as it was then
    for key, expected in points:
        assert view_state(store, key) == expected
    assert [link.manifest.kind for link in resolve_chain(store, points[-1][0])] == [
        "full",
        "incremental",
        "incremental",
    ]


def test_an_unchanged_pool_gives_an_empty_incremental(aws, store, gateway, pool) -> None:
    run_export(gateway, store, pool)
    inc = run_export(gateway, store, pool, incremental=True)
    assert inc.kind == "incremental"
    assert inc.counts.model_dump() == dict.fromkeys(inc.counts.model_dump(), 0)


def test_disabling_a_user_is_seen_though_the_modification_date_does_not_move(
    aws, store, gateway, pool
) -> None:
    cognito = aws.cognito()
    run_export(gateway, store, pool)
    target = next(u for u in cognito.list_users(UserPoolId=pool, Limit=60)["Users"] if u["Enabled"])
    cognito.admin_disable_user(UserPoolId=pool, Username=target["Username"])
    inc = run_export(gateway, store, pool, incremental=True)
    assert inc.counts.users == 1 and inc.manifest_key
    changed = [u for u in open_view(store, inc.manifest_key).users() if u.username == target["Username"]]
    assert changed[0].enabled is False


def test_an_interrupted_incremental_resumes_to_the_same_content(aws, store, gateway, pool) -> None:
    cognito = aws.cognito()
    run_export(gateway, store, pool)
    change_round(cognito, pool, 1)
    expected = source_state(cognito, pool)
    options = ExportOptions(part_max_bytes=2_000, parallelism=2)
    results = [
        run_export(gateway, store, pool, incremental=True, deadline=CountdownDeadline(2), options=options)
    ]
    while results[-1].status != "complete":
        assert len(results) < 100
        results.append(
            run_export(gateway, store, pool, incremental=True, deadline=CountdownDeadline(2), options=options)
        )
    assert len(results) > 2 and len({r.snapshot_id for r in results}) == 1
    final = results[-1]
    assert final.kind == "incremental" and final.manifest_key
    assert (final.counts.users_deleted, final.counts.groups_deleted) == (5, 1)
    assert view_state(store, final.manifest_key) == expected
    assert validate_snapshot(store, final.manifest_key).valid
    # its working state index and checkpoint are gone, and the snapshot holds only its changes
    assert list(store.list_keys(f"backups/{pool}/checkpoints/")) == []
    kinds = {p.kind for p in store.read_manifest(final.manifest_key).parts}
    assert kinds == {"config", "changes"}


def test_a_failed_snapshot_is_never_built_on(aws, store, gateway, pool) -> None:
    full = run_export(gateway, store, pool)
    bad = run_export(gateway, store, pool, incremental=True)
    assert bad.manifest_key and full.manifest_key
    store.put_tags(bad.manifest_key, {"validation": "failed"})
    # The next incremental skips the failed one and builds on the last valid snapshot
    assert find_base(store, "backups", pool) == full.manifest_key
    nxt = run_export(gateway, store, pool, incremental=True)
    assert nxt.kind == "incremental" and nxt.base_manifest_key == full.manifest_key
    # With no valid snapshot at all, an incremental request makes a full export
    for key in (full.manifest_key, nxt.manifest_key):
        assert key
        store.put_tags(key, {"validation": "failed"})
    assert run_export(gateway, store, pool, incremental=True).kind == "full"


def test_a_missing_link_breaks_the_chain_by_name(aws, store, gateway, pool) -> None:
    cognito = aws.cognito()
    run_export(gateway, store, pool)
    change_round(cognito, pool, 1)
    first = run_export(gateway, store, pool, incremental=True)
    change_round(cognito, pool, 2)
    second = run_export(gateway, store, pool, incremental=True)
    assert first.manifest_key and second.manifest_key
    store.delete(first.manifest_key)
    with pytest.raises(ChainBrokenError, match=first.manifest_key):
        open_view(store, second.manifest_key)


def test_diff_between_two_snapshots(aws, store, gateway, pool) -> None:
    cognito = aws.cognito()
    full = run_export(gateway, store, pool)
    change_round(cognito, pool, 1)
    inc = run_export(gateway, store, pool, incremental=True)
    assert full.manifest_key and inc.manifest_key
    diff = diff_snapshots(store, full.manifest_key, inc.manifest_key)
    assert len(diff.users.added) == 7 and len(diff.users.removed) == 5
    assert len(diff.groups.added) == 1 and len(diff.groups.removed) == 1 and len(diff.groups.changed) == 1
    assert diff.as_dict(details=False)["users"] == {
        "added": 7,
        "removed": 5,
        "changed": len(diff.users.changed),
    }
    assert any(line.startswith("  - ") for line in diff.lines(details=True))
    tombstones = [
        r
        for p in store.read_manifest(inc.manifest_key).parts
        if p.kind == "changes"
        for r in store.iter_records(p)
    ]
    assert {r.username for r in tombstones if isinstance(r, UserDeletedRecord)} == set(diff.users.removed)


def test_point_in_time_restore_at_every_point_of_the_sequence(aws, store, gateway, pool) -> None:
    """full; 7 added, 10 changed, 5 deleted, groups added/deleted; incremental; again; incremental.
    Each point restored into a fresh pool equals the source as it was then."""
    cognito = aws.cognito()
    points: list[tuple[str, dict[str, Any]]] = []
    full = run_export(gateway, store, pool)
    assert full.manifest_key
    points.append((full.manifest_key, source_state(cognito, pool)))
    for round_no in (1, 2):
        change_round(cognito, pool, round_no)
        inc = run_export(gateway, store, pool, incremental=True)
        assert inc.manifest_key
        points.append((inc.manifest_key, source_state(cognito, pool)))
    with strict_cognito(clients=[cognito], enforce_quotas=False):
        for i, (key, then) in enumerate(points):
            target = create_pool(cognito, f"point-{i}")
            report = run_restore(gateway, store, key, target, options=RestoreOptions())
            assert report.status == "complete", report.failures
            assert source_state(cognito, target) == then


def test_restore_after_a_broken_link_refuses_and_names_it(aws, store, gateway, pool) -> None:
    cognito = aws.cognito()
    run_export(gateway, store, pool)
    change_round(cognito, pool, 1)
    first = run_export(gateway, store, pool, incremental=True)
    change_round(cognito, pool, 2)
    second = run_export(gateway, store, pool, incremental=True)
    assert first.manifest_key and second.manifest_key
    assert validate_snapshot(store, second.manifest_key).valid
    target = create_pool(cognito, "after-broken-link")
    # An invalid link (its verdict failed after the fact) is named, and nothing is written
    store.put_tags(first.manifest_key, {"validation": "failed"})
    with pytest.raises(RestoreRefusedError, match=first.snapshot_id):
        run_restore(gateway, store, second.manifest_key, target, options=RestoreOptions())
    # A missing link too
    store.delete(first.manifest_key)
    with pytest.raises(ChainBrokenError, match=first.manifest_key):
        run_restore(gateway, store, second.manifest_key, target, options=RestoreOptions())
    assert cognito.list_users(UserPoolId=target)["Users"] == []
    assert cognito.list_groups(UserPoolId=target)["Groups"] == []
