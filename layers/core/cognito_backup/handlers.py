"""The Lambda layer of the package: event parsing, Powertools metrics, small answers.

`functions/*/app.py` are a few lines over these functions; the domain modules (export,
validate, restore) know nothing of Lambda events, metrics or answers. Every answer is small
(status, counts, ids and S3 keys: Step Functions carries at most 256 KB between states) and
names no user: usernames and e-mail addresses stay in the reports in S3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from .drill import Drill, DrillRecord, freshness
from .errors import (
    DrillFailedError,
    RestoreFailedError,
    SignInRefusedError,
    SnapshotInvalidError,
    UsageError,
    UserNotFoundError,
)
from .export import ExportOptions
from .migrate import MigrationEvent, MigrationSource, migrate_user
from .models import utcnow
from .notify import publish_verdict
from .observability import logger, metrics
from .pacing import Deadline
from .rebuild import Builder, plan_from_snapshot
from .restore import run_restore
from .restore_models import RestoreCounts, RestoreEvent, RestoreReport, RestoreStatus
from .runtime import Runtime
from .settings import Settings, get_settings
from .snapshot import run_export
from .store import MANIFEST_NAME, SnapshotStore, layout_pool_id, layout_snapshot_id, standby_key
from .validate import ValidationReport, report_key, validate_snapshot

OBJECT_CREATED = "Object Created"


def _problems(exc: ValidationError, limit: int = 5) -> str:
    """Where an event is malformed: field paths and pydantic's message, never the values."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}" for err in exc.errors()[:limit]
    )


def _under_prefix(key: str, settings: Settings) -> None:
    """A function reads and writes only under its BACKUP_PREFIX: any other key is refused."""
    if not key.startswith(settings.backup_prefix.strip("/") + "/"):
        raise UsageError(f"refused: the key is not under this deployment's prefix {settings.backup_prefix!r}")


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(event: Any, model: type[ModelT], what: str, *, limit: int = 5) -> ModelT:
    """An event as its model (Powertools' parser), or a UsageError naming the bad fields."""
    if not isinstance(event, dict):
        raise UsageError(f"malformed {what} event: expected a JSON object, got {type(event).__name__}")
    try:
        parsed: ModelT = parse(event=event, model=model)
    except ValidationError as exc:
        raise UsageError(f"malformed {what} event: {_problems(exc, limit)}") from exc
    return parsed


# --------------------------------------------------------------------------- exports


class ScheduledEvent(BaseModel):
    """The EventBridge scheduled event, or the Step Functions loop's previous result."""

    model_config = ConfigDict(extra="allow")

    source: str | None = None
    status: str | None = None


def export_handler(event: dict[str, Any], context: Any, *, incremental: bool) -> dict[str, Any]:
    try:
        ScheduledEvent.model_validate(event)
    except ValidationError as exc:
        raise UsageError(f"malformed event: {_problems(exc, 1)}") from exc
    settings = get_settings()
    if not settings.user_pool_id:
        raise UsageError("USER_POOL_ID is not set")
    # The export role may only GenerateMac: it checks its base's signature by making it again.
    # A scheduled export takes its share of the quotas only: headroom for the application.
    rt = Runtime(settings, verify_by="generate_mac", quota_share=settings.export_quota_share)
    result = run_export(
        rt.gateway,
        rt.store,
        settings.user_pool_id,
        deadline=Deadline.from_lambda_context(context, settings.deadline_margin_seconds),
        options=ExportOptions(prefix=settings.backup_prefix),
        incremental=incremental,
    )
    logger.info(
        "export step finished",
        extra={
            "status": result.status,
            "kind": result.kind,
            "snapshot_id": result.snapshot_id,
            "users": result.counts.users,
            "groups": result.counts.groups,
            "memberships": result.counts.memberships,
            "cognito_calls": rt.gateway.stats.calls,
            "throttled": rt.gateway.stats.throttled,
        },
    )
    metrics.add_metric(name="CognitoThrottled", unit=MetricUnit.Count, value=rt.gateway.stats.throttled)
    if result.status == "complete":
        # The stale-backup alarms watch these. An incremental with no valid base became a
        # full export: it is a fresh full snapshot and keeps the hourly alarm quiet too.
        succeeded = {"FullExportSucceeded"} if result.kind == "full" else set()
        if incremental:
            succeeded.add("IncrementalExportSucceeded")
        for name in sorted(succeeded):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="UsersExported", unit=MetricUnit.Count, value=result.counts.users)
    return result.model_dump(mode="json")


