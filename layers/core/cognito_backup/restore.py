"""Restore: rebuild a target user pool from a snapshot, refused when harmful, paced, resumable.

`run_restore` first checks, reading only, that the restore can do no harm (validation
verdict, target pool, creation-only settings, custom attributes) and raises
RestoreRefusedError otherwise. A dry run stops there and returns the plan. A real run then
works in phases, each resumable from a checkpoint in S3:

    attributes  add the custom attributes the target lacks (AddCustomAttributes, 25 per call)
    groups      create (or, per the conflict policy, update) the snapshot's groups
    users       in chunks: AdminCreateUser (+ AdminSetUserPassword) on one thread pool, and
                disable / memberships / provider links / overwrites on another, so that the
                UserCreation and UserUpdate quota budgets are spent at the same time
    finishing   write the report beside the snapshot, then drop the checkpoint

The checkpoint is written before the first write to the target. A run that stops at its
deadline saves it and returns status "incomplete"; a run that crashes is redone from the
last checkpoint: a user that then already exists, was created after the restore started and
holds the snapshot's attributes was created by this restore, and is finished rather than
treated as a conflict. Nothing says "complete" before the last write is done.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import Any

from .chain import Link, PointInTimeView, open_view, resolve_chain
from .cognito import RETRYABLE_CODES, CognitoGateway
from .errors import (
    AccessDeniedError,
    BackupError,
    CognitoError,
    PoolNotFoundError,
    RestoreRefusedError,
    StorageError,
    UsageError,
    UserExistsError,
    UserNotFoundError,
)
from .models import GroupRecord, PoolConfigRecord, UserRecord, utcnow
from .observability import logger
from .pacing import Deadline
from .restore_models import (
    RestoreCheckpoint,
    RestoreCounts,
    RestoreFailure,
    RestoreOptions,
    RestoreOutcomes,
    RestorePlan,
    RestoreReport,
    RestoreStatus,
    UserNote,
)
from .restore_rules import (
    FEDERATED_REASON,
    UNCONFIRMED_REASON,
    AttributePlan,
    PasswordPlan,
    UsernameScheme,
    attribute_changes,
    custom_attribute_plan,
    identities,
    mutability,
    not_restorable,
    password_min_length,
    password_plan,
    random_password,
    same_group,
    username_setting_differences,
    writable_attributes,
)
from .store import RESTORE_REPORT_PREFIX, SnapshotStore, checkpoint_key, manifest_dir, snapshot_id_for

__all__ = [
    "RestoreOptions",
    "RestoreReport",
    "run_restore",
]

# A user found in the target during a resumed run is ours if created after the restore
# started (less this much, for clock differences and second-rounded dates).
CLOCK_SKEW = timedelta(seconds=5)

ProgressFn = Callable[[RestoreCounts], None]


def _refuse(reason: str) -> RestoreRefusedError:
    return RestoreRefusedError(f"restore refused: {reason}. Nothing was written.")


def _per_item(exc: BackupError) -> bool:
    """Whether an error concerns one user or group (reported) or the whole run (raised).

    Throttling that outlasted every retry, lost connections, a vanished pool, denied access
    and S3 trouble stop the run; it is resumed from its checkpoint, never reported done.
    """
    if isinstance(exc, AccessDeniedError | PoolNotFoundError | StorageError):
        return False
    return not (
        isinstance(exc, CognitoError) and (exc.code in RETRYABLE_CODES or exc.code == "ConnectionError")
    )


def snapshot_prefix(manifest_key: str, pool_id: str) -> str:
    """The bucket prefix of a snapshot: everything before `/<pool-id>/` in its manifest key."""
    parts = manifest_key.split("/")
    # <prefix...>/<pool>/<kind>/<YYYY>/<MM>/<DD>/<snapshot-id>/manifest.json
    if len(parts) >= 7 and parts[-7] == pool_id:
        return "/".join(parts[:-7])
    raise UsageError(f"not a manifest key of pool {pool_id} in the snapshot layout: {manifest_key}")


# --------------------------------------------------------------------------- preflight


@dataclass
class Subset:
    usernames: set[str]  # the snapshot's usernames of the users to restore
    groups: set[str]  # the groups asked for, and every group those users are members of
    not_found: list[str]  # requested names that match no user of the snapshot


@dataclass
class RestoreContext:
    """What the preflight found; everything the phases need to know."""

    manifest_key: str
    chain: list[Link]
    view: PointInTimeView
    source_pool: dict[str, Any]
    target_pool: dict[str, Any]
    target_pool_id: str
    options: RestoreOptions
    scheme: UsernameScheme
    attributes: AttributePlan
    mutable: dict[str, bool]
    providers: frozenset[str]
    min_password_length: int
    _subset: Subset | None = field(default=None, repr=False)

    @property
    def snapshot_id(self) -> str:
        return self.chain[-1].manifest.snapshot_id

    @property
    def source_pool_id(self) -> str:
        return self.chain[-1].manifest.user_pool_id

    @property
    def prefix(self) -> str:
        return snapshot_prefix(self.manifest_key, self.source_pool_id)

    @property
    def named_groups(self) -> frozenset[str]:
        """The groups asked for by name (`groups`): restored with every member they had."""
        return frozenset(self.options.groups or ())

    def subset(self) -> Subset | None:
        """The users to restore: those named, and every member of the groups named."""
        requested, named = self.options.usernames, self.named_groups
        if requested is None and not named:
            return None
        if self._subset is None:
            wanted = {self.scheme.fold(n): n for n in requested or ()}
            found: set[str] = set()
            usernames: set[str] = set()
            if named:
                usernames = {m.username for m in self.view.memberships() if m.group in named}
            if wanted:
                for user in self.view.users():
                    hit = self.scheme.keys(user) & wanted.keys()
                    if hit:
                        usernames.add(user.username)
                        found |= hit
            groups = set(named) | {m.group for m in self.view.memberships() if m.username in usernames}
            self._subset = Subset(usernames, groups, [n for k, n in wanted.items() if k not in found])
        return self._subset

    def users(self) -> Iterator[UserRecord]:
        subset = self.subset()
        for user in self.view.users():
            if subset is None or user.username in subset.usernames:
                yield user

    def groups(self) -> Iterator[GroupRecord]:
        subset = self.subset()
        for group in self.view.groups():
            if subset is None or group.name in subset.groups:
                yield group

    def windows(self, users: Iterator[UserRecord]) -> Iterator[tuple[list[UserRecord], dict[str, list[str]]]]:
        """Users in windows, each with its users' memberships: memory stays bounded by the
        window, at the cost of one read of the memberships per window."""
        while True:
            window = list(islice(users, self.options.window_size))
            if not window:
                return
            names = {u.username for u in window}
            index: dict[str, list[str]] = {}
            for m in self.view.memberships():
                if m.username in names:
                    index.setdefault(m.username, []).append(m.group)
            yield window, index


def preflight(
    gateway: CognitoGateway,
    store: SnapshotStore,
    manifest_key: str,
    target_pool_id: str,
    options: RestoreOptions,
) -> RestoreContext:
    """Every check that can refuse the restore; reads only (a dry run records no verdict)."""
    if not target_pool_id:
        raise UsageError("a target user pool id is required")
    store.check_bucket(manifest_key)
    chain = resolve_chain(store, manifest_key)
    source_id = chain[-1].manifest.user_pool_id
    snapshot_prefix(manifest_key, source_id)
    if target_pool_id == source_id and not options.allow_same_pool:
        raise _refuse(
            f"the target is the snapshot's own pool {source_id}; restoring into it needs allow_same_pool "
            "(--allow-same-pool)"
        )
    try:
        target_pool = gateway.describe_pool(target_pool_id)
    except PoolNotFoundError as exc:
        raise PoolNotFoundError(
            f"target user pool {target_pool_id} does not exist: create it first, with the same "
            "username settings as the snapshot's pool. Nothing was written."
        ) from exc
    # The target checks come first, so that a refused restore does not even record a verdict.
    view, config = _readable_view(store, manifest_key)
    if config is not None:
        attributes = _check_target(config.user_pool, target_pool, target_pool_id)
    snapshot_id = chain[-1].manifest.snapshot_id
    groups_checked = view is not None and _check_groups(view, options, snapshot_id, tolerant=True)
    _check_verdicts(store, chain, options)
    if view is None or config is None:  # unreadable, yet valid or forced: read again, let it raise
        view = open_view(store, manifest_key)
        config = view.config()
        if config is None:
            raise _refuse(f"snapshot {snapshot_id} holds no pool configuration")
        attributes = _check_target(config.user_pool, target_pool, target_pool_id)
    if not groups_checked:
        _check_groups(view, options, snapshot_id)
    source_pool = config.user_pool
    return RestoreContext(
        manifest_key=manifest_key,
        chain=chain,
        view=view,
        source_pool=source_pool,
        target_pool=target_pool,
        target_pool_id=target_pool_id,
        options=options,
        scheme=UsernameScheme.of(target_pool),
        attributes=attributes,
        mutable={**mutability(source_pool), **mutability(target_pool)},
        providers=frozenset(gateway.identity_provider_names(target_pool_id)),
        min_password_length=password_min_length(target_pool),
    )


def _readable_view(
    store: SnapshotStore, manifest_key: str
) -> tuple[PointInTimeView | None, PoolConfigRecord | None]:
    """The snapshot's view and pool configuration; None when they cannot be read (the
    validator, which runs next when there is no verdict yet, then says why)."""
    try:
        view = open_view(store, manifest_key)
        return view, view.config()
    except (BackupError, OSError, EOFError, ValueError, zlib.error):
        return None, None


def _check_target(
    source_pool: dict[str, Any], target_pool: dict[str, Any], target_pool_id: str
) -> AttributePlan:
    differences = username_setting_differences(source_pool, target_pool)
    if differences:
        raise _refuse(
            f"target pool {target_pool_id} differs in creation-only settings that change what a username "
            f"means ({'; '.join(differences)}); create the target with the snapshot's settings"
        )
    attributes = custom_attribute_plan(source_pool, target_pool)
    if attributes.conflicts:
        raise _refuse(f"custom attributes conflict: {'; '.join(attributes.conflicts)}")
    return attributes


def _check_groups(
    view: PointInTimeView, options: RestoreOptions, snapshot_id: str, *, tolerant: bool = False
) -> bool:
    """Refuses a restore of groups the snapshot does not hold. True once checked; False
    (tolerant only) when the snapshot's groups cannot be read: the validator then says why."""
    if not options.groups:
        return True
    wanted = set(options.groups)
    try:
        found = {group.name for group in view.groups() if group.name in wanted}
    except (BackupError, OSError, EOFError, ValueError, zlib.error):
        if tolerant:
            return False
        raise
    missing = [name for name in options.groups if name not in found]
    if missing:
        raise _refuse(
            f"no group {', '.join(repr(n) for n in missing)} in snapshot {snapshot_id} (group names are "
            "case-sensitive; `cognito-backup diff --details` from a snapshot before the loss to one after "
            "names the groups removed)"
        )
    return True


