"""Restore against a strict moto: the round trip, and resumption after a deadline or a crash.

Every test runs under `strict_cognito()`, which refuses what Cognito refuses (a `sub` or an
undefined custom attribute at creation, updates of immutable attributes, pages above 60).
The helpers here are shared by the other test_restore_* modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from restore_world import (
    CrashingGateway,
    World,
    expected,
    make_world,
    restore_until_done,
    snapshot,
    target,
    unpaced,
)

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.pacing import CountdownDeadline
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.store import SnapshotStore
from cognito_local.seed import pool_state


@pytest.fixture
def gateway(aws: AwsClients) -> CognitoGateway:
    return unpaced(aws.cognito())


@pytest.fixture
def world(aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway) -> Iterator[World]:
    yield from make_world(aws, store, gateway, enforce_quotas=False)


def usernames(w: World, pool_id: str) -> list[str]:
    return sorted(u.username for u in w.gateway.iter_users(pool_id))


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("username_attributes", [None, ("email",)], ids=["username-pool", "email-pool"])
def test_round_trip_rebuilds_the_pool(world: World, username_attributes: tuple[str, ...] | None) -> None:
    # Given a snapshot of a seeded pool, and a fresh target with the same username settings
    source, key = snapshot(world, username_attributes=username_attributes, users=60, groups=5)
    dst = target(world, username_attributes=username_attributes)

    # When it is restored with the defaults
    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions())

    # Then the target equals the source: usernames (or emails), attributes minus sub, enabled,
    # verified flags, statuses as mapped, groups with all their fields, memberships
    assert report.status == "complete", report.failures
    before, after = pool_state(world.cognito, source), pool_state(world.cognito, dst)
    assert after == expected(before)
    assert report.counts.created == 60 and report.counts.failed == 0
    assert report.counts.custom_attributes_added == 2 and report.counts.groups_created == 5
    assert report.counts.memberships_added == len(before["memberships"])
    assert report.counts.disabled == sum(not u["enabled"] for u in before["users"].values())
    # every old sub maps to the new sub of the same user
    old = {u.sub: u for u in world.gateway.iter_users(source)}
    new = {u.sub: u for u in world.gateway.iter_users(dst)}
    assert set(report.sub_map) == set(old) and set(report.sub_map.values()) == set(new)
    for old_sub, new_sub in report.sub_map.items():
        assert old[old_sub].attributes["email"] == new[new_sub].attributes["email"]
    if username_attributes:
        assert len(report.username_map) == 60  # generated usernames differ
    else:
        assert report.username_map == {} and usernames(world, source) == usernames(world, dst)
    # the users who cannot get back in by themselves are listed, with why
    notes = {n.username: n.reason for n in report.admin_action}
    assert any("was RESET_REQUIRED" in r for r in notes.values())
    forced = [u for u in world.gateway.iter_users(source) if u.status == "FORCE_CHANGE_PASSWORD"]
    assert all("RESEND" in notes[u.username] for u in forced)
    # the report lies beside the snapshot; the checkpoint is gone
    assert report.report_key and report.report_key.startswith(key.rsplit("/", 1)[0] + "/restore-report-")
    assert world.store.get_json(report.report_key)["status"] == "complete"
    assert not list(world.store.list_keys(f"backups/{source}/checkpoints/"))


def test_restoring_twice_changes_nothing_and_finds_everyone_unchanged(world: World) -> None:
    _source, key = snapshot(world, users=12, groups=2)
    dst = target(world)
    run_restore(world.gateway, world.store, key, dst)
    state = pool_state(world.cognito, dst)

    again = run_restore(world.gateway, world.store, key, dst)

    # users equal to the snapshot are no conflict: found unchanged, nothing written
    assert again.status == "complete" and again.verified
    assert again.counts.unchanged == 12 and again.counts.existing_skipped == 0 and again.counts.created == 0
    assert pool_state(world.cognito, dst) == state
    assert again.counts.groups_unchanged == 2 and again.sub_map == {}


# ------------------------------------------------------------------ resumption


@pytest.mark.parametrize("checks", [0, 2, 5])
def test_a_restore_stopped_at_its_deadline_resumes_without_duplicates(world: World, checks: int) -> None:
    # Given a restore that may only pass `checks` deadline checks per invocation
    source, key = snapshot(world, users=20, groups=3)
    dst = target(world)
    options = RestoreOptions(chunk_size=3, checkpoint_seconds=0)

    # When it is invoked again and again until it finishes
    reports = restore_until_done(world, key, dst, options, checks)

    # Then it stopped several times, redid nothing, and rebuilt the pool exactly
    final = reports[-1]
    assert len(reports) > 1 and final.invocations == len(reports)
    assert all(r.status == "incomplete" and r.checkpoint_key for r in reports[:-1])
    assert final.status == "complete" and not final.failures
    assert final.counts.created == 20 and final.counts.resumed == 0 and len(final.sub_map) == 20
    assert pool_state(world.cognito, dst) == expected(pool_state(world.cognito, source))


@pytest.mark.parametrize("writes", [0, 3, 12, 35])
def test_a_restore_that_crashed_anywhere_finishes_on_the_next_run(world: World, writes: int) -> None:
    # Given a restore that dies after `writes` writes to the target (attributes, groups,
    # users, passwords, disables, memberships: all in flight at once)
    source, key = snapshot(world, users=20, groups=3)
    dst = target(world)
    options = RestoreOptions(chunk_size=6, checkpoint_seconds=0)
    with pytest.raises(RuntimeError, match="injected crash"):
        run_restore(CrashingGateway(world.cognito, writes), world.store, key, dst, options=options)

    # When it is started again
    report = run_restore(world.gateway, world.store, key, dst, options=options)

    # Then it finishes without duplicates or conflicts: what the crashed run created is taken
    # as created (not as existing users), and the pool equals the source
    assert report.status == "complete", report.failures
    assert report.counts.created == 20 and report.counts.existing_skipped == 0
    assert len(report.sub_map) == 20 and report.invocations == 2
    assert pool_state(world.cognito, dst) == expected(pool_state(world.cognito, source))


class ListingCounter:
    """Counts the target's user listings (ListUsers pages) a gateway makes."""

    def __init__(self, gateway: CognitoGateway, pool_id: str) -> None:
        self.pages = 0
        real = gateway.list_users_page

        def page(pool: str, *args: Any, **kwargs: Any) -> Any:
            self.pages += pool == pool_id
            return real(pool, *args, **kwargs)

        gateway.list_users_page = page  # type: ignore[method-assign]