# --------------------------------------------------------------------------- validator


def parse_validator_event(event: Any) -> S3EventNotificationEventBridgeModel:
    """The S3 -> EventBridge "Object Created" event, or a UsageError naming the bad field."""
    return _parse(event, S3EventNotificationEventBridgeModel, "validator", limit=1)


def validator_handler(
    event: Any, settings: Settings | None = None, runtime: Runtime | None = None
) -> dict[str, Any]:
    """Validate the snapshot whose manifest an S3 event announces; raise if it is invalid.

    The verdict is recorded, then published on EventBridge (`Snapshot Validated`: the
    standby sync listens), before an invalid snapshot raises, so that Lambda counts an
    error (alarm) and the tag and report say why. Logs carry ids and counts only.
    """
    settings = settings or get_settings()
    parsed = parse_validator_event(event)
    bucket = parsed.detail.bucket.name
    # EventBridge carries the key as written (S3 -> SQS/SNS notifications URL-encode it).
    key = parsed.detail.object.key
    if bucket != settings.bucket_name:
        raise UsageError(
            f"refused: the event is for bucket {bucket!r}, this validator serves {settings.bucket_name!r}"
        )
    if parsed.detail_type != OBJECT_CREATED or key.rsplit("/", 1)[-1] != MANIFEST_NAME:
        logger.debug("event ignored", extra={"detail_type": parsed.detail_type, "key": key})
        return {"status": "ignored", "key": key}
    _under_prefix(key, settings)
    rt = runtime or Runtime(settings)
    report = validate_snapshot(rt.store, key, record=True)
    _observe_validation(report)
    detail = {
        "bucket": bucket,
        "manifest_key": key,
        "snapshot_id": report.snapshot_id,
        "user_pool_id": report.user_pool_id,
        "kind": report.kind,
        "verdict": report.verdict,
        "users": report.counts.users,
    }
    publish_verdict(rt.clients.events(), detail)
    if not report.valid:
        raise SnapshotInvalidError(report)
    return {
        "status": "validated",
        "verdict": report.verdict,
        "manifest_key": key,
        "report_key": report_key(key),
        "snapshot_id": report.snapshot_id,
        "user_pool_id": report.user_pool_id,
        "kind": report.kind,
        "signature": report.signature,
        "counts": report.counts.model_dump(),
    }


def _observe_validation(report: ValidationReport) -> None:
    metrics.add_metric(
        name="SnapshotValid" if report.valid else "SnapshotInvalid", unit=MetricUnit.Count, value=1
    )
    metrics.add_metric(name="UsersValidated", unit=MetricUnit.Count, value=report.counts.users)
    age: float | None = None
    if report.finished_at is not None:
        age = max(0.0, (report.checked_at - report.finished_at).total_seconds())
        metrics.add_metric(name="SnapshotAgeSeconds", unit=MetricUnit.Seconds, value=age)
    logger.info(
        "snapshot validated",
        extra={
            "verdict": report.verdict,
            "snapshot_id": report.snapshot_id,
            "user_pool_id": report.user_pool_id,
            "kind": report.kind,
            "failures": len(report.failures),
            "signature": report.signature,
            "signature_failure": report.signature_failure,
            "failed_parts": sorted({f.part.rsplit("/", 1)[-1] for f in report.failures if f.part})[:20],
            "users": report.counts.users,
            "groups": report.counts.groups,
            "memberships": report.counts.memberships,
            "parts": report.counts.parts,
            "bytes": report.counts.bytes,
            "age_seconds": age,
        },
    )


