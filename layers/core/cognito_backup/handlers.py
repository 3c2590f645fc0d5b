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
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import BackupError, SignInRefusedError, UsageError, UserNotFoundError
from .export import ExportOptions, run_export
from .migrate import MigrationEvent, MigrationSource, migrate_user
from .models import utcnow
from .notify import publish_verdict
from .observability import logger, metrics
from .pacing import Deadline
from .restore import run_restore
from .restore_models import RestoreCounts, RestoreEvent, RestoreReport, RestoreStatus
from .runtime import Runtime
from .settings import Settings, get_settings
from .store import MANIFEST_NAME, SnapshotStore, layout_pool_id, layout_snapshot_id, standby_key
from .validate import SnapshotInvalidError, ValidationReport, report_key, validate_snapshot

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
    rt = Runtime(settings, quota_share=settings.export_quota_share)  # headroom for the app
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
            failures=len(report.failures),
            admin_action=len(report.admin_action),
            plan=plan,
            report_key=report.report_key,
            checkpoint_key=report.checkpoint_key,
            cognito_calls=report.cognito_calls,
            cognito_throttled=report.cognito_throttled,
            verified=report.verified,
            differences=report.counts.differences,
        )


class RestoreFailedError(BackupError):
    """The restore finished with failures; its report in S3 says which (ids and counts only here)."""

    def __init__(self, answer: RestoreAnswer) -> None:
        super().__init__(
            f"restore of {answer.snapshot_id} into {answer.target_user_pool_id} failed: "
            f"{answer.failures} failure(s), {answer.counts.failed} user(s) failed, "
            f"{answer.differences} difference(s) left; "
            f"report: {answer.report_key}"
        )
        self.answer = answer


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
    rt = Runtime(settings)
    standby = _standby_of(request, settings, rt.store)
    if standby is not None and standby.newer_than(request.manifest_key):
        return standby.superseded(request).model_dump(mode="json")
    report = run_restore(
        rt.gateway,
        rt.store,
        request.manifest_key,
        request.target_user_pool_id,
        options=request.options(),
        deadline=Deadline.from_lambda_context(context, settings.deadline_margin_seconds),
    )
    answer = RestoreAnswer.of(report)
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