def _check_verdicts(store: SnapshotStore, chain: list[Link], options: RestoreOptions) -> None:
    from .validate import validate_snapshot, verdict_of

    verdicts = {link.key: verdict_of(store, link.key) for link in chain}
    failed = [link.manifest.snapshot_id for link in chain if verdicts[link.key] == "failed"]
    if failed and not options.force:
        raise _refuse(
            f"snapshot {', '.join(failed)} failed validation (see its validation-report.json); "
            "force restores it anyway"
        )
    last = chain[-1]
    if verdicts[last.key] is None:
        report = validate_snapshot(store, last.key, record=not options.dry_run)
        if not report.valid and not options.force:
            first = report.failures[0].problem if report.failures else "no detail"
            raise _refuse(
                f"snapshot {last.manifest.snapshot_id} had never been validated and is invalid "
                f"({len(report.failures)} problem(s); first: {first})"
            )


# --------------------------------------------------------------------------- one user's work


@dataclass
class UserWork:
    """One user's progress through the two thread pools; only its own thread writes it."""

    user: UserRecord
    groups: list[str]
    outcome: str = "failed"  # created | existing_skipped | overwritten | conflicts | failed
    resumed: bool = False
    target_username: str | None = None
    new_sub: str | None = None
    status: str = "FORCE_CHANGE_PASSWORD"  # in the target, once created
    existing: UserRecord | None = None
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[RestoreFailure] = field(default_factory=list)
    admin: list[str] = field(default_factory=list)
    skipped: str | None = None
    # For a user otherwise left alone (existing, federated): the memberships of the groups
    # asked for (`groups`) that the target lacks, to be added all the same.
    named: list[str] = field(default_factory=list)

    def fail(self, reason: str, group: str | None = None) -> None:
        self.failures.append(RestoreFailure(username=self.user.username, group=group, reason=reason))

    @property
    def follow_up(self) -> bool:
        return self.outcome in ("created", "overwritten")