# --------------------------------------------------------------------------- restore


class RestoreAnswer(BaseModel):
    """What the restore Lambda answers: a few hundred bytes whatever the pool's size.

    The report itself (per-user outcomes, the old->new sub map, usernames) is in S3 at
    `report_key`; a dry run's answer carries the plan's counts (the CLI's `--dry-run`
    prints the plan with names).
    """

    model_config = ConfigDict(extra="forbid")

    status: RestoreStatus
    dry_run: bool
    snapshot_id: str
    source_user_pool_id: str
    target_user_pool_id: str
    invocations: int
    counts: RestoreCounts
    failures: int
    admin_action: int
    plan: dict[str, int] | None = None
    report_key: str | None = None
    checkpoint_key: str | None = None
    cognito_calls: int
    cognito_throttled: int
    verified: bool = False
    differences: int = 0
    superseded_by: str | None = None
    signature: Literal["signed", "unsigned"] | None = None
    # create_target_pool_name: the pool made from the snapshot (ids, counts, what was not carried)
    rebuild: dict[str, Any] | None = None

    @classmethod
    def of(cls, report: RestoreReport) -> RestoreAnswer:
        plan = None
        if report.plan is not None:
            plan = {
                name: value if isinstance(value, int) else len(value)
                for name, value in report.plan
                if isinstance(value, int | list) and not isinstance(value, bool)
            }
        return cls(
            status=report.status,
            dry_run=report.dry_run,
            snapshot_id=report.snapshot_id,
            source_user_pool_id=report.source_user_pool_id,
            target_user_pool_id=report.target_user_pool_id,
            invocations=report.invocations,
            counts=report.counts,
            failures=report.totals.failures,
            admin_action=report.totals.admin_action,
            plan=plan,
            report_key=report.report_key,
            checkpoint_key=report.checkpoint_key,
            cognito_calls=report.cognito_calls,
            cognito_throttled=report.cognito_throttled,
            verified=report.verified,
            differences=report.counts.differences,
            signature=report.signature,
        )


def parse_restore_event(event: Any) -> RestoreEvent:
    """The event as a model; a malformed one is refused naming the bad field."""
    return _parse(event, RestoreEvent, "restore")


def restore_handler(event: Any, context: Any, settings: Settings | None = None) -> dict[str, Any]:
    """Parse, restore until the deadline, answer small; raise when the restore failed.

    A restore into the standby pool (STANDBY_USER_POOL_ID) is a standby sync: one that
    arrives after a newer snapshot was already mirrored there is answered `complete` and
    `superseded_by` that snapshot, without writing (syncs may finish out of order).
    """
    request = parse_restore_event(event)
    settings = settings or get_settings()
    _under_prefix(request.manifest_key, settings)
    rt = Runtime(settings, allow_unsigned=request.allow_unsigned)
    target = request.target_user_pool_id
    rebuilt: dict[str, Any] | None = None
    if request.create_target_pool_name is not None:
        rebuilt, target = _rebuilt_target(request, rt, context)
        if target is None:  # a dry run: the pool it would create, nothing made
            return {"dry_run": True, "create_target_pool": rebuilt}
    assert target is not None
    standby = _standby_of(request, settings, rt.store)
    if standby is not None and standby.newer_than(request.manifest_key):
        return standby.superseded(request).model_dump(mode="json")
    report = run_restore(
        rt.gateway,
        rt.store,
        request.manifest_key,
        target,
        options=request.options(),
        deadline=Deadline.from_lambda_context(context, settings.deadline_margin_seconds),
    )
    answer = RestoreAnswer.of(report)
    answer.rebuild = rebuilt
    if standby is not None and not answer.dry_run and answer.status != "incomplete":
        standby.record(answer, request.manifest_key)
    metrics.add_metric(name="CognitoThrottled", unit=MetricUnit.Count, value=answer.cognito_throttled)
    if not answer.dry_run:
        metrics.add_metric(name="UsersRestored", unit=MetricUnit.Count, value=answer.counts.created)
    if answer.status == "failed":
        metrics.add_metric(name="RestoreFailed", unit=MetricUnit.Count, value=1)
        raise RestoreFailedError(answer)
    if answer.status == "complete" and not answer.dry_run:
        metrics.add_metric(name="RestoreSucceeded", unit=MetricUnit.Count, value=1)
    return answer.model_dump(mode="json")


