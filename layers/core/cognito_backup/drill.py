"""Restore drills: a backup that has never been restored is a hope, not a backup.

A drill takes the newest snapshot of a pool whose verdict is `passed` (or one named), checks it
again, creates a scratch pool from its configuration (rebuild.py, with deletion protection off
and tagged `cognito-backup:drill`), restores the snapshot into it with verification (the very
restore of an incident), records what happened in `<prefix>/<pool>/drills/<drill id>.json` and
deletes the scratch pool (unless asked to keep it). Whatever fails on the way, the scratch pool
is deleted and the failure recorded: a drill never leaves a pool behind by accident.

A drill runs in steps, like a restore: `start_drill` picks and checks the snapshot and creates
the pool; `continue_drill` restores until the deadline (the restore checkpoints, so the next
step goes on from where it stopped) and, once the restore has finished, records and cleans up.
The CLI runs both at once (`run_drill`); DrillStateMachine loops on the steps, the drill record
in S3 carrying the state between them.

The record holds ids, counts and durations, never a username. It also projects how long a
restore of the whole pool would take at the configured quotas (`Projection`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .chain import open_view
from .cognito import CognitoGateway
from .errors import BackupError, PoolNotFoundError, UsageError
from .models import utcnow
from .observability import logger
from .pacing import DEFAULT_QUOTAS, OPERATION_CATEGORY, Deadline
from .rebuild import Builder, blueprint
from .restore import run_restore
from .restore_models import RestoreCounts, RestoreOptions, RestoreReport
from .store import (
    MANIFEST_NAME,
    SnapshotStore,
    join_key,
    layout_pool_id,
    layout_prefix,
    layout_snapshot_id,
    layout_time,
    pool_root,
)
from .validate import validate_snapshot, verdict_of

DRILL_TAG = "cognito-backup:drill"  # on every scratch pool: the drill id (IAM conditions use it)
DRILL_SCHEMA_VERSION = 1
DrillStatus = Literal["running", "passed", "failed"]

# The operations of a restore whose volume grows with the pool, and what each is counted by.
_PROJECTED_OPERATIONS = {
    "users": "admin_create_user",
    "memberships": "admin_add_user_to_group",
    "disabled": "admin_disable_user",
    "passwords": "admin_set_user_password",
}


def drills_root(prefix: str, pool_id: str) -> str:
    return join_key(pool_root(prefix, pool_id), "drills")


def drill_key(prefix: str, pool_id: str, drill_id: str) -> str:
    return join_key(drills_root(prefix, pool_id), f"{drill_id}.json")


class DrillCounts(BaseModel):
    """The snapshot's counts and what the restore into the scratch pool did with them."""

    users: int = 0
    groups: int = 0
    memberships: int = 0
    users_created: int = 0
    users_disabled: int = 0
    passwords_set: int = 0
    memberships_added: int = 0
    groups_created: int = 0
    users_failed: int = 0
    not_carried_over: int = Field(default=0, description="Configuration references the rebuild listed")


class Projection(BaseModel):
    """How long restoring the whole pool would take at the configured quotas.

    Each volume (users created, memberships added, users disabled, passwords set) is an
    operation of a quota category (pacing.OPERATION_CATEGORY); a category's time is the sum of
    its operations divided by its rate (DEFAULT_QUOTAS times the deployment's quota fraction).
    Categories are separate budgets that the restore keeps busy at once, so the projection is
    the busiest category's time: a floor, reached only when nothing else shares the quota.
    """

    method: str = "max over quota categories of (operations in the category / its rate)"
    quota_fraction: float
    operations: dict[str, int]
    categories: dict[str, str]  # volume -> quota category
    rates: dict[str, float]  # category -> requests per second used
    seconds_by_category: dict[str, float]
    seconds: float
    bottleneck: str | None


