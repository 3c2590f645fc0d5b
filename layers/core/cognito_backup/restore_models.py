"""The restore's contracts: options, the Lambda event, the checkpoint and the report.

Nothing here knows about boto3. `RestoreReport` is what a restore returns and writes
beside the snapshot (`restore-report-<target>-<UTC timestamp>.json`); `RestoreEvent` is the
restore Lambda's event (README, events/restore.json), refused when it holds an unknown or malformed field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

# 2: per-user sections streamed to report parts (`parts`, `totals`); the lists inline hold the
# first `plan_limit` entries only (`sections_truncated`). Version 1 held them whole.
REPORT_SCHEMA_VERSION = 2
# The report's per-user sections, in the order a reader meets them (restore/report.py).
ReportSection = Literal["failures", "skipped", "admin_action", "sub_map", "username_map"]
REPORT_SECTIONS: tuple[ReportSection, ...] = (
    "failures",
    "skipped",
    "admin_action",
    "sub_map",
    "username_map",
)

NOT_RESTORABLE = (
    "passwords (Cognito exports none: users reset theirs, see password_strategy)",
    "TOTP secrets, passkeys and MFA preferences",
    "remembered devices and refresh tokens",
    "federated (EXTERNAL_PROVIDER) users before their next sign-in",
    "sub (a restored user gets a new one: see sub_map)",
)

ConflictPolicy = Literal["skip", "overwrite", "fail"]
PasswordStrategy = Literal["random-confirmed", "invite"]
RestoreStatus = Literal["complete", "incomplete", "failed"]
RestorePhase = Literal["attributes", "groups", "users", "removals", "verifying", "finishing"]

POOL_ID_PATTERN = r"^[\w-]+_[0-9a-zA-Z]+$"
# Most names a restore event may list in `usernames` or in `groups` (see RestoreEvent).
MAX_EVENT_NAMES = 1000
# A username, group name, e-mail or phone number: Cognito's longest is an attribute value (2,048).
MAX_NAME_LENGTH = 2048


def _clean_names(value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
    """Names without duplicates (first one kept); none at all is None: no subset."""
    if value is None:
        return None
    if not all(value):
        raise ValueError(f"{info.field_name} must not be empty strings")
    return tuple(dict.fromkeys(value)) or None


class RestoreOptions(BaseModel):
    """How to restore. The tuning fields at the end matter only to speed and tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = Field(default=False, description="Plan only: no write to the target or the bucket")
    usernames: tuple[str, ...] | None = Field(
        default=None, description="Only these users (username, or email/phone in an email-as-username pool)"
    )
    groups: tuple[str, ...] | None = Field(
        default=None,
        description="Only these groups, with every member they had in the snapshot; members that "
        "exist in the target get their membership of these groups back whatever the conflict policy",
    )
    conflict_policy: ConflictPolicy = Field(
        default="skip", description="Users that already exist in the target"
    )
    password_strategy: PasswordStrategy = Field(
        default="random-confirmed", description="See docs/restore.md for what each means to users"
    )
    allow_same_pool: bool = Field(default=False, description="Allow the snapshot's own pool as the target")
    force: bool = Field(
        default=False, description="Restore even a snapshot whose validation verdict is failed"
    )
    mirror: bool = Field(
        default=False,
        description="Also remove what the snapshot lacks (native users, groups, memberships) and reset "
        "attributes and enabled flags of existing users to it (implies overwrite)",
    )
    verify: bool = Field(default=True, description="End with the verification pass (read and compare)")
    parallelism: int = Field(default=8, ge=1, le=64, description="Threads per quota budget (create, update)")
    chunk_size: int = Field(default=200, ge=1, description="Users between two deadline checks")
    # ~2 KB per user in a window; 1,000 costs no throughput (docs/benchmarks.md) and keeps
    # a restore's memory flat as pools grow.
    window_size: int = Field(default=1_000, ge=1, description="Users whose memberships are indexed at once")
    checkpoint_seconds: float = Field(default=30.0, ge=0, description="Least time between two checkpoints")
    plan_limit: int = Field(default=1_000, ge=0, description="Names listed per list of a dry-run plan")

    _check_names = field_validator("usernames", "groups")(_clean_names)

    @property
    def policy(self) -> ConflictPolicy:
        """The conflict policy in force: mirror implies overwrite."""
        return "overwrite" if self.mirror else self.conflict_policy

    def same_work(self, other: RestoreOptions) -> bool:
        """Whether a checkpoint taken under `other` may be continued under these options.

        The subset (usernames, groups) decides which users the checkpoint's position counts,
        so it must be the same set of names; their order does not matter.
        """
        keys = ("conflict_policy", "password_strategy", "mirror")
        return (
            all(getattr(self, k) == getattr(other, k) for k in keys)
            and set(self.usernames or ()) == set(other.usernames or ())
            and set(self.groups or ()) == set(other.groups or ())
        )


