"""What the end-to-end tests share: one local AWS server per test module, the environment an
operator's shell would have against it, and clients to look at what the CLI did."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from cognito_local.server import LocalAws


@pytest.fixture(scope="module")
def local() -> Iterator[LocalAws]:
    with LocalAws() as server:
        yield server


@pytest.fixture
def env(local: LocalAws) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=local.endpoint_url,
        AWS_ACCESS_KEY_ID="e2e",
        AWS_SECRET_ACCESS_KEY="e2e",
        AWS_REGION="us-east-1",
        COGNITO_BACKUP_SIGNING_KEY=local.signing_key(),  # an ARN: called in its own region
    )
    return env


@pytest.fixture
def clients(local: LocalAws) -> tuple[Any, Any]:
    session = boto3.session.Session(
        aws_access_key_id="e2e", aws_secret_access_key="e2e", region_name="us-east-1"
    )
    return (
        session.client("cognito-idp", endpoint_url=local.endpoint_url),
        session.client("s3", endpoint_url=local.endpoint_url),
    )
