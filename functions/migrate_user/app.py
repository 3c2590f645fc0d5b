"""User-migration trigger of a new user pool (deployed when MigrationSourceUserPoolId is set).

Cognito invokes it for a sign-in or a password reset under a name the pool does not know; it
answers with the user's attributes from the source pool (the password checked there) or, for
a reset once the source is gone, from its newest validated snapshot. A wrong password or an
unknown user raises, and Cognito fails the sign-in. Never log the event: it holds the password.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognito_backup.handlers import migrate_user_handler
from cognito_backup.observability import logger, metrics, tracer


# Explicitly, whatever the environment says: the event holds a password (never logged) and the
# answer the user's attributes (never put in a trace).
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return migrate_user_handler(event)