class RestoreEvent(BaseModel):
    """The restore Lambda's event (README, events/restore.json); the bucket comes from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest_key: str = Field(min_length=1, pattern=r"(^|/)manifest\.json$")
    # Exactly one of: the pool to restore into, or the name of a pool to create from the
    # snapshot's configuration first (rebuild.py; a later step finds the pool it made by name).
    target_user_pool_id: str | None = Field(default=None, pattern=POOL_ID_PATTERN)
    create_target_pool_name: str | None = Field(default=None, min_length=1, max_length=128)
    dry_run: StrictBool = False
    # Bounded: a subset is for a few people or groups (each name costs a scan of the snapshot's
    # memberships and a lookup); a longer list is a whole-pool restore by another name, or a
    # malformed event, and an event of that size nears Lambda's 256 KB limit anyway.
    usernames: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_EVENT_NAMES
    )
    groups: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]] = Field(
        default_factory=list, max_length=MAX_EVENT_NAMES
    )
    conflict_policy: ConflictPolicy = "skip"
    password_strategy: PasswordStrategy = "random-confirmed"  # noqa: S105 - a strategy's name
    force: StrictBool = False
    allow_same_pool: StrictBool = False
    mirror: StrictBool = False
    verify: StrictBool = True
    # Accept manifests that carry no signature at all (made before signing existed); a wrong
    # signature is refused whatever this says.
    allow_unsigned: StrictBool = False

    @model_validator(mode="after")
    def _one_target(self) -> RestoreEvent:
        if (self.target_user_pool_id is None) == (self.create_target_pool_name is None):
            raise ValueError("give exactly one of target_user_pool_id and create_target_pool_name")
        return self

    def options(self) -> RestoreOptions:
        return RestoreOptions(
            dry_run=self.dry_run,
            usernames=tuple(self.usernames) or None,
            groups=tuple(self.groups) or None,
            conflict_policy=self.conflict_policy,
            password_strategy=self.password_strategy,
            force=self.force,
            allow_same_pool=self.allow_same_pool,
            mirror=self.mirror,
            verify=self.verify,
        )


class RestoreCounts(BaseModel):
    """Counts by outcome. Users: every user considered lands in exactly one of
    created / existing_skipped / overwritten / conflicts / skipped_federated /
    skipped_unconfirmed / failed."""

    model_config = ConfigDict(extra="forbid")

    users_considered: int = 0
    created: int = 0
    resumed: int = Field(default=0, description="Of `created`: made by an interrupted run, finished now")
    converged: int = Field(
        default=0, description="Existing users equal to the snapshot whose follow-ups were (re)applied"
    )
    unchanged: int = Field(default=0, description="Existing users already as in the snapshot")
    existing_skipped: int = 0
    overwritten: int = 0
    conflicts: int = Field(default=0, description="Existing users under the `fail` policy")
    skipped_federated: int = 0
    skipped_unconfirmed: int = 0
    failed: int = 0
    disabled: int = 0
    passwords_set: int = 0
    invitations_sent: int = 0
    attributes_updated: int = Field(default=0, description="Users whose attributes `overwrite` changed")
    memberships_added: int = 0
    memberships_removed: int = 0
    memberships_skipped: int = Field(default=0, description="Of users not created or not overwritten")
    memberships_failed: int = 0
    links_created: int = 0
    links_not_restored: int = 0
    groups_created: int = 0
    groups_updated: int = 0
    groups_unchanged: int = 0
    groups_kept: int = Field(default=0, description="Existing, different, left as they are (`skip`)")
    groups_failed: int = 0
    custom_attributes_added: int = 0
    enabled: int = Field(default=0, description="Users enabled again to match the snapshot")
    users_deleted: int = Field(default=0, description="mirror: native users not in the snapshot")
    groups_deleted: int = Field(default=0, description="mirror: groups not in the snapshot")
    federated_kept: int = Field(default=0, description="mirror: federated users not in the snapshot, kept")
    differences: int = Field(default=0, description="What the verification found still different")


class RestoreFailure(BaseModel):
    """Something that should have been restored and was not."""

    username: str | None = None
    group: str | None = None
    reason: str


class UserNote(BaseModel):
    """A user that was skipped, or that needs an administrator's action, and why."""

    username: str
    reason: str