def project_restore(
    users: int, memberships: int, disabled: int, passwords: int, *, quota_fraction: float = 1.0
) -> Projection:
    operations = {"users": users, "memberships": memberships, "disabled": disabled, "passwords": passwords}
    categories = {name: OPERATION_CATEGORY[op] for name, op in _PROJECTED_OPERATIONS.items()}
    rates = {c: DEFAULT_QUOTAS[c] * quota_fraction for c in sorted(set(categories.values()))}
    by_category: dict[str, float] = dict.fromkeys(rates, 0.0)
    for name, count in operations.items():
        by_category[categories[name]] += count / rates[categories[name]]
    busiest = max(by_category, key=lambda c: by_category[c]) if any(by_category.values()) else None
    return Projection(
        quota_fraction=quota_fraction,
        operations=operations,
        categories=categories,
        rates=rates,
        seconds_by_category={c: round(s, 1) for c, s in by_category.items()},
        seconds=round(by_category[busiest], 1) if busiest else 0.0,
        bottleneck=busiest,
    )


# What a drill leaves out of its scratch pool on purpose: not "not carried over".
_NOT_DRILLED = frozenset(
    {
        "ui_customization",
        "ui_image",
        "managed_login_branding",
        "log_delivery",
        "risk_configuration",
        "risk_notify",
    }
)


