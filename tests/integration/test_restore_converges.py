"""Restore converges: lost answers are harmless, re-runs repair, mirror removes, verify decides.

Cognito sometimes acts and then loses its answer (HTTP 500 after the effect): the retry then
meets UsernameExists / GroupExists. The strict local Cognito injects exactly that (`Faults`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
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
from cognito_backup.errors import CognitoError, RestoreRefusedError
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.restore_models import RestoreEvent
from cognito_backup.store import SnapshotStore
from cognito_local.faults import Faults
from cognito_local.seed import pool_state

FIVE_PERCENT = Faults(rate=0.05, after_effect=0.5, seed=7)


@pytest.fixture
def world(aws: AwsClients, store: SnapshotStore) -> Iterator[World]:
    # Enough retries that a 5 % fault rate never outlasts them; no wall-clock backoff.
    yield from make_world(aws, store, unpaced(aws.cognito(), max_attempts=12), enforce_quotas=False)


def injected(w: World, kind: str, operation: str | None = None) -> int:
    faults = w.engine.stats()["faults"]
    if operation is None:
        return int(faults["total"][kind])
    return int(faults["operations"].get(operation, {}).get(kind, 0))


def state(w: World, pool: str) -> Any:
    with w.engine.faults_paused():
        return pool_state(w.cognito, pool)


# ------------------------------------------------------------------ lost answers


def test_a_restore_under_five_percent_faults_is_exact_in_one_run(world: World) -> None:
    # Given a snapshot, and a Cognito that fails 5 % of calls, half of them after the effect
    source, key = snapshot(world, users=150, groups=4)
    dst = target(world)
    world.engine.faults = FIVE_PERCENT

    # When it is restored once
    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(chunk_size=40))

    # Then the target is exact, verified, in one invocation, with no failure
    assert report.status == "complete" and report.verified and report.invocations == 1, report.failures
    assert report.counts.differences == 0 and report.counts.created == 150
    assert state(world, dst) == expected(state(world, source))
    # and answers were lost on the way, creations among them
    assert injected(world, "after") > 0 and injected(world, "after", "AdminCreateUser") > 0


def test_lost_creation_answers_are_successes_with_every_follow_up(world: World) -> None:
    # Given a Cognito that loses half the answers of AdminCreateUser and CreateGroup (acted upon)
    source, key = snapshot(world, users=40, groups=4)
    dst = target(world)
    world.engine.faults = Faults(
        rate=0.5, after_effect=1.0, seed=1, operations=frozenset({"AdminCreateUser", "CreateGroup"})
    )

    report = run_restore(world.gateway, world.store, key, dst)

    # Then users found there after a lost answer count as created, not as skipped, and got their
    # disable, memberships and password; groups found there are created, not failures
    assert report.status == "complete" and report.verified, report.failures
    c = report.counts
    assert c.created == 40 and c.existing_skipped == 0 and c.groups_created == 4 and c.groups_failed == 0
    assert len(report.sub_map) == 40
    assert state(world, dst) == expected(state(world, source))
    assert injected(world, "after", "AdminCreateUser") > 0 and injected(world, "after", "CreateGroup") > 0


@pytest.mark.parametrize("writes", [5, 40])
def test_a_restore_killed_under_faults_then_run_again_is_exact(world: World, writes: int) -> None:
    # Given a restore under 5 % faults that dies after `writes` writes, and one cut by deadlines
    source, key = snapshot(world, users=40, groups=3)
    dst = target(world)
    world.engine.faults = FIVE_PERCENT
    options = RestoreOptions(chunk_size=7, checkpoint_seconds=0)
    crashing = CrashingGateway(world.cognito, writes)
    crashing._max_attempts = 12
    with pytest.raises(RuntimeError, match="injected crash"):
        run_restore(crashing, world.store, key, dst, options=options)

    # When it is run again, stopping at every other deadline check, until it finishes
    reports = restore_until_done(world, key, dst, options, checks=2)

    # Then the target is exact and verified; what the killed run made counts as created
    final = reports[-1]
    assert final.status == "complete" and final.verified, final.failures
    assert final.counts.created == 40 and final.counts.existing_skipped == 0
    assert state(world, dst) == expected(state(world, source))


# ------------------------------------------------------------------ re-runs repair


def break_target(w: World, dst: str) -> dict[str, str]:
    """Undo some of a restore's follow-ups, as a run killed or refused half-way would leave it."""
    users = sorted(w.gateway.iter_users(dst), key=lambda u: u.username)
    disabled = next(u for u in users if not u.enabled)
    member = next(u for u in users if u != disabled and w.gateway.groups_for_user(dst, u.username))
    group = w.gateway.groups_for_user(dst, member.username)[0]
    w.cognito.admin_enable_user(UserPoolId=dst, Username=disabled.username)
    w.cognito.admin_remove_user_from_group(UserPoolId=dst, Username=member.username, GroupName=group)
    return {"enabled": disabled.username, "unjoined": member.username}