class RestorePlan(BaseModel):
    """What a dry run found the restore would do. Lists hold at most `plan_limit` names."""

    custom_attributes_to_add: list[str] = Field(default_factory=list)
    groups_to_create: list[str] = Field(default_factory=list)
    groups_to_update: list[str] = Field(default_factory=list)
    groups_unchanged: list[str] = Field(default_factory=list)
    groups_kept: list[str] = Field(default_factory=list)
    groups_in_conflict: list[str] = Field(default_factory=list)
    users_to_create: int = 0
    users_to_create_names: list[str] = Field(default_factory=list)
    users_existing: int = 0
    users_existing_names: list[str] = Field(default_factory=list)
    existing_users_will: Literal["be skipped", "be overwritten", "fail the restore"] = "be skipped"
    users_not_restorable: list[UserNote] = Field(default_factory=list)
    users_not_in_snapshot: list[str] = Field(default_factory=list)
    memberships_to_add: int = 0
    memberships_not_restorable: int = 0
    links_to_create: int = 0
    links_not_restorable: list[UserNote] = Field(default_factory=list)
    admin_action: list[UserNote] = Field(default_factory=list)
    users_to_converge: int = Field(default=0, description="Existing users whose follow-ups are (re)applied")
    users_unchanged: int = 0
    users_to_enable: int = 0
    users_to_disable: int = 0
    passwords_to_set: int = 0
    memberships_to_remove: int = 0
    users_to_delete: list[str] = Field(default_factory=list, description="mirror: native users not in it")
    groups_to_delete: list[str] = Field(default_factory=list, description="mirror: groups not in it")
    memberships_to_remove_names: list[str] = Field(
        default_factory=list, description="mirror/overwrite: 'user -> group' memberships not in it"
    )
    truncated: bool = Field(default=False, description="Some list was cut at plan_limit")


class ReportPart(BaseModel):
    """One gzipped JSON Lines object beside the report holding entries of one section.

    Lines: failures {username, group, reason}; skipped and admin_action {username, reason};
    sub_map {old_sub, new_sub}; username_map {old_username, new_username}. The same ids and
    reasons as the inline lists, never an attribute value.
    """

    model_config = ConfigDict(extra="forbid")

    section: ReportSection
    key: str
    records: int
    bytes: int
    sha256: str


class ReportTotals(BaseModel):
    """How many entries each per-user section holds in all (inline and in the parts)."""

    model_config = ConfigDict(extra="forbid")

    failures: int = 0
    skipped: int = 0
    admin_action: int = 0
    sub_map: int = 0
    username_map: int = 0