class DrillRecord(BaseModel):
    """`<prefix>/<pool>/drills/<drill id>.json`: written at each step, final once finished."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = DRILL_SCHEMA_VERSION
    drill_id: str
    status: DrillStatus
    source_user_pool_id: str
    manifest_key: str
    snapshot_id: str
    scratch_user_pool_id: str | None = None
    scratch_pool_deleted: bool = False
    keep: bool = False
    started_at: datetime
    finished_at: datetime | None = None
    phases: dict[str, float] = Field(default_factory=dict, description="Seconds spent in each phase")
    steps: int = 0
    counts: DrillCounts = Field(default_factory=DrillCounts)
    validation_failures: int = 0
    verified: bool = False
    differences: int = 0
    failures: int = 0
    equal: bool = False
    restore_status: str | None = None
    restore_report_key: str | None = None
    projection: Projection | None = None
    error: str | None = Field(default=None, description="The error's class: details are in the logs")

    @property
    def key(self) -> str:
        return drill_key(
            _prefix_of(self.manifest_key, self.source_user_pool_id), self.source_user_pool_id, self.drill_id
        )

    def summary_lines(self) -> list[str]:
        c = self.counts
        lines = [
            f"drill {self.drill_id}: {self.status.upper()} (snapshot {self.snapshot_id})",
            f"  scratch pool: {self.scratch_user_pool_id or '-'}"
            + (" (deleted)" if self.scratch_pool_deleted else " (kept)" if self.scratch_user_pool_id else ""),
            f"  snapshot: {c.users} users, {c.groups} groups, {c.memberships} memberships",
            f"  restored: {c.users_created} users, {c.memberships_added} memberships, "
            f"{c.users_disabled} disabled; {self.failures} failures, {self.differences} differences, "
            f"verified={self.verified}",
            "  phases: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.phases.items()),
        ]
        if self.projection is not None:
            p = self.projection
            lines.append(
                f"  projected whole-pool restore: {p.seconds / 60:.1f} min at the configured quotas"
                f" (bottleneck {p.bottleneck or '-'})"
            )
        if self.error:
            lines.append(f"  error: {self.error}")
        return lines


def _prefix_of(manifest_key: str, pool_id: str) -> str:
    """The bucket prefix of a snapshot of `pool_id` (UsageError if the key is not one)."""
    return layout_prefix(manifest_key, pool_id)


@contextmanager
def _timed(record: DrillRecord, phase: str, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    start = clock()
    try:
        yield
    finally:
        record.phases[phase] = round(record.phases.get(phase, 0.0) + clock() - start, 3)


def newest_passed(store: SnapshotStore, prefix: str, pool_id: str) -> str:
    """The newest snapshot of the pool whose recorded verdict is `passed`."""
    for key in store.manifest_keys(prefix, pool_id):
        if verdict_of(store, key) == "passed":
            return key
    raise UsageError(f"no snapshot of {pool_id} under {prefix!r} has passed validation: nothing to drill")


def new_drill_id(now: datetime | None = None) -> str:
    return f"{(now or utcnow()).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


class Drill:
    """One drill's steps over a gateway (the scratch pool's region) and the backup store."""

    def __init__(
        self,
        gateway: CognitoGateway,
        store: SnapshotStore,
        *,
        region: str,
        account: str,
        quota_fraction: float = 1.0,
    ) -> None:
        self.gw = gateway
        self.store = store
        self.region = region
        self.account = account
        self.quota_fraction = quota_fraction

    def _save(self, record: DrillRecord) -> None:
        self.store.put_json(record.key, record)

    def load(self, prefix: str, pool_id: str, drill_id: str) -> DrillRecord:
        raw = self.store.get_json(drill_key(prefix, pool_id, drill_id))
        if raw is None:
            raise UsageError(f"no drill {drill_id} of {pool_id} under {prefix!r}")
        return DrillRecord.model_validate(raw)

    # ------------------------------------------------------------------ step 1
    def start(
        self, prefix: str, pool_id: str, *, manifest_key: str | None = None, keep: bool = False
    ) -> DrillRecord:
        """Pick and check the snapshot, create the scratch pool. A snapshot that does not
        validate fails the drill here, before any pool exists. `keep` keeps the scratch pool
        whatever the outcome (to look at it: a failed drill's pool is the interesting one)."""
        started = time.monotonic()
        key = manifest_key or newest_passed(self.store, prefix, pool_id)
        if layout_pool_id(key) != pool_id or _prefix_of(key, pool_id) != prefix.strip("/"):
            raise UsageError(f"refused: {key} is not a snapshot of {pool_id} under {prefix!r}")
        drill_id = new_drill_id()
        record = DrillRecord(
            drill_id=drill_id,
            status="running",
            source_user_pool_id=pool_id,
            manifest_key=key,
            snapshot_id=layout_snapshot_id(key),
            keep=keep,
            started_at=utcnow(),
            steps=1,
        )
        record.phases["select"] = round(time.monotonic() - started, 3)
        try:
            with _timed(record, "validate"):
                verdict = validate_snapshot(self.store, key, record=False)
            record.validation_failures = len(verdict.failures)
            record.counts.users = verdict.counts.users
            record.counts.groups = verdict.counts.groups
            record.counts.memberships = verdict.counts.memberships
            if not verdict.valid:
                return self._finish(record, "failed")
            with _timed(record, "create_pool"):
                record.scratch_user_pool_id = self._create_pool(record)
            self._save(record)
        except BaseException as exc:
            self._fail(record, exc)
            raise
        logger.info(
            "drill started",
            extra={
                "drill_id": drill_id,
                "snapshot_id": record.snapshot_id,
                "scratch": record.scratch_user_pool_id,
            },
        )
        return record

    def _create_pool(self, record: DrillRecord) -> str:
        view = open_view(self.store, record.manifest_key)
        config = view.config()
        if config is None:
            raise UsageError(
                "refused: the snapshot holds no pool configuration to create a scratch pool from"
            )
        plan = blueprint(
            config,
            pool_name=f"drill-{record.snapshot_id}-{record.drill_id.rsplit('-', 1)[-1]}",
            snapshot_id=view.chain[-1].manifest.snapshot_id,
            region=self.region,
            account=self.account,
        )
        # A scratch pool is deleted at the end: never protected, whatever the source was; and
        # recognisable (the tag the role's conditions and the runbook's clean-up look for).
        plan.create_pool["DeletionProtection"] = "INACTIVE"
        plan.create_pool["UserPoolTags"] = {**plan.create_pool["UserPoolTags"], DRILL_TAG: record.drill_id}
        # A domain prefix is global and the source still holds it: a drill takes none.
        plan.domain = None
        # Nor what only signing-in users see or what writes outside the pool: the hosted UI's
        # looks (no domain to show them on), log delivery (a scratch pool's logs must not land
        # in production's destinations) and threat protection. A drill proves the users.
        plan.ui_customizations, plan.managed_login_brandings = [], []
        plan.log_delivery, plan.risk_configurations = None, []
        plan.references = [r for r in plan.references if r.kind not in _NOT_DRILLED]
        result = Builder(self.gw).build(plan)
        record.counts.not_carried_over = len(result.references)
        return result.user_pool_id

    # ------------------------------------------------------------------ step 2..n
    def step(
        self, record: DrillRecord, deadline: Deadline, progress: Callable[[RestoreCounts], None] | None = None
    ) -> DrillRecord:
        """Restore into the scratch pool until done or the deadline; then record and clean up."""
        if record.status != "running":
            return record
        if not record.scratch_user_pool_id:
            raise UsageError(f"drill {record.drill_id} has no scratch pool to restore into")
        record.steps += 1
        try:
            with _timed(record, "restore"):
                report = run_restore(
                    self.gw,
                    self.store,
                    record.manifest_key,
                    record.scratch_user_pool_id,
                    options=RestoreOptions(verify=True),
                    deadline=deadline,
                    progress=progress,
                )
            self._take(record, report)
            if report.status == "incomplete":
                self._save(record)
                return record
            return self._finish(record, "passed" if record.equal else "failed")
        except BaseException as exc:
            self._fail(record, exc)
            raise

    def abort(self, record: DrillRecord, reason: str) -> DrillRecord:
        """A drill whose step could not finish (a Lambda timeout, a crash): clean up, record."""
        if record.status != "running":
            return record
        record.error = reason
        return self._finish(record, "failed")

    def _take(self, record: DrillRecord, report: RestoreReport) -> None:
        c = report.counts
        record.counts.users_created = c.created
        record.counts.users_disabled = c.disabled
        record.counts.passwords_set = c.passwords_set
        record.counts.memberships_added = c.memberships_added
        record.counts.groups_created = c.groups_created
        record.counts.users_failed = c.failed
        record.restore_status = report.status
        record.restore_report_key = report.report_key
        record.verified = report.verified
        record.differences = c.differences
        record.failures = report.totals.failures
        record.equal = report.status == "complete" and report.verified and not report.totals.failures

    def _fail(self, record: DrillRecord, exc: BaseException) -> None:
        record.error = type(exc).__name__
        logger.warning("drill failed", extra={"drill_id": record.drill_id, "error": record.error})
        try:
            self._finish(record, "failed")
        except BackupError as cleanup:
            # The original error is what the caller sees; this one is logged, never hidden.
            logger.error(
                "drill clean-up failed",
                extra={
                    "drill_id": record.drill_id,
                    "scratch": record.scratch_user_pool_id,
                    "error": type(cleanup).__name__,
                },
            )

    def _finish(self, record: DrillRecord, status: DrillStatus) -> DrillRecord:
        record.status = status
        if record.scratch_user_pool_id and not record.keep and not record.scratch_pool_deleted:
            with _timed(record, "delete_pool"):
                self._delete_pool(record.scratch_user_pool_id)
            record.scratch_pool_deleted = True
        record.projection = project_restore(
            record.counts.users,
            record.counts.memberships,
            record.counts.users_disabled,
            record.counts.passwords_set,
            quota_fraction=self.quota_fraction,
        )
        record.finished_at = utcnow()
        self._save(record)
        logger.info(
            "drill finished",
            extra={
                "drill_id": record.drill_id,
                "status": record.status,
                "snapshot_id": record.snapshot_id,
                "users": record.counts.users,
                "differences": record.differences,
                "failures": record.failures,
                "seconds": sum(record.phases.values()),
            },
        )
        return record

    def _delete_pool(self, pool_id: str) -> None:
        """Delete the scratch pool, once it is known to be one (its drill tag). A pool already
        gone (a retried delete whose first attempt acted) is what was asked for."""
        try:
            described = self.gw.describe_pool(pool_id)
            if (described.get("UserPoolTags") or {}).get(DRILL_TAG) is None:
                raise UsageError(f"refused: {pool_id} is not a drill's scratch pool; it is not deleted")
            self.gw.call("delete_user_pool", UserPoolId=pool_id)
        except PoolNotFoundError:
            logger.info("scratch pool already gone", extra={"scratch": pool_id})


def run_drill(
    drill: Drill,
    prefix: str,
    pool_id: str,
    *,
    manifest_key: str | None = None,
    keep: bool = False,
    deadline: Deadline | None = None,
    progress: Callable[[RestoreCounts], None] | None = None,
) -> DrillRecord:
    """A whole drill in one process (the CLI): start, then steps until it is finished."""
    deadline = deadline or Deadline.never()
    record = drill.start(prefix, pool_id, manifest_key=manifest_key, keep=keep)
    while record.status == "running":
        record = drill.step(record, deadline, progress)
        if record.status == "running" and deadline.expired():
            break
    return record


# ---------------------------------------------------------------------- freshness
class Freshness(BaseModel):
    """How old the newest good snapshots and the newest passed drill are, now (the daily check
    publishes these: CloudWatch alarms look back 7 days at most, so "no drill passed in 35
    days" is decided here and published as a 0/1 metric that the alarm watches)."""

    full_age_seconds: float | None = None
    incremental_age_seconds: float | None = None
    drill_age_days: float | None = None
    last_drill_id: str | None = None
    drill_overdue: bool = False


def _snapshot_time(manifest_key: str) -> datetime:
    return layout_time(manifest_key)


def _newest_passed_of(store: SnapshotStore, root: str) -> tuple[str | None, str | None]:
    """(newest manifest with verdict passed, oldest manifest) under one kind's folder."""
    keys = sorted(
        (k for k in store.list_keys(root) if k.endswith("/" + MANIFEST_NAME)),
        key=layout_snapshot_id,
        reverse=True,
    )
    newest = next((k for k in keys if verdict_of(store, k) == "passed"), None)
    return newest, keys[-1] if keys else None


def freshness(
    store: SnapshotStore, prefix: str, pool_id: str, *, max_drill_age_days: float, now: datetime | None = None
) -> Freshness:
    """The ages now. A drill is overdue when the newest passed one is older than
    `max_drill_age_days`, or when none passed and the oldest full snapshot is older than that
    (a deployment younger than the period is not yet overdue)."""
    now = now or utcnow()
    root = pool_root(prefix, pool_id)
    out = Freshness()
    full, oldest_full = _newest_passed_of(store, join_key(root, "full") + "/")
    incremental, _ = _newest_passed_of(store, join_key(root, "incremental") + "/")
    if full:
        out.full_age_seconds = round((now - _snapshot_time(full)).total_seconds(), 1)
    if incremental:
        out.incremental_age_seconds = round((now - _snapshot_time(incremental)).total_seconds(), 1)
    drills = sorted(
        (k for k in store.list_keys(drills_root(prefix, pool_id) + "/") if k.endswith(".json")), reverse=True
    )
    for key in drills:
        raw = store.get_json(key)
        if raw is None or raw.get("status") != "passed":
            continue
        record = DrillRecord.model_validate(raw)
        out.last_drill_id = record.drill_id
        out.drill_age_days = round(
            (now - (record.finished_at or record.started_at)).total_seconds() / 86400, 2
        )
        break
    if out.drill_age_days is not None:
        out.drill_overdue = out.drill_age_days > max_drill_age_days
    elif oldest_full is not None:
        out.drill_overdue = (now - _snapshot_time(oldest_full)).total_seconds() / 86400 > max_drill_age_days
    return out
