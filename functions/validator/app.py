"""Validator Lambda: S3 -> EventBridge "Object Created" for a snapshot's manifest.json.

Records the verdict (tag + report), emits SnapshotValid / SnapshotInvalid, and fails the
invocation when the snapshot is invalid, so that the Errors alarm fires.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognito_backup.handlers import validator_handler
from cognito_backup.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return validator_handler(event)
