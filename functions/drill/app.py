"""Restore drill Lambda: one step of a drill, driven by DrillStateMachine (monthly by default).

The first step picks the newest snapshot that passed validation, checks it and creates the
scratch pool; the next ones restore into it until done ("incomplete" until then), then record
the drill in S3 and delete the pool. A failed drill raises, so the execution fails and alarms.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognito_backup.handlers import drill_handler
from cognito_backup.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return drill_handler(event, context)
