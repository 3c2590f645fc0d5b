"""Restore: conflict policies, subsets, password strategies, special users, pacing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from restore_world import (
    ALL_CUSTOM,
    LockedClient,
    World,
    expected,
    make_world,
    moto_user,
    snapshot,
    target,
    unpaced,
)

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import AccessDeniedError, UsageError, UserNotFoundError
from cognito_backup.pacing import Pacer
from cognito_backup.restore import RestoreOptions, run_restore
from cognito_backup.store import SnapshotStore
from cognito_local.seed import pool_state


@pytest.fixture
def gateway(aws: AwsClients) -> CognitoGateway:
    return unpaced(aws.cognito())


@pytest.fixture
def world(aws: AwsClients, store: SnapshotStore, gateway: CognitoGateway) -> Iterator[World]:
    yield from make_world(aws, store, gateway, enforce_quotas=False)


def groups_of(w: World, pool_id: str, username: str) -> set[str]:
    return set(w.gateway.groups_for_user(pool_id, username))


# ------------------------------------------------------------------ conflict policies


def conflicted_target(w: World, source: str) -> tuple[str, list[Any]]:
    """A target where three of the snapshot's users already exist, differently, and one of
    its groups exists with another description; plus a group the snapshot does not have."""
    dst = target(w, custom=ALL_CUSTOM)
    c = w.cognito
    members = {u for g in w.gateway.iter_groups(source) for u in w.gateway.iter_members(source, g.name)}
    picked = sorted(
        (u for u in w.gateway.iter_users(source) if u.username in members), key=lambda u: u.username
    )[:3]
    group = next(iter(w.gateway.iter_groups(source)))
    c.create_group(UserPoolId=dst, GroupName=group.name, Description="changed", Precedence=99)
    c.create_group(UserPoolId=dst, GroupName="stale", Description="not in the snapshot")
    for i, user in enumerate(picked):
        attrs = [
            {"Name": "email", "Value": f"other{i}@example.net"},
            {"Name": "given_name", "Value": "Other"},
        ]
        if i == 0:
            attrs.append({"Name": "custom:employee_id", "Value": "DIFFERENT"})  # immutable
        c.admin_create_user(
            UserPoolId=dst, Username=user.username, UserAttributes=attrs, MessageAction="SUPPRESS"
        )
        c.admin_add_user_to_group(UserPoolId=dst, Username=user.username, GroupName="stale")
        if user.enabled:
            c.admin_disable_user(UserPoolId=dst, Username=user.username)
    return dst, picked


def test_skip_leaves_existing_users_and_groups_alone(world: World) -> None:
    source, key = snapshot(world, users=20, groups=3)
    dst, picked = conflicted_target(world, source)
    before = pool_state(world.cognito, dst)

    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(conflict_policy="skip"))

    assert report.status == "complete" and not report.failures
    assert report.counts.existing_skipped == 3 and report.counts.created == 17
    assert report.counts.groups_kept == 1 and report.counts.memberships_skipped > 0
    assert {n.username for n in report.skipped} == {u.username for u in picked}
    after = pool_state(world.cognito, dst)
    for user in picked:
        assert after["users"][user.username] == before["users"][user.username]
    assert all(u.sub not in report.sub_map for u in picked)


def test_overwrite_brings_existing_users_and_groups_to_the_snapshot(world: World) -> None:
    source, key = snapshot(world, users=20, groups=3)
    dst, picked = conflicted_target(world, source)

    report = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(conflict_policy="overwrite")
    )

    assert report.status == "complete", report.failures
    assert (
        report.counts.overwritten == 3 and report.counts.created == 17 and report.counts.groups_updated == 1
    )
    assert report.counts.attributes_updated == 3 and report.counts.memberships_removed == 3
    src, dst_state = pool_state(world.cognito, source), pool_state(world.cognito, dst)
    for i, user in enumerate(picked):
        want, got = src["users"][user.username], dst_state["users"][user.username]
        assert got["enabled"] == want["enabled"]
        # mutable attributes as in the snapshot; the immutable one cannot change, and is reported
        assert {k: v for k, v in got["attributes"].items() if k != "custom:employee_id"} == {
            k: v for k, v in want["attributes"].items() if k != "custom:employee_id"
        }
        assert groups_of(world, dst, user.username) == groups_of(world, source, user.username)
        assert user.sub in report.sub_map
        if i == 0:
            assert got["attributes"]["custom:employee_id"] == "DIFFERENT"
    notes = {n.username: n.reason for n in report.admin_action}
    assert "immutable attributes differ" in notes[picked[0].username]
    assert dst_state["groups"] == {**src["groups"], "stale": dst_state["groups"]["stale"]}


def test_fail_reports_each_existing_user_and_ends_failed(world: World) -> None:
    source, key = snapshot(world, users=20, groups=3)
    dst, picked = conflicted_target(world, source)
    before = pool_state(world.cognito, dst)

    report = run_restore(world.gateway, world.store, key, dst, options=RestoreOptions(conflict_policy="fail"))

    assert report.status == "failed" and report.counts.conflicts == 3 and report.counts.created == 17
    failed = {f.username: f.reason for f in report.failures if f.username}
    assert set(failed) == {u.username for u in picked}
    assert all("conflict policy fail" in r for r in failed.values())
    assert any(f.group and "conflict policy fail" in f.reason for f in report.failures)
    after = pool_state(world.cognito, dst)
    for user in picked:
        assert after["users"][user.username] == before["users"][user.username]
    assert world.store.get_json(report.report_key or "")["status"] == "failed"


# ------------------------------------------------------------------ subsets


def test_a_subset_restores_only_those_users_with_their_memberships(world: World) -> None:
    source, key = snapshot(world, users=30, groups=4)
    members = sorted(
        {u for g in world.gateway.iter_groups(source) for u in world.gateway.iter_members(source, g.name)}
    )
    wanted = members[:2]
    dst = target(world)

    report = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(usernames=tuple(wanted))
    )

    assert report.status == "complete" and report.counts.created == 2
    state = pool_state(world.cognito, dst)
    assert sorted(state["users"]) == wanted
    needed = {g for u in wanted for g in groups_of(world, source, u)}
    assert set(state["groups"]) == needed  # missing groups created, and only those
    src = expected(pool_state(world.cognito, source))
    assert state["memberships"] == {m for m in src["memberships"] if m[1] in wanted}
    assert all(state["users"][u] == src["users"][u] for u in wanted)


def test_a_subset_by_email_in_an_email_pool_and_an_unknown_name_fails(world: World) -> None:
    source, key = snapshot(world, username_attributes=("email",), users=15, groups=2)
    email = sorted(u.attributes["email"] for u in world.gateway.iter_users(source))[3]
    dst = target(world, username_attributes=("email",))

    report = run_restore(
        world.gateway, world.store, key, dst, options=RestoreOptions(usernames=(email, "nobody@example.com"))
    )

    assert report.status == "failed" and report.counts.created == 1
    assert [(f.username, f.reason) for f in report.failures] == [
        ("nobody@example.com", "not in the snapshot")
    ]
    assert list(pool_state(world.cognito, dst)["users"]) == [email]


# ------------------------------------------------------------------ password strategies


class RecordingGateway(CognitoGateway):
    def __init__(self, client: Any) -> None:
        super().__init__(LockedClient(client), Pacer(quotas={}), base_delay=0.0)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, operation: str, **kwargs: Any) -> Any:
        self.calls.append((operation, kwargs))
        return super().call(operation, **kwargs)


def test_invite_lets_cognito_send_invitations_to_enabled_users_only(world: World) -> None:
    source, key = snapshot(world, users=20, groups=2)
    dst = target(world)
    gw = RecordingGateway(world.cognito)

    report = run_restore(gw, world.store, key, dst, options=RestoreOptions(password_strategy="invite"))

    assert report.status == "complete"
    creates = [kw for op, kw in gw.calls if op == "admin_create_user"]
    invited = [kw for kw in creates if "MessageAction" not in kw]
    users = {u.username: u for u in world.gateway.iter_users(source)}
    assert len(invited) == sum(u.enabled for u in users.values()) == report.counts.invitations_sent
    assert all("EMAIL" in kw["DesiredDeliveryMediums"] for kw in invited)
    assert all(kw["MessageAction"] == "SUPPRESS" for kw in creates if kw not in invited)
    assert not any(op == "admin_set_user_password" for op, _ in gw.calls)
    assert {u["status"] for u in pool_state(world.cognito, dst)["users"].values()} == {
        "FORCE_CHANGE_PASSWORD"
    }
    notes = {n.username for n in report.admin_action}
    assert notes == {name for name, u in users.items() if not u.enabled}


def test_the_default_strategy_never_sends_a_message(world: World) -> None:
    _, key = snapshot(world, users=15, groups=2)
    dst = target(world)
    gw = RecordingGateway(world.cognito)

    report = run_restore(gw, world.store, key, dst)

    creates = [kw for op, kw in gw.calls if op == "admin_create_user"]
    assert creates and all(kw["MessageAction"] == "SUPPRESS" for kw in creates)
    assert all("sub" not in {a["Name"] for a in kw["UserAttributes"]} for kw in creates)
    passwords = [kw for op, kw in gw.calls if op == "admin_set_user_password"]
    assert passwords and all(kw["Permanent"] is True for kw in passwords)
    assert len({kw["Password"] for kw in passwords}) == len(passwords)  # one random password each
    assert report.counts.passwords_set == len(passwords) and report.counts.invitations_sent == 0
    report_text = json.dumps(world.store.get_json(report.report_key or ""))
    assert not any(kw["Password"] in report_text for kw in passwords)


# ------------------------------------------------------------------ special users


class FakeLinkingGateway(CognitoGateway):
    """Stands in for AdminLinkProviderForUser, which moto does not implement."""

    def __init__(self, client: Any) -> None:
        super().__init__(LockedClient(client), Pacer(quotas={}), base_delay=0.0)
        self.links: list[tuple[str, str, str, str, str]] = []

    def link_provider(
        self, pool_id: str, username: str, provider: str, attr_name: str, attr_value: str
    ) -> None:
        self.links.append((pool_id, username, provider, attr_name, attr_value))


def special_users(w: World) -> Any:
    def add(source: str) -> None:
        c = w.cognito
        group = next(iter(w.gateway.iter_groups(source))).name
        linked = json.dumps(
            [
                {"userId": "g-123", "providerName": "Google", "providerType": "Google", "primary": "false"},
                {"userId": "okta-9", "providerName": "Okta", "providerType": "OIDC", "primary": "false"},
            ]
        )
        w.engine.enforce_validation = False  # Cognito makes these itself; an admin cannot
        try:
            for name, attrs in (
                ("Google_777", [{"Name": "email", "Value": "fed@example.com"}]),
                ("pending", [{"Name": "email", "Value": "pending@example.com"}]),
                (
                    "linked",
                    [
                        {"Name": "email", "Value": "linked@example.com"},
                        {"Name": "email_verified", "Value": "true"},
                        {"Name": "identities", "Value": linked},
                    ],
                ),
            ):
                c.admin_create_user(
                    UserPoolId=source, Username=name, UserAttributes=attrs, MessageAction="SUPPRESS"
                )
        finally:
            w.engine.enforce_validation = True
        moto_user(source, "Google_777").status = "EXTERNAL_PROVIDER"
        moto_user(source, "pending").status = "UNCONFIRMED"
        c.admin_set_user_password(
            UserPoolId=source, Username="linked", Password="Sup3r-secret!", Permanent=True
        )
        c.admin_add_user_to_group(UserPoolId=source, Username="Google_777", GroupName=group)

    return add


def google_target(w: World) -> str:
    dst = target(w)
    w.cognito.create_identity_provider(
        UserPoolId=dst,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "id", "client_secret": "secret", "authorize_scopes": "email"},
    )
    return dst


def test_federated_and_unconfirmed_users_are_skipped_and_links_restored(world: World) -> None:
    _source, key = snapshot(world, users=10, groups=2, extra=special_users(world))
    dst = google_target(world)
    gw = FakeLinkingGateway(world.cognito)

    report = run_restore(gw, world.store, key, dst)

    assert report.status == "complete", report.failures
    skipped = {n.username: n.reason for n in report.skipped}
    assert "EXTERNAL_PROVIDER" in skipped["Google_777"] and "UNCONFIRMED" in skipped["pending"]
    assert report.counts.skipped_federated == 1 and report.counts.skipped_unconfirmed == 1
    assert report.counts.memberships_skipped == 1
    assert gw.links == [(dst, "linked", "Google", "Cognito_Subject", "g-123")]
    assert report.counts.links_created == 1 and report.counts.links_not_restored == 1
    notes = {n.username: n.reason for n in report.admin_action}
    assert "not re-linked to Okta" in notes["linked"] and "no such identity provider" in notes["linked"]
    restored = world.gateway.get_user(dst, "linked")
    assert restored is not None and "identities" not in restored.attributes and restored.status == "CONFIRMED"
    assert (
        world.gateway.get_user(dst, "Google_777") is None and world.gateway.get_user(dst, "pending") is None
    )


def test_a_failed_link_is_reported_not_fatal(world: World) -> None:
    # moto answers AdminLinkProviderForUser with NotImplementedError
    _, key = snapshot(world, users=5, groups=1, extra=special_users(world))
    dst = google_target(world)

    report = run_restore(world.gateway, world.store, key, dst)

    assert report.status == "complete" and report.counts.links_not_restored == 2
    notes = {n.username: n.reason for n in report.admin_action}
    assert "AdminLinkProviderForUser failed" in notes["linked"]


# ------------------------------------------------------------------ pacing


@pytest.fixture
def throttling_world(aws: AwsClients, store: SnapshotStore) -> Iterator[World]:
    quotas = {
        "UserCreation": 8,
        "UserUpdate": 8,
        "UserResourceUpdate": 8,
        "UserAccountRecovery": 8,
        "UserPoolResourceUpdate": 8,
    }
    gateway = unpaced(aws.cognito(), base_delay=0.02, max_delay=0.2)
    yield from make_world(aws, store, gateway, quotas=quotas)


def test_throttling_is_retried_and_never_a_failure(throttling_world: World) -> None:
    w = throttling_world
    with w.engine.quotas_paused():
        source, key = snapshot(w, users=16, groups=2)
        dst = target(w)
    w.engine.reset()

    report = run_restore(w.gateway, w.store, key, dst)

    assert w.engine.stats()["total"]["throttled"] > 0
    assert report.status == "complete" and not report.failures and report.cognito_throttled > 0
    assert pool_state(w.cognito, dst) == expected(pool_state(w.cognito, source))


def test_a_paced_restore_is_not_throttled(throttling_world: World) -> None:
    w = throttling_world
    with w.engine.quotas_paused():
        _, key = snapshot(w, users=8, groups=2)
        dst = target(w)
    w.engine.reset()
    paced = CognitoGateway(
        LockedClient(w.cognito), Pacer(quotas={k: float(v) for k, v in w.engine.quotas.items()})
    )

    report = run_restore(paced, w.store, key, dst)

    assert report.status == "complete" and report.cognito_throttled == 0
    assert w.engine.stats()["total"]["throttled"] == 0


# ------------------------------------------------------------------ failures


class RefusingGateway(CognitoGateway):
    """Cognito refusing one user, one membership, and (optionally) every call: access denied."""

    def __init__(self, client: Any, user: str, group: str, deny: bool = False) -> None:
        super().__init__(LockedClient(client), Pacer(quotas={}), base_delay=0.0)
        self.user, self.group, self.deny = user, group, deny

    def call(self, operation: str, **kwargs: Any) -> Any:
        if self.deny and operation == "admin_add_user_to_group":
            raise AccessDeniedError("access denied to Cognito (AccessDeniedException): not allowed")
        if operation == "admin_create_user" and kwargs["Username"] == self.user:
            raise UsageError(
                "Cognito refused the request (InvalidParameterException): bad attribute", scope="record"
            )
        if operation == "admin_add_user_to_group" and kwargs["GroupName"] == self.group:
            raise UserNotFoundError("Group not found.")
        return super().call(operation, **kwargs)


def test_what_cognito_refuses_is_reported_per_user_and_fails_the_restore(world: World) -> None:
    source, key = snapshot(world, users=12, groups=2)
    first = min(u.username for u in world.gateway.iter_users(source))
    group = min(g.name for g in world.gateway.iter_groups(source))
    dst = target(world)

    report = run_restore(RefusingGateway(world.cognito, first, group), world.store, key, dst)

    assert report.status == "failed" and report.counts.failed == 1 and report.counts.created == 11
    reasons = {(f.username, f.group): f.reason for f in report.failures}
    assert "InvalidParameterException" in reasons[(first, None)]
    assert report.counts.memberships_failed == sum(1 for (_, g) in reasons if g == group) > 0
    assert world.store.get_json(report.report_key or "")["failures"]


def test_an_error_about_the_whole_run_stops_it_resumable(world: World) -> None:
    source, key = snapshot(world, users=12, groups=2)
    dst = target(world)
    with pytest.raises(AccessDeniedError):
        run_restore(RefusingGateway(world.cognito, "-", "-", deny=True), world.store, key, dst)

    report = run_restore(world.gateway, world.store, key, dst)

    assert report.status == "complete" and report.invocations == 2
    assert pool_state(world.cognito, dst) == expected(pool_state(world.cognito, source))