def test_a_later_invocation_into_a_new_pool_does_not_read_its_users_again(world: World) -> None:
    # Given a restore into an empty pool, stopped at its deadline after the first chunks (the
    # custom attributes and the groups take deadline checks too)
    source, key = snapshot(world, users=20, groups=3)
    dst = target(world)
    options = RestoreOptions(chunk_size=2, checkpoint_seconds=0)
    first = run_restore(world.gateway, world.store, key, dst, options=options, deadline=CountdownDeadline(5))
    assert first.status == "incomplete" and 0 < first.counts.created < 20
    # When it is invoked again, and stops again before the verification
    listings = ListingCounter(world.gateway, dst)
    second = run_restore(world.gateway, world.store, key, dst, options=options, deadline=CountdownDeadline(2))
    # Then the target held no user at the start, so the second invocation did not list it
    assert second.status == "incomplete" and second.counts.created > first.counts.created
    assert listings.pages == 0
    # and the run finishes exactly, its verification reading the target whole
    final = restore_until_done(world, key, dst, options, 100)[-1]
    assert final.status == "complete" and final.verified and final.counts.created == 20
    assert listings.pages > 0
    assert pool_state(world.cognito, dst) == expected(pool_state(world.cognito, source))


def test_a_user_someone_else_makes_between_invocations_is_still_theirs(world: World) -> None:
    # Given a restore into an empty pool stopped at its deadline, and then someone else creating
    # a user under the name of one not restored yet, with other attributes
    source, key = snapshot(world, users=20, groups=3)
    dst = target(world)
    options = RestoreOptions(chunk_size=2, checkpoint_seconds=0)
    first = run_restore(world.gateway, world.store, key, dst, options=options, deadline=CountdownDeadline(5))
    assert first.status == "incomplete" and first.counts.created > 0
    restored = set(usernames(world, dst))
    last = next(name for name in usernames(world, source) if name not in restored)
    world.cognito.admin_create_user(
        UserPoolId=dst, Username=last, UserAttributes=[{"Name": "email", "Value": "other@example.org"}]
    )
    # When the restore is continued (without reading the target's users: it held none)
    final = restore_until_done(world, key, dst, options, 100)[-1]
    # Then that user is a conflict the default policy (skip) leaves alone, as a full read would
    assert final.counts.created == 19 and final.counts.existing_skipped == 1
    assert [n.username for n in final.skipped] == [last]
    there = world.gateway.get_user(dst, last)
    assert there is not None and there.attributes["email"] == "other@example.org"


def test_a_target_with_users_at_the_start_is_read_by_every_invocation(world: World) -> None:
    # Given a target that already holds a user of its own
    _source, key = snapshot(world, users=20, groups=3)
    dst = target(world)
    world.cognito.admin_create_user(UserPoolId=dst, Username="theirs-0001")
    options = RestoreOptions(chunk_size=2, checkpoint_seconds=0)
    first = run_restore(world.gateway, world.store, key, dst, options=options, deadline=CountdownDeadline(5))
    assert first.status == "incomplete" and first.counts.created > 0
    # When it is invoked again
    listings = ListingCounter(world.gateway, dst)
    second = run_restore(world.gateway, world.store, key, dst, options=options, deadline=CountdownDeadline(2))
    # Then that invocation read the target's users again
    assert second.status == "incomplete" and listings.pages > 0


def test_a_checkpoint_is_continued_only_with_the_same_options(world: World) -> None:
    _, key = snapshot(world, users=10, groups=2)
    dst = target(world)
    first = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(), deadline=CountdownDeadline(0)
    )
    assert first.status == "incomplete"

    with pytest.raises(Exception, match="with other options"):
        run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(conflict_policy="fail"))

    assert run_restore(world.gateway, world.store, key, dst).status == "complete"
