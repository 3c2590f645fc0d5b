"""The one place boto3 clients are built, so tests and the CLI can point them elsewhere."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"


class AwsClients:
    """Builds (once, thread-safely) the clients a run needs.

    `endpoint_url` wins over `AWS_ENDPOINT_URL`, which boto3 also honours by itself.
    Cognito calls get no botocore retries: the Cognito gateway retries every transient error
    itself (throttling paced per quota category, 5xx, resets, timeouts) and counts it. S3 calls
    use botocore's standard mode, which retries 500/502/503/504, throttling (SlowDown) and every
    connection error with backoff (tests/integration/test_store_retries.py); the store reads
    a whole object again when its body is cut mid-read, which botocore does not retry.
    """

    def __init__(self, region: str | None = None, endpoint_url: str | None = None) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not self.region:
            self.region = DEFAULT_REGION
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self._session = boto3.session.Session(region_name=self.region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str, config: Config) -> Any:
        with self._lock:
            if service not in self._clients:
                session: Any = self._session  # boto3's overloads want a literal service name
                self._clients[service] = session.client(
                    service, endpoint_url=self.endpoint_url, config=config
                )
            return self._clients[service]

    def cognito(self) -> Any:
        return self._client(
            "cognito-idp",
            Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=64),
        )

    def s3(self) -> Any:
        return self._client(
            "s3",
            Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32),
        )

    def kms(self, region: str | None = None) -> Any:
        """KMS for the manifest signatures (GenerateMac, VerifyMac): botocore's standard mode
        retries 5xx (KMSInternalException), throttling and connection errors, as for S3.

        `region`: the key's own (a key is called in its region), when it differs from the run's,
        e.g. a restore that rebuilds a pool in another region with the source's signing key.
        """
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        if not region or region == self.region:
            return self._client("kms", config)
        with self._lock:
            name = f"kms:{region}"
            if name not in self._clients:
                session: Any = self._session
                self._clients[name] = session.client(
                    "kms", region_name=region, endpoint_url=self.endpoint_url, config=config
                )
            return self._clients[name]

    def sts(self) -> Any:
        """GetCallerIdentity (needs no permission): the account a rebuilt pool lands in."""
        return self._client("sts", Config(retries={"mode": "standard", "max_attempts": 5}))

    def events(self) -> Any:
        return self._client("events", Config(retries={"mode": "standard", "max_attempts": 5}))
