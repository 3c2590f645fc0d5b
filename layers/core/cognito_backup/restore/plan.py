"""The plan: what differs between the snapshot and the target, as the writes that remove it.

One decision path: `decide_user` and `decide_group` compare a snapshot record with what the
target holds (from the TargetIndex, or what a lost answer revealed) and say what to write. The
dry run tallies those decisions into its RestorePlan; a real run applies them; the verification
decides again against a fresh read of the target, and every write still wanted is a difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from ..models import GroupRecord, UserRecord
from ..restore_models import RestoreFailure, RestorePlan, UserNote
from ..restore_rules import (
    FEDERATED_REASON,
    UNCONFIRMED_REASON,
    Identity,
    attribute_changes,
    identities,
    not_restorable,
    password_plan,
    same_group,
    writable_attributes,
)
from .preflight import RestoreContext
from .target import TargetIndex

# A user found in the target is ours (made by this restore) if created after the restore
# started, less this much for clock differences and second-rounded dates.
CLOCK_SKEW = timedelta(seconds=5)

NO_LOGIN = "no email or phone number to create the user under (the pool names users by them)"
T = TypeVar("T")
GroupDecision = Literal["create", "unchanged", "update", "kept", "conflict"]


@dataclass
class UserPlan:
    """What one snapshot user needs in the target. Only its own worker thread writes it."""

    user: UserRecord
    groups: list[str]  # its memberships in the snapshot
    outcome: str  # created | converged | unchanged | overwritten | existing_skipped | conflicts |
    # skipped_federated | skipped_unconfirmed | failed
    login: str | None = None
    target_username: str | None = None
    existing: UserRecord | None = None
    resumed: bool = False
    create: bool = False
    invite: tuple[str, ...] = ()
    password: bool = False
    enabled: bool | None = None  # set the enabled flag to this
    set_attributes: dict[str, str] = field(default_factory=dict)
    delete_attributes: list[str] = field(default_factory=list)
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    links: list[Identity] = field(default_factory=list)
    admin: list[str] = field(default_factory=list)
    skipped: str | None = None
    failure: str | None = None
    memberships_skipped: int = 0
    federated: bool = False
    links_missing: int = 0  # links to providers the target lacks (listed for an admin)
    failures: list[RestoreFailure] = field(default_factory=list)  # of memberships

    def writes(self) -> int:
        """The writes this plan still wants: zero once the target matches the snapshot."""
        return (
            int(self.create)
            + int(self.password)
            + int(self.enabled is not None)
            + int(bool(self.set_attributes or self.delete_attributes))
            + len(self.add)
            + len(self.remove)
        )


def is_ours(existing: UserRecord, started_at: datetime | None) -> bool:
    """Created after the restore started (None: a fresh run, before which nothing is ours)."""
    if started_at is None or existing.created is None:
        return False
    return existing.created >= started_at - CLOCK_SKEW


def is_equal(user: UserRecord, existing: UserRecord) -> bool:
    """What AdminCreateUser was (or would be) asked for is what the target holds."""
    return all(existing.attributes.get(k) == v for k, v in writable_attributes(user).items())


def decide_user(
    ctx: RestoreContext,
    user: UserRecord,
    groups: list[str],
    existing: UserRecord | None,
    existing_groups: set[str],
    started_at: datetime | None,
) -> UserPlan:
    """The one decision: what `user` needs, given what the target holds of it."""
    reason = not_restorable(user)
    if reason is not None:
        return _not_restorable(ctx, user, groups, existing, existing_groups, reason)
    plan = UserPlan(user, groups, outcome="failed", login=ctx.scheme.login(user))
    if plan.login is None:
        plan.failure = NO_LOGIN
        return plan
    if existing is None:
        _create(ctx, plan)
        return plan
    plan.existing, plan.target_username = existing, existing.username
    policy = ctx.options.policy
    equal = is_equal(user, existing)
    if equal and is_ours(existing, started_at):
        plan.outcome, plan.resumed = "created", True
    elif policy == "overwrite":
        plan.outcome = "overwritten"
    elif equal:
        plan.outcome = "converged"
    else:
        _left_alone(ctx, plan, existing_groups, policy)
        return plan
    _converge(ctx, plan, existing, existing_groups)
    if plan.outcome == "converged" and not plan.writes():
        plan.outcome = "unchanged"
    return plan


def _not_restorable(
    ctx: RestoreContext,
    user: UserRecord,
    groups: list[str],
    existing: UserRecord | None,
    existing_groups: set[str],
    reason: str,
) -> UserPlan:
    plan = UserPlan(user, groups, outcome=f"skipped_{reason}")
    plan.skipped = FEDERATED_REASON if reason == "federated" else UNCONFIRMED_REASON
    if reason != "federated":
        plan.memberships_skipped = len(groups)
        return plan
    # Back in the target if it has signed in since (same username): the groups asked for.
    plan.federated = True
    named = [g for g in groups if g in ctx.named_groups]
    plan.memberships_skipped = len(groups) - len(named)
    if existing is None:
        plan.memberships_skipped += len(named)
        return plan
    plan.target_username = existing.username
    plan.add = sorted(set(named) - existing_groups)
    return plan


def _create(ctx: RestoreContext, plan: UserPlan) -> None:
    user = plan.user
    pp = password_plan(user, ctx.options.password_strategy)
    plan.outcome, plan.create = "created", True
    plan.invite, plan.password = pp.invite_mediums, pp.set_random_password
    plan.admin.extend(pp.admin_reasons)
    plan.enabled = False if not user.enabled else None
    plan.add = sorted(set(plan.groups))
    _links(ctx, plan, set())


def _links(ctx: RestoreContext, plan: UserPlan, already: set[Identity]) -> None:
    for identity in identities(plan.user):
        if identity in already:
            continue
        if identity.provider in ctx.providers:
            plan.links.append(identity)
        else:
            plan.links_missing += 1
            plan.admin.append(
                f"not re-linked to {identity.provider} (user id {identity.user_id}): no such identity "
                "provider in the target; create it, then AdminLinkProviderForUser"
            )


def _left_alone(ctx: RestoreContext, plan: UserPlan, existing_groups: set[str], policy: str) -> None:
    """A pre-existing user that differs, under skip or fail: but for the groups asked for."""
    named = [g for g in plan.groups if g in ctx.named_groups]
    plan.memberships_skipped = len(plan.groups) - len(named)
    plan.add = sorted(set(named) - existing_groups)
    if policy == "skip":
        plan.outcome = "existing_skipped"
        plan.skipped = "already exists in the target (conflict policy skip)"
        if named:
            plan.skipped += ": left as it is, but for its membership of the groups asked for"
    else:
        plan.outcome = "conflicts"
        plan.failure = "already exists in the target (conflict policy fail)"


def _converge(ctx: RestoreContext, plan: UserPlan, existing: UserRecord, existing_groups: set[str]) -> None:
    """An existing user that is ours, equal to the snapshot or overwritten: every follow-up."""
    user = plan.user
    if existing.enabled != user.enabled:
        plan.enabled = user.enabled
    wanted = set(plan.groups)
    plan.add = sorted(wanted - existing_groups)
    pp = password_plan(user, ctx.options.password_strategy)
    # The snapshot's CONFIRMED user left with a temporary password (ours, equal, or overwritten:
    # overwrite makes the user what the snapshot says, status included) gets its random one, so
    # that the apply step and the verification decide alike.
    if pp.set_random_password and existing.status == "FORCE_CHANGE_PASSWORD":
        plan.password = True
    if plan.resumed:
        plan.admin.extend(pp.admin_reasons)
    if ctx.options.policy == "overwrite":  # overwrite and mirror: the snapshot's memberships only
        plan.remove = sorted(existing_groups - wanted)
        changes, removals, immutable = attribute_changes(
            writable_attributes(user),
            writable_attributes(existing),
            ctx.mutable,
            keep=ctx.scheme.username_attributes,
        )
        plan.set_attributes, plan.delete_attributes = changes, removals
        if immutable:
            plan.admin.append(f"immutable attributes differ and cannot be changed: {', '.join(immutable)}")
    _links(ctx, plan, set(identities(existing)))


def decide_group(group: GroupRecord, existing: GroupRecord | None, policy: str) -> GroupDecision:
    if existing is None:
        return "create"
    if same_group(existing, group):
        return "unchanged"
    return {"overwrite": "update", "skip": "kept"}.get(policy, "conflict")  # type: ignore[return-value]


def plan_users(
    ctx: RestoreContext, index: TargetIndex, users: Iterator[UserRecord], started_at: datetime | None
) -> Iterator[list[UserPlan]]:
    """The snapshot's users (from `users` on), decided in windows against the target's index."""
    for window, memberships in ctx.windows(users):
        plans = []
        for user in window:
            name = user.username if not_restorable(user) else ctx.scheme.login(user)
            existing = index.find(name) if name else None
            have = index.groups_of(existing.username) if existing else set()
            plans.append(
                decide_user(ctx, user, memberships.get(user.username, []), existing, have, started_at)
            )
        yield plans


def removals(ctx: RestoreContext, index: TargetIndex) -> tuple[list[UserRecord], list[UserRecord], list[str]]:
    """mirror: (native users, federated users, groups) of the target that the snapshot lacks."""
    for window, _ in ctx.windows(ctx.users()):
        names = (u.username if not_restorable(u) else ctx.scheme.login(u) for u in window)
        found = (index.find(n) for n in names if n)
        index.match(u.username for u in found if u is not None)
    native: list[UserRecord] = []
    federated: list[UserRecord] = []
    for user in index.unmatched():
        (federated if user.status == "EXTERNAL_PROVIDER" else native).append(user)
    snapshot_groups = {g.name for g in ctx.groups()}
    return native, federated, [g for g in index.group_names() if g not in snapshot_groups]


# --------------------------------------------------------------------------- the dry run's tally


class Tally:
    """Decisions folded into a RestorePlan (names cut at plan_limit)."""

    def __init__(self, ctx: RestoreContext) -> None:
        self.limit = ctx.options.plan_limit
        will = {"skip": "be skipped", "overwrite": "be overwritten", "fail": "fail the restore"}
        self.plan = RestorePlan(existing_users_will=will[ctx.options.policy])

    def add(self, items: list[T], item: T) -> None:
        if len(items) < self.limit:
            items.append(item)
        else:
            self.plan.truncated = True

    def group(self, name: str, decision: GroupDecision) -> None:
        p = self.plan
        lists = {
            "create": p.groups_to_create,
            "unchanged": p.groups_unchanged,
            "update": p.groups_to_update,
            "kept": p.groups_kept,
            "conflict": p.groups_in_conflict,
        }
        self.add(lists[decision], name)

    def user(self, up: UserPlan) -> None:
        p, name = self.plan, up.user.username
        if up.outcome.startswith("skipped_") or up.failure == NO_LOGIN:
            self.add(p.users_not_restorable, UserNote(username=name, reason=up.skipped or NO_LOGIN))
        elif up.create:
            p.users_to_create += 1
            self.add(p.users_to_create_names, name)
        else:
            p.users_existing += 1
            self.add(p.users_existing_names, name)
            if up.outcome in ("created", "converged"):
                p.users_to_converge += 1
            elif up.outcome == "unchanged":
                p.users_unchanged += 1
        p.memberships_to_add += len(up.add)
        p.memberships_not_restorable += up.memberships_skipped
        p.memberships_to_remove += len(up.remove)
        for group in up.remove:
            self.add(p.memberships_to_remove_names, f"{name} -> {group}")
        p.links_to_create += len(up.links)
        p.passwords_to_set += int(up.password)
        p.users_to_disable += int(up.enabled is False)
        p.users_to_enable += int(up.enabled is True)
        for note in up.admin:
            if note.startswith("not re-linked"):
                self.add(p.links_not_restorable, UserNote(username=name, reason=note))
        reasons = [a for a in up.admin if not a.startswith("not re-linked")]
        if reasons:
            self.add(p.admin_action, UserNote(username=name, reason="; ".join(reasons)))

    def removal(self, users: list[UserRecord], groups: list[str]) -> None:
        for user in users:
            self.add(self.plan.users_to_delete, user.username)
        for group in groups:
            self.add(self.plan.groups_to_delete, group)