class RestoreReport(BaseModel):
    """What a restore did (or, for a dry run, would do).

    The per-user sections (failures, skipped, admin_action, sub_map, username_map) of a finished
    run are streamed to `parts` beside the report, every entry; inline they hold the first
    `plan_limit` entries only, so that the report stays small however large the pool
    (`totals` counts them all, `sections_truncated` says whether some are only in the parts).
    """

    schema_version: int = REPORT_SCHEMA_VERSION
    status: RestoreStatus
    dry_run: bool = False
    manifest_key: str
    snapshot_id: str
    source_user_pool_id: str
    target_user_pool_id: str
    conflict_policy: ConflictPolicy
    password_strategy: PasswordStrategy
    usernames: list[str] | None = None
    groups: list[str] | None = None
    started_at: datetime
    finished_at: datetime | None = None
    invocations: int = 1
    counts: RestoreCounts = Field(default_factory=RestoreCounts)
    failures: list[RestoreFailure] = Field(default_factory=list)
    skipped: list[UserNote] = Field(default_factory=list)
    admin_action: list[UserNote] = Field(
        default_factory=list, description="Users who cannot get back in by themselves, and why"
    )
    sub_map: dict[str, str] = Field(default_factory=dict, description="Old sub -> new sub")
    username_map: dict[str, str] = Field(
        default_factory=dict,
        description="Old username -> new one, where they differ (email-as-username pools)",
    )
    plan: RestorePlan | None = None
    report_key: str | None = None
    checkpoint_key: str | None = None
    cognito_calls: int = 0
    cognito_throttled: int = Field(default=0, description="Throttled calls, all retried; never failures")
    mirror: bool = False
    verified: bool = Field(default=False, description="The verification pass ran and found no difference")
    differences: list[str] = Field(
        default_factory=list, description="What the verification found different (at most plan_limit)"
    )
    signature: Literal["signed", "unsigned"] = Field(
        default="signed",
        description="unsigned: some manifest of the chain had no signature, accepted by allow_unsigned",
    )
    not_restorable: list[str] = Field(
        default_factory=lambda: list(NOT_RESTORABLE), description="What no restore can bring back"
    )
    totals: ReportTotals = Field(
        default_factory=ReportTotals, description="Entries of each per-user section, inline or not"
    )
    parts: list[ReportPart] = Field(
        default_factory=list, description="Every entry of the per-user sections, as JSON Lines parts"
    )
    sections_truncated: bool = Field(
        default=False, description="Some per-user section holds inline only its first plan_limit entries"
    )

    def summary_lines(self) -> list[str]:
        c = self.counts
        head = "dry run of restore" if self.dry_run else "restore"
        lines = [
            f"{head} of {self.snapshot_id} ({self.source_user_pool_id}) into {self.target_user_pool_id}: "
            f"{self.status}"
        ]
        if self.signature == "unsigned":
            lines.append("  UNSIGNED snapshot (accepted by --allow-unsigned): nothing proves who wrote it")
        if self.groups:
            lines.append(f"  groups asked for, with all their members: {', '.join(self.groups)}")
        if self.plan is not None:
            p = self.plan
            lines += [
                f"  custom attributes to add: {len(p.custom_attributes_to_add)}",
                f"  groups: {len(p.groups_to_create)} to create, {len(p.groups_to_update)} to update, "
                f"{len(p.groups_in_conflict)} in conflict",
                f"  users: {p.users_to_create} to create, {p.users_existing} existing "
                f"(will {p.existing_users_will.removeprefix('be ')}), "
                f"{len(p.users_not_restorable)} not restorable, "
                f"{len(p.users_not_in_snapshot)} not in the snapshot",
                f"  memberships: {p.memberships_to_add} to add, "
                f"{p.memberships_not_restorable} not restorable",
                f"  existing users: {p.users_to_converge} to converge, {p.users_unchanged} unchanged; "
                f"{p.users_to_disable} to disable, {p.users_to_enable} to enable, "
                f"{p.passwords_to_set} passwords to set, {p.memberships_to_remove} memberships to remove",
                f"  users needing an admin action: {len(p.admin_action)}",
            ]
            if self.mirror:
                lines.append(
                    f"  mirror removes: {len(p.users_to_delete)} users, {len(p.groups_to_delete)} groups, "
                    f"{p.memberships_to_remove} memberships"
                )
                lines += [f"  delete user: {n}" for n in p.users_to_delete]
                lines += [f"  delete group: {n}" for n in p.groups_to_delete]
                lines += [f"  remove membership: {n}" for n in p.memberships_to_remove_names]
            return lines
        lines += [
            f"  users: {c.created} created, {c.existing_skipped} existing skipped, "
            f"{c.overwritten} overwritten, "
            f"{c.conflicts} conflicts, {c.skipped_federated + c.skipped_unconfirmed} not restorable, "
            f"{c.failed} failed",
            f"  groups: {c.groups_created} created, {c.groups_updated} updated, {c.groups_failed} failed; "
            f"memberships: {c.memberships_added} added, {c.memberships_failed} failed",
            f"  users needing an admin action: {self.totals.admin_action}",
        ]
        if self.mirror:
            lines.append(
                f"  mirror: {c.users_deleted} users, {c.groups_deleted} groups, "
                f"{c.memberships_removed} memberships removed; {c.federated_kept} federated users kept"
            )
        if self.status != "incomplete":
            check = (
                "verified: the target equals the snapshot"
                if self.verified
                else f"verification: {c.differences} difference(s) left"
                if c.differences
                else "not verified (--no-verify)"
            )
            lines.append(f"  {check}")
        lines += [f"  failed: {f.username or f.group}: {f.reason}" for f in self.failures[:20]]
        if self.totals.failures > 20:
            lines.append(f"  ... and {self.totals.failures - 20} more failures (see the report)")
        if self.report_key:
            lines.append(f"  report: {self.report_key}")
        return lines