def test_a_second_run_repairs_what_the_first_left_different(world: World) -> None:
    source, key = snapshot(world, users=30, groups=3)
    dst = target(world)
    assert run_restore(world.gateway, world.store, key, dst).status == "complete"
    break_target(world, dst)

    again = run_restore(world.gateway, world.store, key, dst)

    # equal users are not skipped: their disable and membership are applied again
    assert again.status == "complete" and again.verified, again.failures
    assert again.counts.disabled == 1 and again.counts.memberships_added == 1 and again.counts.created == 0
    assert again.counts.converged == 2 and again.counts.existing_skipped == 0
    assert state(world, dst) == expected(state(world, source))


class RefusesPasswords(CognitoGateway):
    """A Cognito that refuses every AdminSetUserPassword (a definite refusal, not transient)."""

    def set_password(self, pool_id: str, username: str, password: str, *, permanent: bool) -> None:
        raise CognitoError("InvalidPasswordException", "refused")


def test_a_user_left_force_change_password_is_repaired_by_the_next_run(world: World) -> None:
    source, key = snapshot(world, users=12, groups=2)
    dst = target(world)
    refusing = RefusesPasswords(unpaced(world.cognito)._client, world.gateway._pacer, base_delay=0.0)

    first = run_restore(refusing, world.store, key, dst)
    again = run_restore(world.gateway, world.store, key, dst)

    # the refusals fail the first run, and its verification counts the statuses left behind
    assert first.status == "failed" and first.failures and first.counts.differences == len(first.failures)
    # the next run finds those users equal to the snapshot, sets their password, and verifies
    assert again.status == "complete" and again.verified, again.failures
    assert again.counts.passwords_set == len(first.failures) and again.counts.converged == len(first.failures)
    assert state(world, dst) == expected(state(world, source))


# ------------------------------------------------------------------ verification


class NoDisable(CognitoGateway):
    """A Cognito that answers AdminDisableUser with success and does nothing."""

    def set_enabled(self, pool_id: str, username: str, enabled: bool) -> None:
        if enabled:
            super().set_enabled(pool_id, username, enabled)


def test_exit_complete_only_when_the_verification_finds_no_difference(world: World) -> None:
    source, key = snapshot(world, users=20, groups=2)
    disabled = sum(not u["enabled"] for u in state(world, source)["users"].values())
    dst = target(world)
    gateway = NoDisable(unpaced(world.cognito)._client, world.gateway._pacer, base_delay=0.0)

    report = run_restore(gateway, world.store, key, dst)

    # the calls all "succeeded", yet the target differs: failed, with the differences counted
    assert disabled >= 1
    assert report.status == "failed" and not report.verified and not report.failures
    assert report.counts.differences == disabled
    written = world.store.get_json(report.report_key or "")
    assert len(written["differences"]) == disabled and "enabled flag" in written["differences"][0]
    assert any("TOTP" in n for n in written["not_restorable"])


def test_no_verify_skips_the_check_and_says_so(world: World) -> None:
    _, key = snapshot(world, users=10, groups=2)
    dst = target(world)
    calls: dict[str, int] = {}

    def list_calls() -> int:
        ops = world.engine.stats()["operations"]
        return sum(ops.get(op, {}).get("calls", 0) for op in ("ListUsers", "ListUsersInGroup"))

    before = list_calls()
    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(verify=False))
    calls["no_verify"] = list_calls() - before
    dst2 = target(world)
    before = list_calls()
    verified = run_restore(world.gateway, world.store, key, dst2)
    calls["verify"] = list_calls() - before

    assert report.status == "complete" and not report.verified
    assert "not verified" in "\n".join(report.summary_lines())
    assert verified.verified and calls["verify"] > calls["no_verify"]


# ------------------------------------------------------------------ mirror


