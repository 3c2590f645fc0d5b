"""The one Logger, Tracer and Metrics of the package (Powertools), and the handler glue.

Logs carry ids, counts and durations, never attribute values.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "cognito-backup"
NAMESPACE = "CognitoBackup"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