def _rebuilt_target(request: RestoreEvent, rt: Runtime, context: Any) -> tuple[dict[str, Any], str | None]:
    """`create_target_pool_name`: the pool made (or, on a later step, found) from a snapshot
    that validates, in this function's Region and account; its summary names settings,
    client ids and what was not carried over, never a user."""
    assert request.create_target_pool_name is not None
    plan = plan_from_snapshot(
        rt.store,
        request.manifest_key,
        pool_name=request.create_target_pool_name,
        region=rt.clients.region or "",
        account=str(context.invoked_function_arn).split(":")[4],
        force=request.force,
        dry_run=request.dry_run,
    )
    if request.dry_run:
        return plan.summary(), None
    result = Builder(rt.gateway).build(plan)
    summary = result.as_dict()
    logger.info(
        "target pool ready",
        extra={
            "target_user_pool_id": result.user_pool_id,
            "created_pool": result.created_pool,
            **result.created,
        },
    )
    return summary, result.user_pool_id


class StandbyMarker(BaseModel):
    """The last snapshot mirrored into the standby successfully (only those are recorded):
    `<prefix>/<pool>/standby/<standby>.json`."""

    snapshot_id: str
    manifest_key: str
    synced_at: datetime


@dataclass
class _Standby:
    """A restore into the standby pool: ordered, recorded, measured."""

    store: SnapshotStore
    key: str
    last: StandbyMarker | None

    def newer_than(self, manifest_key: str) -> bool:
        """Whether a newer snapshot than this one has already been mirrored successfully."""
        return self.last is not None and self.last.snapshot_id > layout_snapshot_id(manifest_key)

    def superseded(self, request: RestoreEvent) -> RestoreAnswer:
        assert self.last is not None
        logger.info(
            "standby sync superseded",
            extra={"snapshot_id": layout_snapshot_id(request.manifest_key), "newer": self.last.snapshot_id},
        )
        return RestoreAnswer(
            status="complete",
            dry_run=request.dry_run,
            snapshot_id=layout_snapshot_id(request.manifest_key),
            source_user_pool_id=layout_pool_id(request.manifest_key),
            target_user_pool_id=request.target_user_pool_id,
            invocations=0,
            counts=RestoreCounts(),
            failures=0,
            admin_action=0,
            cognito_calls=0,
            cognito_throttled=0,
            superseded_by=self.last.snapshot_id,
        )

    def record(self, answer: RestoreAnswer, manifest_key: str) -> None:
        """A finished sync: its marker (unless it would move the standby back) and metrics."""
        succeeded = answer.status == "complete"
        name = "StandbySyncSucceeded" if succeeded else "StandbySyncFailed"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if succeeded and not self.newer_than(manifest_key):
            marker = StandbyMarker(
                snapshot_id=answer.snapshot_id,
                manifest_key=manifest_key,
                synced_at=utcnow(),
            )
            self.store.put_json(self.key, marker)


