"""Apply: one invocation of a real restore, phase by phase, every write safe to repeat.

    attributes  add the custom attributes the target lacks (AddCustomAttributes, 25 per call)
    groups      create / update the snapshot's groups (GroupExists with the same fields: done)
    users       in windows decided against the target's index (plan.py): AdminCreateUser and
                the password on one thread pool; disable/enable, attributes, memberships and
                links on another, so that the UserCreation and UserUpdate budgets run at once
    removals    mirror only: AdminDeleteUser, DeleteGroup for what the snapshot lacks
    verifying   read the target again and decide again: any write still wanted is a difference

A lost answer is harmless: AdminCreateUser answering UsernameExists for a user that is ours
(created after the restore started, and equal to what was asked) is a success, every follow-up
still due; any other user it answers for is decided as the plan decides a user it finds there.
The checkpoint is written before the first write; a rerun decides against the target as it finds
it, so it repairs whatever an earlier run left different.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from itertools import islice

from ..cognito import CognitoGateway
from ..errors import (
    BackupError,
    GroupExistsError,
    RestoreRefusedError,
    UsageError,
    UserExistsError,
    UserNotFoundError,
)
from ..models import GroupRecord, utcnow
from ..pacing import Deadline
from ..restore_models import (
    RestoreCheckpoint,
    RestoreCounts,
    RestoreFailure,
    RestoreOutcomes,
    RestoreReport,
    UserNote,
)
from ..restore_rules import custom_attribute_plan, random_password, same_group
from ..store import SnapshotStore, checkpoint_key
from .plan import UserPlan, decide_group, decide_user, is_equal, is_ours, plan_users, removals
from .preflight import RestoreContext, per_item, why
from .report import build_report, finish
from .target import TargetIndex
from .verify import verify

ProgressFn = Callable[[RestoreCounts], None]

# Per-user outcomes held before they are written out as an outcome object (at the next chunk
# boundary), whatever checkpoint_seconds says: what a run holds stays bounded at any speed.
OUTCOMES_PER_OBJECT = 2_000


class RestoreRun:
    """One invocation's worth of a restore (new or resumed)."""

    def __init__(
        self,
        gateway: CognitoGateway,
        store: SnapshotStore,
        ctx: RestoreContext,
        deadline: Deadline,
        progress: ProgressFn | None = None,
    ) -> None:
        self.gw = gateway
        self.store = store
        self.ctx = ctx
        self.options = ctx.options
        self.target = ctx.target_pool_id
        self.deadline = deadline
        self.progress = progress
        self.name = f"restore-{self.target}-{ctx.snapshot_id}"
        self.ckpt_key = checkpoint_key(ctx.prefix, ctx.source_pool_id, self.name)
        self.pending = RestoreOutcomes()
        self._last_checkpoint = time.monotonic()
        raw = store.get_json(self.ckpt_key)
        self.resumed = raw is not None
        if raw is not None:
            self.cp = RestoreCheckpoint.model_validate(raw)
            if not self.cp.options.same_work(self.options):
                raise UsageError(
                    f"an unfinished restore of {ctx.snapshot_id} into {self.target} with other options "
                    f"(usernames, groups, conflict policy, password strategy or mirror) is checkpointed at "
                    f"s3://{store.bucket}/{self.ckpt_key}: continue it with the same options, or delete it"
                )
        else:
            self.cp = RestoreCheckpoint(
                manifest_key=ctx.manifest_key,
                snapshot_id=ctx.snapshot_id,
                source_user_pool_id=ctx.source_pool_id,
                target_user_pool_id=self.target,
                options=self.options,
                started_at=utcnow(),
            )

    # ------------------------------------------------------------------ checkpoints
    def _outcomes_key(self, seq: int) -> str:
        return checkpoint_key(self.ctx.prefix, self.ctx.source_pool_id, f"{self.name}-outcomes-{seq:05d}")

    def checkpoint(self) -> None:
        """Persist the outcomes since the last checkpoint, then the position they lead to."""
        if not self.pending.empty():
            key = self._outcomes_key(len(self.cp.outcome_keys) + 1)
            self.store.put_json(key, self.pending)
            self.cp.outcome_keys.append(key)
            self.pending = RestoreOutcomes()
        self.store.put_json(self.ckpt_key, self.cp)
        self._last_checkpoint = time.monotonic()

    def _stop(self) -> bool:
        """At a boundary: True (after a checkpoint) when the deadline has come."""
        if self.progress:
            self.progress(self.cp.counts)
        if self.deadline.expired():
            self.checkpoint()
            return True
        due = time.monotonic() - self._last_checkpoint >= self.options.checkpoint_seconds
        if due or self.pending.size() >= OUTCOMES_PER_OBJECT:
            self.checkpoint()
        return False

    def _incomplete(self) -> RestoreReport:
        return build_report(self.ctx, self.cp, self.gw, "incomplete", None, self.ckpt_key)

    # ------------------------------------------------------------------ phases
    def run(self) -> RestoreReport:
        cp = self.cp
        cp.invocations += 1
        if not self.resumed:
            subset = self.ctx.subset()
            for name in subset.not_found if subset else []:
                self.pending.failures.append(RestoreFailure(username=name, reason="not in the snapshot"))
            self.checkpoint()  # before the first write: a rerun then knows what it made itself
        if cp.phase == "attributes":
            self._attributes()
            cp.phase = "groups"
            if self._stop():
                return self._incomplete()
        if cp.phase == "groups" and not self._groups():
            return self._incomplete()
        if cp.phase == "users" and not self._users():
            return self._incomplete()
        if cp.phase == "removals":
            self._removals()
            cp.phase = "verifying"
            if self._stop():
                return self._incomplete()
        if cp.phase == "verifying":
            self._verify()
        return finish(self.ctx, self.cp, self.gw, self.store, self.ckpt_key, self.checkpoint)

    def _attributes(self) -> None:
        # Recomputed against the target now: attributes added by an interrupted run are there.
        plan = custom_attribute_plan(self.ctx.source_pool, self.gw.describe_pool(self.target))
        if plan.conflicts:  # the target changed since the preflight; nothing written to it yet
            raise RestoreRefusedError(
                f"restore refused: custom attributes conflict: {'; '.join(plan.conflicts)}"
            )
        if not plan.to_add:
            return
        try:
            self.gw.add_custom_attributes(self.target, plan.to_add)
        except UsageError:
            # A lost answer retried: "already exists". Done when the target now has them all.
            if custom_attribute_plan(self.ctx.source_pool, self.gw.describe_pool(self.target)).to_add:
                raise
        self.cp.counts.custom_attributes_added += len(plan.to_add)

    def _groups(self) -> bool:
        # The deadline is checked after each unit of work, so that every invocation progresses.
        for position, group in enumerate(self.ctx.groups()):
            if position < self.cp.group_position:
                continue
            self._group(group)
            self.cp.group_position = position + 1
            if self._stop():
                return False
        self.cp.phase = "users"
        return True

    def _group(self, group: GroupRecord) -> None:
        c = self.cp.counts
        try:
            decision = decide_group(group, self.gw.get_group(self.target, group.name), self.options.policy)
            if decision == "create":
                self._create_group(group)
                c.groups_created += 1
            elif decision == "update":
                self.gw.update_group(self.target, group)
                c.groups_updated += 1
            elif decision == "unchanged":
                c.groups_unchanged += 1
            elif decision == "kept":
                c.groups_kept += 1
            else:
                c.groups_failed += 1
                self.pending.failures.append(
                    RestoreFailure(
                        group=group.name,
                        reason="exists in the target with another description, precedence or role "
                        "(conflict policy fail)",
                    )
                )
        except BackupError as exc:
            if not per_item(exc):
                raise
            c.groups_failed += 1
            self.pending.failures.append(RestoreFailure(group=group.name, reason=why(exc)))

    def _create_group(self, group: GroupRecord) -> None:
        try:
            self.gw.create_group(self.target, group)
        except GroupExistsError:
            # The answer of an earlier attempt was lost: done if what is there is what was asked.
            there = self.gw.get_group(self.target, group.name)
            if there is None or not same_group(there, group):
                raise

    def _target(self) -> TargetIndex:
        """The target's index for the users phase.

        Read through the API, except when the target held no user when this restore first read
        it: every user in it since is one this restore made before its checkpoint (all before
        `user_position`, never planned again), one of a chunk a crash cut short, or someone
        else's. The last two are found by AdminCreateUser's UsernameExists and decided there
        (`_exists`), as a full read would have. So a later invocation of a restore into a new
        pool does not read the users it made itself again (at 250,000 users, ~8,000 UserList
        calls an invocation)."""
        cp = self.cp
        if cp.target_users_at_start == 0:
            return TargetIndex.read_groups(self.gw, self.target, self.ctx.scheme)
        index = TargetIndex.read(self.gw, self.target, self.ctx.scheme)
        if cp.target_users_at_start is None and cp.user_position == 0:
            # Users a crash left before the first checkpoint count too: then it is read each time
            cp.target_users_at_start = index.user_count()
        return index

    def _users(self) -> bool:
        index = self._target()
        try:
            users = islice(self.ctx.users(), self.cp.user_position, None)
            parallelism = self.options.parallelism
            with (
                ThreadPoolExecutor(parallelism, thread_name_prefix="restore-create") as creators,
                ThreadPoolExecutor(parallelism, thread_name_prefix="restore-update") as updaters,
            ):
                # A fresh run owns nothing it finds; a resumed one owns what it made before.
                ours_since = self.cp.started_at if self.resumed else None
                for plans in plan_users(self.ctx, index, users, ours_since):
                    for start in range(0, len(plans), self.options.chunk_size):
                        chunk = plans[start : start + self.options.chunk_size]
                        self._chunk(chunk, creators, updaters)
                        self.cp.user_position += len(chunk)
                        if self._stop():
                            return False
        finally:
            index.close()
        self.cp.phase = "removals" if self.options.mirror else "verifying"
        return True

    def _chunk(
        self, chunk: list[UserPlan], creators: ThreadPoolExecutor, updaters: ThreadPoolExecutor
    ) -> None:
        creates: list[Future[UserPlan]] = []
        updates: list[Future[UserPlan]] = []
        for plan in chunk:
            if plan.create:
                creates.append(creators.submit(self._create, plan))
            elif plan.writes() or plan.links or plan.links_missing:
                updates.append(updaters.submit(self._follow_up, plan))
            else:
                self._record(plan)
        finished = False
        try:
            for done in as_completed(creates):
                plan = done.result()
                if plan.outcome != "failed":
                    updates.append(updaters.submit(self._follow_up, plan))
                else:
                    self._record(plan)
            for done in as_completed(updates):
                self._record(done.result())
            finished = True
        finally:
            if not finished:  # a failure stops the run: queued work must not go on writing
                for future in (*creates, *updates):
                    future.cancel()

    def _record(self, plan: UserPlan) -> None:
        """Fold one user's result into the counts and the outcomes (main thread only)."""
        c = self.cp.counts
        c.users_considered += 1
        setattr(c, plan.outcome, getattr(c, plan.outcome) + 1)
        c.resumed += int(plan.resumed)
        c.memberships_skipped += plan.memberships_skipped
        p = self.pending
        user = plan.user
        if plan.failure is not None:
            p.failures.append(RestoreFailure(username=user.username, reason=plan.failure))
        p.failures.extend(plan.failures)
        if plan.skipped:
            p.skipped.append(UserNote(username=user.username, reason=plan.skipped))
        if plan.admin:
            p.admin_action.append(UserNote(username=user.username, reason="; ".join(plan.admin)))
        made = plan.outcome == "created" or plan.outcome == "overwritten"
        new_sub = plan.existing.sub if plan.existing is not None else None
        if made and new_sub and user.sub:
            p.sub_map[user.sub] = new_sub
        if made and plan.target_username and plan.target_username != user.username:
            p.username_map[user.username] = plan.target_username

    # ------------------------------------------------------------------ creation (UserCreation)
    def _create(self, plan: UserPlan) -> UserPlan:
        assert plan.login is not None
        attributes = {k: v for k, v in plan.user.attributes.items() if k not in ("sub", "identities")}
        attributes = {k: v for k, v in attributes.items() if not k.startswith("cognito:")}
        try:
            if plan.invite:
                made = self.gw.invite_user(self.target, plan.login, attributes, list(plan.invite))
                self._count("invitations_sent")
            else:
                made = self.gw.create_user(self.target, plan.login, attributes)
        except UserExistsError as exc:
            return self._exists(plan, exc)
        except BackupError as exc:
            if not per_item(exc):
                raise
            plan.outcome, plan.failure = "failed", why(exc)
            return plan
        plan.existing, plan.target_username = made, made.username
        self._password(plan, made.status)
        return plan

    def _exists(self, plan: UserPlan, exc: UserExistsError) -> UserPlan:
        """UsernameExists: a lost answer of our own call (success), or someone else's user."""
        assert plan.login is not None
        there = self.gw.get_user(self.target, plan.login)
        if there is None:  # e.g. an alias (email, phone) held by another user
            plan.outcome, plan.failure = "failed", f"cannot be created: {why(exc)}"
            return plan
        if is_ours(there, self.cp.started_at) and is_equal(plan.user, there):
            # Made since the restore started, and what was asked for: the lost answer of our own
            # call (or of a run a crash cut short). Created, and every follow-up is still due
            # (all idempotent: disable, memberships, links, the password while it is needed).
            # Anything else is decided as the plan decides a user it finds (someone else's user
            # made meanwhile is a conflict for the policy, as a full read would have found it).
            plan.existing, plan.target_username = there, there.username
            plan.resumed = self.resumed
            self._password(plan, there.status)
            return plan
        groups = set(self.gw.groups_for_user(self.target, there.username))
        return decide_user(self.ctx, plan.user, plan.groups, there, groups, self.cp.started_at)

    def _password(self, plan: UserPlan, status: str) -> None:
        if not plan.password or status != "FORCE_CHANGE_PASSWORD":
            plan.password = False
            return
        assert plan.target_username is not None
        try:
            self.gw.set_password(
                self.target,
                plan.target_username,
                random_password(self.ctx.min_password_length),
                permanent=True,
            )
            self._count("passwords_set")
        except BackupError as exc:
            if not per_item(exc):
                raise
            plan.failure = f"its password could not be set (left FORCE_CHANGE_PASSWORD): {why(exc)}"
        plan.password = False

    def _count(self, name: str, n: int = 1) -> None:
        # Worker threads count through here: CPython's GIL does not make += atomic across calls.
        with _COUNT_LOCK:
            setattr(self.cp.counts, name, getattr(self.cp.counts, name) + n)

    # ------------------------------------------------------------------ follow-ups (UserUpdate)
    def _follow_up(self, plan: UserPlan) -> UserPlan:
        name = plan.target_username
        if name is None:
            return plan
        if plan.password and plan.existing is not None:
            self._password(plan, plan.existing.status)
        try:
            if plan.set_attributes:
                self.gw.update_attributes(self.target, name, plan.set_attributes)
            if plan.delete_attributes:
                self.gw.delete_attributes(self.target, name, plan.delete_attributes)
            if plan.set_attributes or plan.delete_attributes:
                self._count("attributes_updated")
            if plan.enabled is not None:
                self.gw.set_enabled(self.target, name, plan.enabled)
                self._count("disabled" if not plan.enabled else "enabled")
        except BackupError as exc:
            if not per_item(exc):
                raise
            plan.failure = why(exc)
            return plan
        for group in plan.add:
            self._membership(plan, name, group, add=True)
        for group in plan.remove:
            self._membership(plan, name, group, add=False)
        self._link(plan, name)
        return plan

    def _membership(self, plan: UserPlan, name: str, group: str, *, add: bool) -> None:
        try:
            if add:
                self.gw.add_to_group(self.target, name, group)
                self._count("memberships_added")
            else:
                self.gw.remove_from_group(self.target, name, group)
                self._count("memberships_removed")
        except BackupError as exc:
            if not per_item(exc):
                raise
            if plan.federated and isinstance(exc, UserNotFoundError):
                plan.memberships_skipped += 1  # a federated user not back yet: its next sign-in
                return
            self._count("memberships_failed")
            plan.failures.append(
                RestoreFailure(
                    username=plan.user.username,
                    group=group,
                    reason=f"membership not {'added' if add else 'removed'}: {why(exc)}",
                )
            )

    def _link(self, plan: UserPlan, name: str) -> None:
        for identity in plan.links:
            try:
                self.gw.link_provider(
                    self.target, name, identity.provider, "Cognito_Subject", identity.user_id
                )
                self._count("links_created")
            except (BackupError, NotImplementedError) as exc:
                # NotImplementedError: what moto's in-process backend raises for this operation.
                if isinstance(exc, BackupError) and not per_item(exc):
                    raise
                self._count("links_not_restored")
                plan.admin.append(
                    f"not re-linked to {identity.provider} (user id {identity.user_id}): "
                    f"AdminLinkProviderForUser failed ({type(exc).__name__}); link it again"
                )
        self._count("links_not_restored", plan.links_missing)

    # ------------------------------------------------------------------ mirror, verification
    def _removals(self) -> None:
        index = TargetIndex.read(self.gw, self.target, self.ctx.scheme)
        try:
            native, federated, groups = removals(self.ctx, index)
        finally:
            index.close()
        c = self.cp.counts
        c.federated_kept = len(federated)
        for user in native:
            self.gw.delete_user(self.target, user.username)
            c.users_deleted += 1
        for group in groups:
            self.gw.delete_group(self.target, group)
            c.groups_deleted += 1

    def _verify(self) -> None:
        if not self.options.verify:
            self.cp.verified = False
            return
        differences, names = verify(self.gw, self.ctx, self.cp.started_at)
        self.cp.counts.differences = differences
        self.cp.differences = names
        self.cp.verified = differences == 0


_COUNT_LOCK = threading.Lock()
