"""Restore one group: the group, every member it had, and their membership of it.

A deleted group takes its memberships with it, but its members usually still exist. Under the
default conflict policy (`skip`) existing users are left alone, yet their membership of a group
asked for by name (`groups`, `--group`) is exactly what the restore is for: it is added back.
Every test runs under `strict_cognito()`, like the other test_restore_* modules.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from moto.backends import get_backend
from restore_world import (
    World,
    everything,
    expected,
    make_world,
    moto_user,
    restore_until_done,
    snapshot,
    target,
    unpaced,
)

from cognito_backup import cli
from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import RestoreRefusedError, UsageError
from cognito_backup.handlers import parse_restore_event
from cognito_backup.models import GroupRecord
from cognito_backup.pacing import CountdownDeadline
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.restore_models import RestoreReport
from cognito_backup.restore_rules import same_group
from cognito_backup.store import SnapshotStore
from cognito_local.seed import pool_state


@pytest.fixture
def gateway(aws: AwsClients) -> CognitoGateway:
    return unpaced(aws.cognito())


@pytest.fixture
def world(aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway) -> Iterator[World]:
    yield from make_world(aws, store, gateway, enforce_quotas=False)


SPECIAL = ("Google_777", "pending")  # see federated_members


@dataclass
class Loss:
    """A source pool that lost a group (and one of its members) after its snapshot."""

    source: str
    key: str
    group: GroupRecord  # as in the snapshot
    members: list[str]  # its members in the snapshot (source usernames)
    deleted: str  # the member deleted since
    changed: str  # a member whose given_name changed since (existing: skip leaves it)
    snap: dict[str, Any]  # pool_state at the snapshot
    before: dict[str, Any]  # pool_state just before the restore


def groups_of(w: World, pool_id: str, username: str) -> set[str]:
    return set(w.gateway.groups_for_user(pool_id, username))


def age_users(pool_id: str) -> None:
    """Date every user of the pool an hour back: in life, the members of a lost group were
    created long before its restore, never within the seconds a resumed restore takes for
    "created by an interrupted run of this restore" (restore.CLOCK_SKEW)."""
    pool = get_backend("cognito-idp")["123456789012"]["us-east-1"].user_pools[pool_id]
    for user in pool.users.values():
        user.create_date -= timedelta(hours=1)


def lose_a_group(w: World, *, username_attributes: tuple[str, ...] | None = None, extra: Any = None) -> Loss:
    source, key = snapshot(w, username_attributes=username_attributes, users=24, groups=3, extra=extra)
    age_users(source)
    snap = pool_state(w.cognito, source)
    gw = w.gateway
    sizes = {g.name: sorted(gw.iter_members(source, g.name)) for g in gw.iter_groups(source)}
    name = max(sizes, key=lambda n: len(sizes[n]))
    group = gw.get_group(source, name)
    native = [m for m in sizes[name] if m not in SPECIAL]
    assert group is not None and len(native) >= 3
    # the deleted member, preferably one with other memberships too
    deleted = max(native, key=lambda m: len(groups_of(w, source, m)))
    changed = next(m for m in native if m != deleted)
    w.cognito.delete_group(UserPoolId=source, GroupName=name)
    w.cognito.admin_delete_user(UserPoolId=source, Username=deleted)
    w.cognito.admin_update_user_attributes(
        UserPoolId=source, Username=changed, UserAttributes=[{"Name": "given_name", "Value": "Changed"}]
    )
    before = pool_state(w.cognito, source)
    return Loss(source, key, group, sizes[name], deleted, changed, snap, before)


def usernames(w: World, pool_id: str) -> list[str]:
    return sorted(u.username for u in w.gateway.iter_users(pool_id))


def given_name(w: World, pool_id: str, username: str) -> str | None:
    user = w.gateway.get_user(pool_id, username)
    assert user is not None
    return str(user.attributes["given_name"]) if "given_name" in user.attributes else None


def same_pool(**options: Any) -> RestoreOptions:
    return RestoreOptions(allow_same_pool=True, **options)


# ------------------------------------------------------------------ the group comes back


def test_a_deleted_group_comes_back_with_every_member(world: World) -> None:
    # Given a snapshot, then the loss of a group and of one of its members, and a change to
    # another member
    loss = lose_a_group(world)
    src = loss.source

    # When that group is restored into the same pool, with the default conflict policy (skip)
    report = run_restore(
        world.gateway, world.store, loss.key, src, options=same_pool(groups=(loss.group.name,))
    )

    # Then the group is back with its description, precedence and role
    assert report.status == "complete", report.failures
    back = world.gateway.get_group(src, loss.group.name)
    assert back is not None and same_group(back, loss.group)
    assert loss.group.description and loss.group.role_arn and loss.group.precedence is not None
    # every member is in it again; the deleted one is re-created with all its memberships
    assert sorted(world.gateway.iter_members(src, loss.group.name)) == loss.members
    assert report.counts.created == 1 and loss.deleted in usernames(world, src)
    snap_groups = {g for g, u in loss.snap["memberships"] if u == loss.deleted}
    assert groups_of(world, src, loss.deleted) == snap_groups and len(snap_groups) >= 1
    # existing members are otherwise left alone: the change made since the snapshot stays
    assert given_name(world, src, loss.changed) == "Changed"
    # and nothing else moved: the pool is as before, plus the group, its memberships and the user
    after = pool_state(world.cognito, src)
    assert after["groups"] == loss.snap["groups"]
    assert after["memberships"] == loss.snap["memberships"]
    assert after["users"] == {
        **loss.before["users"],
        loss.deleted: expected(loss.snap)["users"][loss.deleted],
    }
    # the counts say so
    c = report.counts
    # members equal to the snapshot are no conflict (converged: given the group back); the one
    # changed since is left alone under skip, but for the group asked for
    assert c.users_considered == len(loss.members) and c.existing_skipped == 1
    assert c.converged == len(loss.members) - 2
    assert c.groups_created == 1 and c.memberships_failed == 0
    assert c.memberships_added == len(loss.members) - 1 + len(snap_groups)
    assert report.groups == [loss.group.name] and report.usernames is None
    skipped = {n.username: n.reason for n in report.skipped}
    assert "but for its membership of the groups asked for" in skipped[loss.changed]
    assert world.store.get_json(report.report_key or "")["groups"] == [loss.group.name]


def test_restoring_the_group_again_changes_nothing(world: World) -> None:
    loss = lose_a_group(world)
    options = same_pool(groups=(loss.group.name,))
    run_restore(world.gateway, world.store, loss.key, loss.source, options=options)
    state = pool_state(world.cognito, loss.source)

    again = run_restore(world.gateway, world.store, loss.key, loss.source, options=options)

    assert again.status == "complete" and pool_state(world.cognito, loss.source) == state
    assert again.counts.created == 0 and again.counts.memberships_added == 0
    assert again.counts.unchanged + again.counts.existing_skipped == len(loss.members)
    assert again.counts.existing_skipped == 1 and again.counts.groups_unchanged >= 1


def test_a_group_in_an_email_as_username_pool(world: World) -> None:
    # Usernames are generated there: members are found, and added, under their target usernames
    loss = lose_a_group(world, username_attributes=("email",))
    src = loss.source

    report = run_restore(
        world.gateway, world.store, loss.key, src, options=same_pool(groups=(loss.group.name,))
    )

    assert report.status == "complete", report.failures
    assert len(report.username_map) == 1  # the re-created member got a new generated username
    assert len(list(world.gateway.iter_members(src, loss.group.name))) == len(loss.members)
    # pool_state compares by email: every membership is back, under whatever username
    assert pool_state(world.cognito, src)["memberships"] == loss.snap["memberships"]
    assert report.counts.created == 1 and report.counts.existing_skipped == 1
    assert report.counts.converged == len(loss.members) - 2


def test_a_group_and_usernames_restore_their_union(world: World) -> None:
    loss = lose_a_group(world)
    src = loss.source
    outsider = next(u for u in sorted(loss.before["users"]) if u not in loss.members)
    outsider_groups = {g for g, u in loss.snap["memberships"] if u == outsider}
    world.cognito.admin_delete_user(UserPoolId=src, Username=outsider)

    report = run_restore(
        world.gateway,
        world.store,
        loss.key,
        src,
        options=same_pool(groups=(loss.group.name,), usernames=(outsider, loss.changed)),
    )

    assert report.status == "complete", report.failures
    assert report.counts.created == 2 and report.counts.users_considered == len(loss.members) + 1
    assert sorted(world.gateway.iter_members(src, loss.group.name)) == loss.members
    assert groups_of(world, src, outsider) == outsider_groups
    assert pool_state(world.cognito, src)["memberships"] == loss.snap["memberships"]
    # a member named as a username too is still an existing user left alone
    assert given_name(world, src, loss.changed) == "Changed"


def test_under_fail_existing_members_are_conflicts_yet_get_the_membership(world: World) -> None:
    loss = lose_a_group(world)

    report = run_restore(
        world.gateway,
        world.store,
        loss.key,
        loss.source,
        options=same_pool(groups=(loss.group.name,), conflict_policy="fail"),
    )

    # only the member changed since the snapshot conflicts; the others equal it (converged)
    assert report.status == "failed" and report.counts.conflicts == 1
    assert {f.username for f in report.failures} == {loss.changed}
    assert sorted(world.gateway.iter_members(loss.source, loss.group.name)) == loss.members
    assert given_name(world, loss.source, loss.changed) == "Changed"


def test_under_overwrite_existing_members_are_reset_to_the_snapshot(world: World) -> None:
    loss = lose_a_group(world)

    report = run_restore(
        world.gateway,
        world.store,
        loss.key,
        loss.source,
        options=same_pool(groups=(loss.group.name,), conflict_policy="overwrite"),
    )

    assert report.status == "complete", report.failures
    assert report.counts.overwritten == len(loss.members) - 1
    assert sorted(world.gateway.iter_members(loss.source, loss.group.name)) == loss.members
    snapshot_value = loss.snap["users"][loss.changed]["attributes"].get("given_name")
    assert given_name(world, loss.source, loss.changed) == snapshot_value != "Changed"


# ------------------------------------------------------------------ federated and unconfirmed


def federated_members(w: World) -> Any:
    """A federated user and an UNCONFIRMED one, both members of every group."""

    def add(source: str) -> None:
        c = w.cognito
        w.engine.enforce_validation = False  # Cognito makes a federated user itself; an admin cannot
        try:
            for name in ("Google_777", "pending"):
                c.admin_create_user(
                    UserPoolId=source,
                    Username=name,
                    UserAttributes=[{"Name": "email", "Value": f"{name.lower()}@example.com"}],
                    MessageAction="SUPPRESS",
                )
        finally:
            w.engine.enforce_validation = True
        moto_user(source, "Google_777").status = "EXTERNAL_PROVIDER"
        moto_user(source, "pending").status = "UNCONFIRMED"
        for group in w.gateway.iter_groups(source):
            for name in ("Google_777", "pending"):
                c.admin_add_user_to_group(UserPoolId=source, Username=name, GroupName=group.name)

    return add


def test_a_federated_member_gets_its_membership_back_where_it_exists(world: World) -> None:
    # Given a group whose members include a federated user and an unconfirmed one
    loss = lose_a_group(world, extra=federated_members(world))
    name = loss.group.name
    assert {"Google_777", "pending"} <= set(loss.members)

    # When the group is restored into its own pool, where the federated user still exists
    report = run_restore(world.gateway, world.store, loss.key, loss.source, options=same_pool(groups=(name,)))

    # Then the federated user is in the group again (it is the same identity), not the
    # unconfirmed one (whoever signs up under that name next is not proven to be the same person)
    assert report.status == "complete", report.failures
    assert report.counts.skipped_federated == 1 and report.counts.skipped_unconfirmed == 1
    members = set(world.gateway.iter_members(loss.source, name))
    assert members == set(loss.members) - {"pending"}

    # And into a fresh pool, where the federated user has not signed in yet, its membership
    # waits (skipped, not failed)
    dst = target(world)
    fresh = run_restore(world.gateway, world.store, loss.key, dst, options=RestoreOptions(groups=(name,)))
    assert fresh.status == "complete", fresh.failures
    assert set(world.gateway.iter_members(dst, name)) == set(loss.members) - {"pending", "Google_777"}
    assert fresh.counts.memberships_failed == 0 and fresh.counts.memberships_skipped >= 2


# ------------------------------------------------------------------ refusal, dry run, resumption


def test_an_unknown_group_is_refused_by_name_and_nothing_is_written(world: World) -> None:
    loss = lose_a_group(world)
    dst = target(world)
    for pool, same in ((loss.source, True), (dst, False)):
        before = everything(world, [loss.source, dst])
        for dry_run in (True, False):
            options = RestoreOptions(
                groups=(loss.group.name, "no-such-group"), dry_run=dry_run, allow_same_pool=same
            )
            with pytest.raises(RestoreRefusedError, match="no group 'no-such-group' in snapshot") as refused:
                run_restore(world.gateway, world.store, loss.key, pool, options=options)
            assert "Nothing was written" in str(refused.value)
            assert loss.group.name not in str(refused.value).split("in snapshot")[0]
        # not to the pools, not to the bucket: not even the verdict of the never-validated snapshot
        assert everything(world, [loss.source, dst]) == before
        assert world.store.get_tags(loss.key) == {}


def test_group_names_are_case_sensitive(world: World) -> None:
    loss = lose_a_group(world)
    with pytest.raises(RestoreRefusedError, match="case-sensitive"):
        run_restore(
            world.gateway,
            world.store,
            loss.key,
            loss.source,
            options=same_pool(groups=(loss.group.name.upper(),)),
        )


def test_a_dry_run_lists_the_group_and_writes_nothing(world: World) -> None:
    loss = lose_a_group(world)
    before = everything(world, [loss.source])

    report = run_restore(
        world.gateway,
        world.store,
        loss.key,
        loss.source,
        options=same_pool(groups=(loss.group.name,), dry_run=True),
    )

    plan = report.plan
    assert report.dry_run and plan is not None and report.groups == [loss.group.name]
    assert loss.group.name in plan.groups_to_create
    assert plan.users_to_create == 1 and plan.users_to_create_names == [loss.deleted]
    assert plan.users_existing == len(loss.members) - 1
    deleted_groups = {g for g, u in loss.snap["memberships"] if u == loss.deleted}
    assert plan.memberships_to_add == len(loss.members) - 1 + len(deleted_groups)
    assert any(loss.group.name in line for line in report.summary_lines())
    assert everything(world, [loss.source]) == before


@pytest.mark.parametrize("checks", [0, 1, 3])
def test_a_cut_group_restore_resumes_to_the_full_membership(world: World, checks: int) -> None:
    # Given a group restore that may pass only `checks` deadline checks per invocation
    loss = lose_a_group(world)
    options = same_pool(groups=(loss.group.name,), chunk_size=2, checkpoint_seconds=0)

    # When it is invoked until it finishes
    reports = restore_until_done(world, loss.key, loss.source, options, checks)

    # Then it was cut, and still ends with every member in the group, each counted once
    final = reports[-1]
    assert len(reports) > 1 and all(r.status == "incomplete" for r in reports[:-1])
    assert final.status == "complete", final.failures
    assert sorted(world.gateway.iter_members(loss.source, loss.group.name)) == loss.members
    assert pool_state(world.cognito, loss.source)["memberships"] == loss.snap["memberships"]
    deleted_groups = {g for g, u in loss.snap["memberships"] if u == loss.deleted}
    assert final.counts.memberships_added == len(loss.members) - 1 + len(deleted_groups)
    assert final.counts.created == 1 and final.counts.users_considered == len(loss.members)


def test_a_checkpoint_is_continued_only_with_the_same_groups(world: World) -> None:
    loss = lose_a_group(world)
    options = same_pool(groups=(loss.group.name,))
    first = run_restore(
        world.gateway, world.store, loss.key, loss.source, options=options, deadline=CountdownDeadline(0)
    )
    assert first.status == "incomplete"

    for other in (same_pool(), same_pool(usernames=(loss.deleted,))):
        with pytest.raises(UsageError, match="usernames, groups, conflict policy"):
            run_restore(world.gateway, world.store, loss.key, loss.source, options=other)

    done = run_restore(world.gateway, world.store, loss.key, loss.source, options=options)
    assert done.status == "complete" and done.invocations == 2


# ------------------------------------------------------------------ options, event, command line


def test_options_and_event_take_groups() -> None:
    with pytest.raises(ValueError, match="groups must not be empty strings"):
        RestoreOptions(groups=("a", ""))
    assert RestoreOptions(groups=("a", "b", "a")).groups == ("a", "b")
    assert RestoreOptions(groups=()).groups is None
    assert not RestoreOptions(groups=("a",)).same_work(RestoreOptions())
    assert not RestoreOptions(groups=("a",)).same_work(RestoreOptions(groups=("b",)))
    assert RestoreOptions(groups=("a", "b")).same_work(RestoreOptions(groups=("b", "a")))
    event = {"manifest_key": "a/manifest.json", "target_user_pool_id": "us-east-1_X"}
    assert parse_restore_event({**event, "groups": ["admins"]}).options().groups == ("admins",)
    assert parse_restore_event(event).options().groups is None
    with pytest.raises(UsageError, match="malformed restore event: groups"):
        parse_restore_event({**event, "groups": [""]})
    with pytest.raises(UsageError, match="malformed restore event: group"):
        parse_restore_event({**event, "group": "admins"})  # extra fields stay forbidden


@pytest.mark.usefixtures("restore_logger")
def test_the_command_line_takes_repeated_groups(aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    import cognito_backup.restore as restore

    seen: list[RestoreOptions] = []

    def fake_run_restore(gateway: Any, store: Any, key: str, pool: str, **kwargs: Any) -> RestoreReport:
        seen.append(kwargs["options"])
        return RestoreReport.model_validate(
            {
                "status": "complete",
                "manifest_key": key,
                "snapshot_id": "s",
                "source_user_pool_id": "us-east-1_A",
                "target_user_pool_id": pool,
                "conflict_policy": "skip",
                "password_strategy": "random-confirmed",
                "groups": list(kwargs["options"].groups or []),
                "started_at": "2026-01-01T00:00:00Z",
            }
        )

    monkeypatch.setattr(restore, "run_restore", fake_run_restore)
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "restore",
        "--bucket",
        "b",
        "--manifest",
        "k/manifest.json",
        "--target-user-pool-id",
        "us-east-1_A",
    ]
    code = cli.main([*argv, "--group", "admins", "--group", "ops", "--allow-same-pool", "--json"], out, err)

    assert code == 0, err.getvalue()
    assert seen[0].groups == ("admins", "ops") and seen[0].allow_same_pool and seen[0].usernames is None
    assert json.loads(out.getvalue())["groups"] == ["admins", "ops"]
    cli.main(argv, io.StringIO(), io.StringIO())
    assert seen[1].groups is None
