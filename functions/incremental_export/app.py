"""Incremental export Lambda: scheduled hourly; a full export when there is no valid base."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognito_backup.handlers import export_handler
from cognito_backup.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return export_handler(event, context, incremental=True)