def change_target(w: World, dst: str) -> None:
    """Everything mirror must undo: an extra user and group, a missing and an extra membership,
    a flipped enabled flag, an edited attribute, a deleted user (each on a user of its own)."""
    c, gw = w.cognito, w.gateway
    users = sorted(gw.iter_users(dst), key=lambda u: u.username)
    first_group = sorted(g.name for g in gw.iter_groups(dst))[0]
    groups = {u.username: gw.groups_for_user(dst, u.username) for u in users}
    member = next(u for u in users if groups[u.username])
    outsider = next(u for u in users if first_group not in groups[u.username] and u != member)
    rest = [u for u in users if u not in (member, outsider)]
    joiner, deleted, edited = rest[0], rest[-1], rest[-2]
    enabled = next(u for u in rest[1:-2] if u.enabled)
    # and now the changes
    c.admin_create_user(UserPoolId=dst, Username="intruder", MessageAction="SUPPRESS")
    c.create_group(UserPoolId=dst, GroupName="extra-group")
    c.admin_add_user_to_group(UserPoolId=dst, Username=joiner.username, GroupName="extra-group")
    c.admin_remove_user_from_group(
        UserPoolId=dst, Username=member.username, GroupName=groups[member.username][0]
    )
    c.admin_add_user_to_group(UserPoolId=dst, Username=outsider.username, GroupName=first_group)
    c.admin_disable_user(UserPoolId=dst, Username=enabled.username)
    c.admin_update_user_attributes(
        UserPoolId=dst, Username=edited.username, UserAttributes=[{"Name": "given_name", "Value": "Edited"}]
    )
    c.admin_delete_user(UserPoolId=dst, Username=deleted.username)


def test_mirror_makes_a_changed_target_exact_and_the_dry_run_names_every_removal(world: World) -> None:
    source, key = snapshot(world, users=30, groups=3)
    dst = target(world)
    assert run_restore(world.gateway, world.store, key, dst).status == "complete"
    change_target(world, dst)
    mirror = RestoreOptions(mirror=True)

    plan = run_restore(
        world.gateway, world.store, key, dst, options=mirror.model_copy(update={"dry_run": True})
    )
    report = run_restore(world.gateway, world.store, key, dst, options=mirror)

    # the dry run names every removal
    p = plan.plan
    assert p is not None and p.users_to_delete == ["intruder"] and p.groups_to_delete == ["extra-group"]
    assert p.memberships_to_remove == 2 and len(p.memberships_to_remove_names) == 2
    lines = "\n".join(plan.summary_lines())
    assert "delete user: intruder" in lines and "delete group: extra-group" in lines
    # the real run does exactly what the plan said, and the target is the snapshot's pool
    assert report.status == "complete" and report.verified, report.failures
    c = report.counts
    assert (c.created, c.users_deleted, c.groups_deleted) == (p.users_to_create, 1, 1) == (1, 1, 1)
    assert c.memberships_added == p.memberships_to_add and c.memberships_removed == p.memberships_to_remove
    assert c.enabled == p.users_to_enable == 1 and c.attributes_updated == 1
    assert state(world, dst) == expected(state(world, source))


def test_the_dry_run_plan_equals_what_the_real_run_does(world: World) -> None:
    _source, key = snapshot(world, users=25, groups=3)
    dst = target(world)

    plan = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(dry_run=True)).plan
    report = run_restore(world.gateway, world.store, key, dst)

    assert plan is not None and report.status == "complete"
    c = report.counts
    assert (plan.users_to_create, plan.memberships_to_add, plan.users_to_disable, plan.passwords_to_set) == (
        c.created,
        c.memberships_added,
        c.disabled,
        c.passwords_set,
    )
    assert len(plan.groups_to_create) == c.groups_created and len(plan.custom_attributes_to_add) == 2


def test_mirror_is_refused_with_a_subset_and_writes_nothing(world: World) -> None:
    _, key = snapshot(world, users=5, groups=1)
    dst = target(world)
    with pytest.raises(RestoreRefusedError, match="mirror"):
        run_restore(
            world.gateway, world.store, key, dst, options=RestoreOptions(mirror=True, usernames=("a",))
        )
    assert list(world.gateway.iter_users(dst)) == []


def test_event_booleans_must_be_json_booleans() -> None:
    base = {"manifest_key": "b/p/full/2026/11/21/x/manifest.json", "target_user_pool_id": "us-east-1_B"}
    event = RestoreEvent.model_validate({**base, "mirror": True, "verify": False})
    assert event.options().mirror and not event.options().verify
    for field in ("mirror", "verify", "dry_run"):
        with pytest.raises(ValidationError):
            RestoreEvent.model_validate({**base, field: "true"})
