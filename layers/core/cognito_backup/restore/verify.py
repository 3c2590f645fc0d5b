"""Verification: read the target again, decide again; every write still wanted is a difference.

It is the plan (plan.py) run against a fresh read of the target, with the run's own start time
(so that the users it made are recognised as ours): a missing user or group, a wrong enabled
flag, attributes that overwrite should have set, a missing (or, under overwrite/mirror, extra)
membership, a password still to set; under mirror, whatever the snapshot lacks. What the
conflict policy deliberately leaves alone (a different user under skip) is no difference, nor
is what is by nature not restorable (report.not_restorable). Provider links are not compared:
ListUsers shows them, but only where the provider exists, and moto does not implement them.

Cost: one read of the target (ListUsers and ListUsersInGroup pages of 60, ListGroups), the
snapshot read once more from S3; no write, no AdminGetUser.
"""

from __future__ import annotations

from datetime import datetime

from ..cognito import CognitoGateway
from .plan import UserPlan, decide_group, plan_users, removals
from .preflight import RestoreContext
from .target import TargetIndex


def _what(up: UserPlan) -> str:
    if up.create:
        return "missing"
    parts = []
    if up.enabled is not None:
        parts.append("enabled flag")
    if up.set_attributes or up.delete_attributes:
        parts.append("attributes")
    if up.password:
        parts.append("status (password not set)")
    if up.add:
        parts.append(f"{len(up.add)} membership(s) missing")
    if up.remove:
        parts.append(f"{len(up.remove)} membership(s) extra")
    return ", ".join(parts)


def verify(gateway: CognitoGateway, ctx: RestoreContext, started_at: datetime) -> tuple[int, list[str]]:
    """(number of differences, their descriptions up to plan_limit: names, for the S3 report)."""
    limit = ctx.options.plan_limit
    names: list[str] = []
    count = 0

    def note(text: str) -> None:
        nonlocal count
        count += 1
        if len(names) < limit:
            names.append(text)

    index = TargetIndex.read(gateway, ctx.target_pool_id, ctx.scheme)
    try:
        for group in ctx.groups():
            decision = decide_group(group, index.group(group.name), ctx.options.policy)
            if decision in ("create", "update"):
                note(f"group {group.name}: {'missing' if decision == 'create' else 'settings differ'}")
        for plans in plan_users(ctx, index, ctx.users(), started_at):
            for up in plans:
                if up.outcome != "failed" and up.writes():
                    note(f"user {up.user.username}: {_what(up)}")
        if ctx.options.mirror:
            native, _federated, groups = removals(ctx, index)
            for user in native:
                note(f"user {user.username}: not in the snapshot")
            for name in groups:
                note(f"group {name}: not in the snapshot")
    finally:
        index.close()
    return count, names
