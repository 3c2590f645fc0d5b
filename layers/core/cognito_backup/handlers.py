"""The logic behind the Lambda handlers, so that `functions/*/app.py` stay a few lines."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import UsageError
from .export import ExportOptions, run_export
from .observability import logger, metrics
from .pacing import Deadline
from .runtime import Runtime
from .settings import get_settings


class ScheduledEvent(BaseModel):
    """The EventBridge scheduled event, or the Step Functions loop's previous result."""

    model_config = ConfigDict(extra="allow")

    source: str | None = None
    status: str | None = None


def export_handler(event: dict[str, Any], context: Any, *, incremental: bool) -> dict[str, Any]:
    try:
        ScheduledEvent.model_validate(event)
    except ValidationError as exc:
        raise UsageError(f"malformed event: {exc.errors()[0]['loc']}") from exc
    settings = get_settings()
    if not settings.user_pool_id:
        raise UsageError("USER_POOL_ID is not set")
    rt = Runtime(settings)
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
