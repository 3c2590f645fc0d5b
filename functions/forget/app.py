"""Erasure Lambda (`sam remote invoke ForgetFunction`): removes people from every snapshot and
object version of the pool, records the erasure in the ledger (keyed hashes only), and answers
counts. The event names the people; it is never logged (no POWERTOOLS_LOGGER_LOG_EVENT here).
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognito_backup.handlers import forget_handler
from cognito_backup.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return forget_handler(event, context)
