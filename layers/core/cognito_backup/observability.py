"""The one Logger, Tracer and Metrics of the package (Powertools), and the handler glue.

Logs carry ids, counts and durations, never attribute values.

`tracer` is made on first use (`from cognito_backup.observability import tracer`, as every
handler does): building a Tracer imports the X-Ray SDK, ~0.4 s that the CLI, which never
traces, would otherwise pay at every start (docs/benchmarks.md, "process start").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    tracer: Tracer

SERVICE = "cognito-backup"
NAMESPACE = "CognitoBackup"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def __getattr__(name: str) -> Any:
    if name == "tracer":
        from aws_lambda_powertools import Tracer

        made = globals()["tracer"] = Tracer(service=SERVICE)  # once: the next lookup finds it
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