def _why(exc: BackupError) -> str:
    return str(exc) or type(exc).__name__


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
        # Target usernames already in each group asked for (that exists in the target); read
        # when the users phase starts, so that no membership is added, or counted, twice.
        self.present: dict[str, set[str]] = {}
        self._last_checkpoint = time.monotonic()
        raw = store.get_json(self.ckpt_key)
        self.resumed = raw is not None
        if raw is not None:
            self.cp = RestoreCheckpoint.model_validate(raw)
            if not self.cp.options.same_work(self.options):
                raise UsageError(
                    f"an unfinished restore of {ctx.snapshot_id} into {self.target} with other options "
                    f"(usernames, groups, conflict policy or password strategy) is checkpointed at "
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
        if time.monotonic() - self._last_checkpoint >= self.options.checkpoint_seconds:
            self.checkpoint()
        return False

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
        return self._finish()

    def _attributes(self) -> None:
        # Recomputed against the target now: attributes added by an interrupted run are there.
        plan = custom_attribute_plan(self.ctx.source_pool, self.gw.describe_pool(self.target))
        if plan.conflicts:  # the target changed since the preflight; nothing written to it yet
            raise RestoreRefusedError(
                f"restore refused: custom attributes conflict: {'; '.join(plan.conflicts)}"
            )
        if plan.to_add:
            self.gw.add_custom_attributes(self.target, plan.to_add)
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
            existing = self.gw.get_group(self.target, group.name)
            if existing is None:
                self.gw.create_group(self.target, group)
                c.groups_created += 1
            elif same_group(existing, group):
                c.groups_unchanged += 1
            elif self.options.conflict_policy == "overwrite":
                self.gw.update_group(self.target, group)
                c.groups_updated += 1
            elif self.options.conflict_policy == "skip":
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
            if not _per_item(exc):
                raise
            c.groups_failed += 1
            self.pending.failures.append(RestoreFailure(group=group.name, reason=_why(exc)))

    def _users(self) -> bool:
        self._read_present()
        users = islice(self.ctx.users(), self.cp.user_position, None)
        parallelism = self.options.parallelism
        with (
            ThreadPoolExecutor(parallelism, thread_name_prefix="restore-create") as creators,
            ThreadPoolExecutor(parallelism, thread_name_prefix="restore-update") as updaters,
        ):
            for window, memberships in self.ctx.windows(users):
                for start in range(0, len(window), self.options.chunk_size):
                    chunk = window[start : start + self.options.chunk_size]
                    self._chunk(chunk, memberships, creators, updaters)
                    self.cp.user_position += len(chunk)
                    if self._stop():
                        return False
        self.cp.phase = "finishing"
        return True

    def _read_present(self) -> None:
        self.present = {}
        for name in sorted(self.ctx.named_groups):
            if self.gw.get_group(self.target, name) is not None:  # else its creation failed, reported
                self.present[name] = set(self.gw.iter_members(self.target, name))

    def _ask_for(self, work: UserWork, target_username: str) -> None:
        """For a user otherwise left alone: its memberships of the groups asked for, to be
        added where the target lacks them; its other memberships are skipped."""
        named = [g for g in work.groups if g in self.ctx.named_groups]
        work.counts["memberships_skipped"] += len(work.groups) - len(named)
        work.target_username = target_username
        work.named = sorted(g for g in named if target_username not in self.present.get(g, ()))

    def _chunk(
        self,
        chunk: list[UserRecord],
        memberships: dict[str, list[str]],
        creators: ThreadPoolExecutor,
        updaters: ThreadPoolExecutor,
    ) -> None:
        creates: list[Future[UserWork]] = []
        updates: list[Future[UserWork]] = []
        for user in chunk:
            groups = memberships.get(user.username, [])
            reason = not_restorable(user)
            if reason is None:
                creates.append(creators.submit(self._create, user, groups))
                continue
            work = UserWork(user, groups, outcome="skipped_" + reason)
            work.skipped = FEDERATED_REASON if reason == "federated" else UNCONFIRMED_REASON
            if reason == "federated":
                # Back in the target if it has signed in since: its username is the same there.
                self._ask_for(work, user.username)
            else:
                work.counts["memberships_skipped"] += len(groups)
            if work.named:
                updates.append(updaters.submit(self._add_named, work))
            else:
                self._record(work)
        finished = False
        try:
            for done in as_completed(creates):
                work = done.result()
                if work.follow_up:
                    updates.append(updaters.submit(self._follow_up, work))
                elif work.named:
                    updates.append(updaters.submit(self._add_named, work))
                else:
                    self._record(work)
            for done in as_completed(updates):
                self._record(done.result())
            finished = True
        finally:
            if not finished:  # a failure stops the run: queued work must not go on writing
                for future in (*creates, *updates):
                    future.cancel()

    def _record(self, work: UserWork) -> None:
        """Fold one user's result into the counts and the outcomes (main thread only)."""
        c = self.cp.counts
        c.users_considered += 1
        work.counts[work.outcome] += 1
        if work.resumed:
            work.counts["resumed"] += 1
        for name, n in work.counts.items():
            setattr(c, name, getattr(c, name) + n)
        p = self.pending
        p.failures.extend(work.failures)
        user = work.user
        if work.skipped:
            p.skipped.append(UserNote(username=user.username, reason=work.skipped))
        if work.admin:
            p.admin_action.append(UserNote(username=user.username, reason="; ".join(work.admin)))
        if work.follow_up and work.new_sub and user.sub:
            p.sub_map[user.sub] = work.new_sub
        if work.follow_up and work.target_username and work.target_username != user.username:
            p.username_map[user.username] = work.target_username

    # ------------------------------------------------------------------ creation (UserCreation)
    def _create(self, user: UserRecord, groups: list[str]) -> UserWork:
        work = UserWork(user, groups)
        login = self.ctx.scheme.login(user)
        if login is None:
            work.fail("no email or phone number to create the user under (the pool names users by them)")
            return work
        attributes = writable_attributes(user)
        plan = password_plan(user, self.options.password_strategy)
        try:
            if plan.invite_mediums:
                made = self.gw.invite_user(self.target, login, attributes, list(plan.invite_mediums))
                work.counts["invitations_sent"] += 1
            else:
                made = self.gw.create_user(self.target, login, attributes)
            work.outcome = "created"
            work.target_username, work.new_sub, work.status = made.username, made.sub, made.status
        except UserExistsError as exc:
            self._existing(work, login, attributes, exc)
        except BackupError as exc:
            if not _per_item(exc):
                raise
            work.fail(_why(exc))
            return work
        if work.outcome == "created":
            self._password(work, plan)
        return work

    def _existing(self, work: UserWork, login: str, attributes: dict[str, str], exc: UserExistsError) -> None:
        existing = self.gw.get_user(self.target, login)
        if existing is None:  # e.g. an alias (email, phone) held by another user
            work.fail(f"cannot be created: {_why(exc)}")
            return
        if self.resumed and self._made_by_this_restore(existing, attributes):
            work.outcome, work.resumed = "created", True
            work.target_username, work.new_sub, work.status = existing.username, existing.sub, existing.status
            work.existing = existing
            return
        policy = self.options.conflict_policy
        if policy == "overwrite":
            work.outcome = "overwritten"
            work.target_username, work.new_sub, work.existing = existing.username, existing.sub, existing
            return
        self._ask_for(work, existing.username)
        if policy == "skip":
            work.outcome = "existing_skipped"
            work.skipped = "already exists in the target (conflict policy skip)"
            if work.named:
                work.skipped += ": left as it is, but for its membership of the groups asked for"
        else:
            work.outcome = "conflicts"
            work.fail("already exists in the target (conflict policy fail)")

    def _made_by_this_restore(self, existing: UserRecord, attributes: dict[str, str]) -> bool:
        if existing.created is None or existing.created < self.cp.started_at - CLOCK_SKEW:
            return False
        return all(existing.attributes.get(k) == v for k, v in attributes.items())

    def _password(self, work: UserWork, plan: PasswordPlan) -> None:
        work.admin.extend(plan.admin_reasons)
        if not plan.set_random_password or work.status != "FORCE_CHANGE_PASSWORD":
            return
        assert work.target_username is not None
        try:
            password = random_password(self.ctx.min_password_length)
            self.gw.set_password(self.target, work.target_username, password, permanent=True)
            work.counts["passwords_set"] += 1
            work.status = "CONFIRMED"
        except BackupError as exc:
            if not _per_item(exc):
                raise
            work.fail(f"created, but its password could not be set (left FORCE_CHANGE_PASSWORD): {_why(exc)}")

    # ------------------------------------------------------------------ follow-up (UserUpdate)
    def _follow_up(self, work: UserWork) -> UserWork:
        assert work.target_username is not None
        name = work.target_username
        try:
            if work.outcome == "overwritten":
                self._overwrite(work, name)
            elif not work.user.enabled and (work.existing is None or work.existing.enabled):
                self.gw.set_enabled(self.target, name, False)
                work.counts["disabled"] += 1
            current = (
                set(self.gw.groups_for_user(self.target, name)) if work.outcome == "overwritten" else set()
            )
        except BackupError as exc:
            if not _per_item(exc):
                raise
            work.fail(_why(exc))
            return work
        for group in sorted(set(work.groups) - current):
            self._membership(work, name, group, add=True)
        for group in sorted(current - set(work.groups)):
            self._membership(work, name, group, add=False)
        self._link(work, name)
        return work

    def _overwrite(self, work: UserWork, name: str) -> None:
        existing = work.existing
        assert existing is not None
        changes, removals, immutable = attribute_changes(
            writable_attributes(work.user),
            writable_attributes(existing),
            self.ctx.mutable,
            keep=self.ctx.scheme.username_attributes,
        )
        if changes:
            self.gw.update_attributes(self.target, name, changes)
        if removals:
            self.gw.delete_attributes(self.target, name, removals)
        if changes or removals:
            work.counts["attributes_updated"] += 1
        if immutable:
            work.admin.append(f"immutable attributes differ and cannot be changed: {', '.join(immutable)}")
        if existing.enabled != work.user.enabled:
            self.gw.set_enabled(self.target, name, work.user.enabled)
            if not work.user.enabled:
                work.counts["disabled"] += 1

    def _add_named(self, work: UserWork) -> UserWork:
        """The memberships of the groups asked for, of a user otherwise left alone."""
        assert work.target_username is not None
        federated = work.outcome == "skipped_federated"
        for group in work.named:
            self._membership(work, work.target_username, group, add=True, absent_ok=federated)
        return work

    def _membership(
        self, work: UserWork, name: str, group: str, *, add: bool, absent_ok: bool = False
    ) -> None:
        try:
            if add:
                self.gw.add_to_group(self.target, name, group)
                work.counts["memberships_added"] += 1
            else:
                self.gw.remove_from_group(self.target, name, group)
                work.counts["memberships_removed"] += 1
        except BackupError as exc:
            if not _per_item(exc):
                raise
            if absent_ok and isinstance(exc, UserNotFoundError) and group in self.present:
                # A federated user not back yet: the membership waits for its next sign-in.
                work.counts["memberships_skipped"] += 1
                return
            work.counts["memberships_failed"] += 1
            work.fail(f"membership not {'added' if add else 'removed'}: {_why(exc)}", group=group)

    def _link(self, work: UserWork, name: str) -> None:
        already = set(identities(work.existing)) if work.existing is not None else set()
        for identity in identities(work.user):
            if identity in already:
                continue
            if identity.provider not in self.ctx.providers:
                work.counts["links_not_restored"] += 1
                work.admin.append(
                    f"not re-linked to {identity.provider} (user id {identity.user_id}): no such identity "
                    "provider in the target; create it, then AdminLinkProviderForUser"
                )
                continue
            try:
                self.gw.link_provider(
                    self.target, name, identity.provider, "Cognito_Subject", identity.user_id
                )
                work.counts["links_created"] += 1
            except (BackupError, NotImplementedError) as exc:
                # NotImplementedError: what moto's in-process backend raises for this operation.
                if isinstance(exc, BackupError) and not _per_item(exc):
                    raise
                work.counts["links_not_restored"] += 1
                work.admin.append(
                    f"not re-linked to {identity.provider} (user id {identity.user_id}): "
                    f"AdminLinkProviderForUser failed ({type(exc).__name__}); link it again"
                )

    # ------------------------------------------------------------------ endings
    def _report(self, status: RestoreStatus, outcomes: RestoreOutcomes | None) -> RestoreReport:
        outcomes = outcomes or RestoreOutcomes()
        return RestoreReport(
            status=status,
            manifest_key=self.ctx.manifest_key,
            snapshot_id=self.ctx.snapshot_id,
            source_user_pool_id=self.ctx.source_pool_id,
            target_user_pool_id=self.target,
            conflict_policy=self.options.conflict_policy,
            password_strategy=self.options.password_strategy,
            usernames=list(self.options.usernames) if self.options.usernames else None,
            groups=list(self.options.groups) if self.options.groups else None,
            started_at=self.cp.started_at,
            finished_at=utcnow() if status != "incomplete" else None,
            invocations=self.cp.invocations,
            counts=self.cp.counts,
            failures=outcomes.failures,
            skipped=outcomes.skipped,
            admin_action=outcomes.admin_action,
            sub_map=outcomes.sub_map,
            username_map=outcomes.username_map,
            report_key=self.cp.report_key,
            checkpoint_key=self.ckpt_key if status == "incomplete" else None,
            cognito_calls=self.gw.stats.calls,
            cognito_throttled=self.gw.stats.throttled,
        )

    def _incomplete(self) -> RestoreReport:
        return self._report("incomplete", None)

    def _finish(self) -> RestoreReport:
        cp = self.cp
        cp.phase = "finishing"
        if cp.report_key is None:
            stamp = snapshot_id_for(utcnow())
            cp.report_key = (
                f"{manifest_dir(self.ctx.manifest_key)}{RESTORE_REPORT_PREFIX}{self.target}-{stamp}.json"
            )
        self.checkpoint()
        outcomes = RestoreOutcomes()
        for key in cp.outcome_keys:
            outcomes.merge(RestoreOutcomes.model_validate(self.store.get_json(key) or {}))
        report = self._report("failed" if outcomes.failures else "complete", outcomes)
        self.store.put_json(cp.report_key, report)
        self.store.delete(self.ckpt_key)
        for key in cp.outcome_keys:
            self.store.delete(key)
        return report


# --------------------------------------------------------------------------- dry run


class _Planner:
    """The dry run: what a restore would do, from reads only (the target's users listed once)."""

    def __init__(self, gateway: CognitoGateway, ctx: RestoreContext) -> None:
        self.gw = gateway
        self.ctx = ctx
        self.options = ctx.options
        self.policy = ctx.options.conflict_policy
        will: dict[str, Any] = {
            "skip": "be skipped",
            "overwrite": "be overwritten",
            "fail": "fail the restore",
        }
        self.plan = RestorePlan(existing_users_will=will[self.policy])
        self.counts = RestoreCounts()

    def add(self, items: list[Any], item: Any) -> None:
        if len(items) < self.options.plan_limit:
            items.append(item)
        else:
            self.plan.truncated = True

    def run(self) -> RestoreReport:
        ctx, plan = self.ctx, self.plan
        for name in ctx.attributes.names:
            self.add(plan.custom_attributes_to_add, name)
        self._groups()
        taken: set[str] = set()
        for existing in self.gw.iter_users(ctx.target_pool_id):
            taken |= ctx.scheme.keys(existing)
        for window, memberships in ctx.windows(ctx.users()):
            for user in window:
                self.counts.users_considered += 1
                self._user(user, memberships.get(user.username, []), taken)
        subset = ctx.subset()
        plan.users_not_in_snapshot = list(subset.not_found) if subset else []
        return RestoreReport(
            status="complete",
            dry_run=True,
            manifest_key=ctx.manifest_key,
            snapshot_id=ctx.snapshot_id,
            source_user_pool_id=ctx.source_pool_id,
            target_user_pool_id=ctx.target_pool_id,
            conflict_policy=self.policy,
            password_strategy=self.options.password_strategy,
            usernames=list(self.options.usernames) if self.options.usernames else None,
            groups=list(self.options.groups) if self.options.groups else None,
            started_at=utcnow(),
            finished_at=utcnow(),
            counts=self.counts,
            plan=plan,
            cognito_calls=self.gw.stats.calls,
            cognito_throttled=self.gw.stats.throttled,
        )

    def _groups(self) -> None:
        plan = self.plan
        conflicting = {
            "overwrite": plan.groups_to_update,
            "skip": plan.groups_kept,
            "fail": plan.groups_in_conflict,
        }
        target_groups = {g.name: g for g in self.gw.iter_groups(self.ctx.target_pool_id)}
        for group in self.ctx.groups():
            have = target_groups.get(group.name)
            if have is None:
                self.add(plan.groups_to_create, group.name)
            elif same_group(have, group):
                self.add(plan.groups_unchanged, group.name)
            else:
                self.add(conflicting[self.policy], group.name)

    def _user(self, user: UserRecord, groups: list[str], taken: set[str]) -> None:
        plan, ctx = self.plan, self.ctx
        reason = not_restorable(user)
        login = ctx.scheme.login(user)
        named = sum(g in ctx.named_groups for g in groups)  # memberships asked for by group
        if reason is not None or login is None:
            why = {"federated": FEDERATED_REASON, "unconfirmed": UNCONFIRMED_REASON}.get(
                reason or "", "no email or phone number to create the user under"
            )
            self.add(plan.users_not_restorable, UserNote(username=user.username, reason=why))
            if reason == "federated" and ctx.scheme.fold(user.username) in taken:  # back since
                plan.memberships_to_add += named
                plan.memberships_not_restorable += len(groups) - named
            else:
                plan.memberships_not_restorable += len(groups)
            return
        if ctx.scheme.fold(login) in taken:
            plan.users_existing += 1
            self.add(plan.users_existing_names, user.username)
            if self.policy == "overwrite":
                plan.memberships_to_add += len(groups)
            else:  # left alone, but for their memberships of the groups asked for
                plan.memberships_to_add += named
                plan.memberships_not_restorable += len(groups) - named
            return
        plan.users_to_create += 1
        self.add(plan.users_to_create_names, user.username)
        plan.memberships_to_add += len(groups)
        for identity in identities(user):
            if identity.provider in ctx.providers:
                plan.links_to_create += 1
            else:
                note = f"not re-linked to {identity.provider}: no such identity provider in the target"
                self.add(plan.links_not_restorable, UserNote(username=user.username, reason=note))
        reasons = password_plan(user, self.options.password_strategy).admin_reasons
        if reasons:
            self.add(plan.admin_action, UserNote(username=user.username, reason="; ".join(reasons)))


def plan_restore(gateway: CognitoGateway, ctx: RestoreContext) -> RestoreReport:
    """What a restore would do; writes nothing, anywhere."""
    return _Planner(gateway, ctx).run()


# --------------------------------------------------------------------------- entry points


def run_restore(
    gateway: CognitoGateway,
    store: SnapshotStore,
    manifest_key: str,
    target_pool_id: str,
    *,
    options: RestoreOptions | None = None,
    deadline: Deadline | None = None,
    progress: ProgressFn | None = None,
) -> RestoreReport:
    """Restore (or continue restoring) the pool state of a snapshot into a target pool.

    Raises RestoreRefusedError (nothing written) when the restore would do harm. Returns the
    report: "complete", "failed" (finished with failures; written beside the snapshot), or
    "incomplete" (stopped at the deadline; call again with the same arguments to go on).
    """
    options = options or RestoreOptions()
    ctx = preflight(gateway, store, manifest_key, target_pool_id, options)
    if options.dry_run:
        report = plan_restore(gateway, ctx)
    else:
        report = RestoreRun(gateway, store, ctx, deadline or Deadline.never(), progress).run()
    logger.info(
        "restore step finished",
        extra={
            "status": report.status,
            "dry_run": report.dry_run,
            "snapshot_id": report.snapshot_id,
            "source_user_pool_id": report.source_user_pool_id,
            "target_user_pool_id": report.target_user_pool_id,
            "invocation": report.invocations,
            "users_considered": report.counts.users_considered,
            "users_created": report.counts.created,
            "users_failed": report.counts.failed,
            "failures": len(report.failures),
            "memberships_added": report.counts.memberships_added,
            "cognito_calls": report.cognito_calls,
            "throttled": report.cognito_throttled,
        },
    )
    return report
