"""Restore Lambda: invoked on demand (`sam remote invoke`) or by RestoreStateMachine.

Answers status and counts (the report is in S3); "incomplete" means it stopped before its
deadline and the same event continues it. A restore that finished with failures raises, so
the invocation fails.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognito_backup.handlers import restore_handler
from cognito_backup.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return restore_handler(event, context)