def _standby_of(request: RestoreEvent, settings: Settings, store: SnapshotStore) -> _Standby | None:
    if not settings.standby_user_pool_id or request.target_user_pool_id != settings.standby_user_pool_id:
        return None
    source = layout_pool_id(request.manifest_key)
    key = standby_key(settings.backup_prefix, source, request.target_user_pool_id)
    raw = store.get_json(key)
    return _Standby(store, key, StandbyMarker.model_validate(raw) if raw else None)


# --------------------------------------------------------------------------- migration trigger


def parse_migration_event(event: Any) -> MigrationEvent:
    """The user-migration trigger event; a malformed one is refused naming the bad fields
    (pydantic's messages name fields and types, never the values: the event holds a password)."""
    return _parse(event, MigrationEvent, "migration trigger")


def migrate_user_handler(
    event: Any,
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Answer Cognito's user-migration trigger: the event, with `response` filled in.

    The answer carries the user's attributes, as the trigger must; logs and metrics carry the
    trigger source, where the answer came from and the snapshot id, never a name or a value.
    A refusal (wrong password, unknown user) raises, and is counted as UserMigrationRefused
    so that the errors alarm can tell refusals, which are routine, from failures.
    """
    request = parse_migration_event(event)
    settings = settings or get_settings()
    source = MigrationSource.from_env(os.environ if environ is None else environ, settings.backup_prefix)
    rt = runtime or Runtime(settings)
    gateway = rt.gateway_in(source.region)
    try:
        migrated = migrate_user(gateway, rt.store, source, request)
    except (SignInRefusedError, UserNotFoundError) as exc:
        metrics.add_metric(name="UserMigrationRefused", unit=MetricUnit.Count, value=1)
        logger.info(
            "user migration refused",
            extra={"trigger_source": request.triggerSource, "reason": type(exc).__name__},
        )
        raise
    metrics.add_metric(name="UserMigrated", unit=MetricUnit.Count, value=1)
    logger.info(
        "user migrated",
        extra={
            "trigger_source": request.triggerSource,
            "origin": migrated.origin,
            "challenge": migrated.challenge,
            "snapshot_id": migrated.snapshot_id,
            "attributes": len(migrated.response.userAttributes),
            "cognito_calls": gateway.stats.calls,
        },
    )
    answer = dict(event)
    answer["response"] = {**(event.get("response") or {}), **migrated.response.model_dump(exclude_none=True)}
    return answer


# --------------------------------------------------------------------------- restore drill


class DrillEvent(BaseModel):
    """What DrillStateMachine passes: the scheduled event (start a drill of the newest good
    snapshot), or `manifest_key`/`keep` to choose; then the previous step's answer, whose
    `drill_id` continues that drill; `abort` (with the drill's answer under `event`) cleans up
    after a step that could not finish (a timeout, a crash)."""

    model_config = ConfigDict(extra="allow")

    manifest_key: str | None = Field(default=None, min_length=1, pattern=r"(^|/)manifest\.json$")
    keep: StrictBool = False
    drill_id: str | None = Field(default=None, pattern=r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
    abort: StrictBool = False
    event: dict[str, Any] | None = None
    # The daily check (its own schedule): publish the ages of the newest good snapshots and
    # drill, and whether a drill is overdue; no drill is run.
    check: StrictBool = False


class DrillAnswer(BaseModel):
    """A drill step's answer: ids, counts and seconds (the record is in S3 at `record_key`)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["incomplete", "complete", "failed"]
    drill_id: str | None
    drill_status: str
    snapshot_id: str | None = None
    scratch_user_pool_id: str | None = None
    scratch_pool_deleted: bool = False
    record_key: str | None = None
    users: int = 0
    differences: int = 0
    failures: int = 0
    equal: bool = False
    seconds: float = 0.0
    projected_restore_seconds: float | None = None

    @classmethod
    def of(cls, record: DrillRecord) -> DrillAnswer:
        status: Literal["incomplete", "complete", "failed"] = (
            "incomplete"
            if record.status == "running"
            else "complete"
            if record.status == "passed"
            else "failed"
        )
        return cls(
            status=status,
            drill_id=record.drill_id,
            drill_status=record.status,
            snapshot_id=record.snapshot_id,
            scratch_user_pool_id=record.scratch_user_pool_id,
            scratch_pool_deleted=record.scratch_pool_deleted,
            record_key=record.key,
            users=record.counts.users,
            differences=record.differences,
            failures=record.failures,
            equal=record.equal,
            seconds=round(sum(record.phases.values()), 3),
            projected_restore_seconds=record.projection.seconds if record.projection else None,
        )


def _account_of(context: Any) -> str:
    """The account the function runs in, from its ARN (no STS call, no permission needed)."""
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    if len(parts) < 5 or not parts[4]:
        raise UsageError("the drill needs the Lambda context's invoked_function_arn (its account)")
    return parts[4]


def drill_handler(
    event: Any, context: Any, settings: Settings | None = None, runtime: Runtime | None = None
) -> dict[str, Any]:
    """One step of a drill of USER_POOL_ID's backups; raise DrillFailedError when it failed.

    The store and gateway are the runtime's, as for the restore (so the signing key, once the
    restore verifies signatures, applies to drills as well). A finished drill publishes
    DrillSucceeded or DrillFailed, its duration and the projected whole-pool restore time.
    """
    request = _parse(event, DrillEvent, "drill")
    settings = settings or get_settings()
    if not settings.user_pool_id:
        raise UsageError("USER_POOL_ID is not set")
    if request.manifest_key:
        _under_prefix(request.manifest_key, settings)
    rt = runtime or Runtime(settings)
    if request.check:
        return _check_freshness(rt.store, settings.backup_prefix.strip("/"), settings.user_pool_id)
    drill = Drill(
        rt.gateway,
        rt.store,
        region=rt.clients.region or "",
        account=_account_of(context),
        quota_fraction=settings.quota_fraction,
    )
    deadline = Deadline.from_lambda_context(context, settings.deadline_margin_seconds)
    prefix, pool = settings.backup_prefix.strip("/"), settings.user_pool_id
    if request.abort:
        return _abort_drill(drill, prefix, pool, request)
    finished_before = False
    try:
        if request.drill_id:
            loaded = drill.load(prefix, pool, request.drill_id)
            # A retried step whose first attempt finished the drill: answer it, count it once.
            finished_before = loaded.status != "running"
            record = drill.step(loaded, deadline)
        else:
            # The first step answers as soon as the scratch pool exists: from then on the
            # execution's state carries the drill id, so that a step that crashes or times out
            # can still be cleaned up after (the state machine's Abort).
            record = drill.start(prefix, pool, manifest_key=request.manifest_key, keep=request.keep)
    except Exception:
        # The drill recorded itself failed and deleted its pool; count it, and let it raise.
        metrics.add_metric(name="DrillFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="CognitoThrottled", unit=MetricUnit.Count, value=rt.gateway.stats.throttled)
    if record.status != "running" and not finished_before:
        _observe_drill(record)
    if record.status == "failed":
        raise DrillFailedError(record)
    return DrillAnswer.of(record).model_dump(mode="json")


def _abort_drill(drill: Drill, prefix: str, pool: str, request: DrillEvent) -> dict[str, Any]:
    """After a step that could not finish (the state machine's Catch): delete the scratch
    pool and record the drill failed. Answers (the execution then fails) rather than raises."""
    drill_id = (request.event or {}).get("drill_id")
    if not isinstance(drill_id, str) or not drill_id:
        # The first step failed before it had a drill (or a pool): nothing to clean up.
        metrics.add_metric(name="DrillFailed", unit=MetricUnit.Count, value=1)
        return DrillAnswer(status="failed", drill_id=None, drill_status="failed").model_dump(mode="json")
    record = drill.load(prefix, pool, drill_id)
    if record.status == "running":
        record = drill.abort(record, "StepFailed")
        _observe_drill(record)
    return DrillAnswer.of(record).model_dump(mode="json")


def _observe_drill(record: DrillRecord) -> None:
    metrics.add_metric(
        name="DrillSucceeded" if record.status == "passed" else "DrillFailed", unit=MetricUnit.Count, value=1
    )
    metrics.add_metric(
        name="DrillDurationSeconds", unit=MetricUnit.Seconds, value=sum(record.phases.values())
    )
    if record.projection is not None:
        metrics.add_metric(
            name="DrillProjectedRestoreSeconds", unit=MetricUnit.Seconds, value=record.projection.seconds
        )


DEFAULT_DRILL_MAX_AGE_DAYS = 35.0


def _check_freshness(store: SnapshotStore, prefix: str, pool_id: str) -> dict[str, Any]:
    """The daily check: ages of the newest good full and incremental snapshots and of the
    newest passed drill, and DrillOverdue (1 when no drill passed in DRILL_MAX_AGE_DAYS)."""
    raw = os.environ.get("DRILL_MAX_AGE_DAYS") or str(DEFAULT_DRILL_MAX_AGE_DAYS)
    try:
        max_age = float(raw)
    except ValueError as exc:
        raise UsageError("DRILL_MAX_AGE_DAYS must be a number of days") from exc
    found = freshness(store, prefix, pool_id, max_drill_age_days=max_age)
    if found.full_age_seconds is not None:
        metrics.add_metric(
            name="LastFullSnapshotAgeSeconds", unit=MetricUnit.Seconds, value=found.full_age_seconds
        )
    if found.incremental_age_seconds is not None:
        metrics.add_metric(
            name="LastIncrementalSnapshotAgeSeconds",
            unit=MetricUnit.Seconds,
            value=found.incremental_age_seconds,
        )
    if found.drill_age_days is not None:
        metrics.add_metric(name="LastDrillAgeDays", unit=MetricUnit.Count, value=found.drill_age_days)
    metrics.add_metric(name="DrillOverdue", unit=MetricUnit.Count, value=1 if found.drill_overdue else 0)
    logger.info("freshness checked", extra=found.model_dump())
    return {"status": "complete", "check": True, **found.model_dump()}


# --------------------------------------------------------------------------- erasure


class ForgetEvent(BaseModel):
    """`{"usernames": [...], "subs": [...], "delete_from_pool": false}`: the people to erase
    from USER_POOL_ID's backups. The event is the one place their identifiers appear: it is
    never logged, and the answer holds counts and ids only."""

    model_config = ConfigDict(extra="forbid")

    usernames: list[str] = Field(default_factory=list, max_length=1000)
    subs: list[str] = Field(default_factory=list, max_length=1000)
    delete_from_pool: StrictBool = False


def forget_handler(
    event: Any, context: Any, settings: Settings | None = None, runtime: Runtime | None = None
) -> dict[str, Any]:
    """Erase people from every snapshot and object version of the pool (forget.py)."""
    from .forget import Forget

    request = _parse(event, ForgetEvent, "forget")
    settings = settings or get_settings()
    if not settings.user_pool_id:
        raise UsageError("USER_POOL_ID is not set")
    rt = runtime or Runtime(settings)
    # A failure raises: ForgetErrorsAlarm watches the function's Errors.
    result = Forget(
        rt.store,
        settings.user_pool_id,
        prefix=settings.backup_prefix.strip("/"),
        usernames=request.usernames,
        subs=request.subs,
        gateway=rt.gateway if request.delete_from_pool else None,
        delete_from_pool=request.delete_from_pool,
    ).run()
    logger.info(
        "forget finished",
        extra={
            "erasure_id": result.erasure_id,
            "status": result.status,
            "snapshots_rewritten": result.snapshots_rewritten,
            "versions_deleted": result.versions_deleted,
            "versions_locked": result.versions_locked,
        },
    )
    return result.model_dump(mode="json")