class RestoreOutcomes(BaseModel):
    """Per-user results of one stretch of a run, kept in S3 beside the checkpoint so that a
    checkpoint stays small however many users a restore has done."""

    failures: list[RestoreFailure] = Field(default_factory=list)
    skipped: list[UserNote] = Field(default_factory=list)
    admin_action: list[UserNote] = Field(default_factory=list)
    sub_map: dict[str, str] = Field(default_factory=dict)
    username_map: dict[str, str] = Field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.failures or self.skipped or self.admin_action or self.sub_map or self.username_map)

    def size(self) -> int:
        """Entries held, all sections together."""
        return (
            len(self.failures)
            + len(self.skipped)
            + len(self.admin_action)
            + len(self.sub_map)
            + len(self.username_map)
        )

    def merge(self, other: RestoreOutcomes) -> None:
        self.failures.extend(other.failures)
        self.skipped.extend(other.skipped)
        self.admin_action.extend(other.admin_action)
        self.sub_map.update(other.sub_map)
        self.username_map.update(other.username_map)


class RestoreCheckpoint(BaseModel):
    """Where an unfinished restore stands; kept in S3 between invocations.

    Written before the first write to the target, so that any rerun (after a deadline or a
    crash) knows which users in the target it made itself (created after `started_at`).
    """

    model_config = ConfigDict(extra="forbid")

    manifest_key: str
    snapshot_id: str
    source_user_pool_id: str
    target_user_pool_id: str
    options: RestoreOptions
    started_at: datetime
    phase: RestorePhase = "attributes"
    group_position: int = Field(default=0, description="Groups done, in the view's order")
    user_position: int = Field(default=0, description="Users done, in the view's (filtered) order")
    target_users_at_start: int | None = Field(
        default=None,
        description="Users the target held when the users phase first read it, before any was "
        "created (None: not known). 0 lets a later invocation skip reading the target again",
    )
    counts: RestoreCounts = Field(default_factory=RestoreCounts)
    outcome_keys: list[str] = Field(default_factory=list, description="RestoreOutcomes objects so far")
    report_key: str | None = None
    invocations: int = 0
    verified: bool = False
    differences: list[str] = Field(default_factory=list, description="Found by the verification")
