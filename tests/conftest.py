"""Shared fixtures: moto in-process AWS, a versioned bucket, pools, a fake Lambda context."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cognito_backup.aws import AwsClients
from cognito_backup.cognito import CognitoGateway
from cognito_backup.pacing import Pacer
from cognito_backup.signing import KmsMac, ManifestSigning
from cognito_backup.store import SnapshotStore
from cognito_local.inprocess import moto_extras
from cognito_local.keys import create_signing_key
from cognito_local.server import LocalAws

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
TEMPLATE = REPO / "template.yaml"
BUCKET = "cognito-backup-test"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach AWS: fake credentials, a fixed region, no endpoint override."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CognitoBackup")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cognito-backup")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    # moto lacks UI customisation, branding, log delivery and risk configuration: answered
    # by the local Cognito (cognito_local.extras), as a pool export reads them.
    with mock_aws(), moto_extras():
        yield AwsClients(region="us-east-1")


@pytest.fixture
def bucket(aws: AwsClients) -> str:
    s3 = aws.s3()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


@pytest.fixture
def signing_key(aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ARN of an HMAC_256 key in moto's KMS, also set as SIGNING_KEY_ARN for the handlers
    (what the template gives every function that reads or writes manifests) and as
    COGNITO_BACKUP_SIGNING_KEY for the CLI run in-process."""
    arn = create_signing_key(aws.kms())
    monkeypatch.setenv("SIGNING_KEY_ARN", arn)
    monkeypatch.setenv("COGNITO_BACKUP_SIGNING_KEY", arn)
    return arn


@pytest.fixture
def signing(aws: AwsClients, signing_key: str) -> ManifestSigning:
    return ManifestSigning(KmsMac(aws.kms(), signing_key))


@pytest.fixture
def store(aws: AwsClients, bucket: str, signing: ManifestSigning) -> SnapshotStore:
    """Signs every manifest it writes and verifies every one it reads, with `signing_key`."""
    return SnapshotStore(aws.s3(), bucket, signing=signing)


@pytest.fixture
def gateway(aws: AwsClients) -> CognitoGateway:
    """Unpaced: moto answers instantly; pacing has its own tests."""
    return CognitoGateway(aws.cognito(), Pacer(quotas={}), base_delay=0.0)


@pytest.fixture
def restore_logger() -> Iterator[None]:
    """Give back the Powertools logger as it was (the CLI sends it to stderr at WARNING)."""
    from cognito_backup.observability import logger

    handler = logger.registered_handler
    stream, level = handler.stream, logger.log_level
    yield
    handler.setStream(stream)
    logger.setLevel(level)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


def load_handler(name: str) -> ModuleType:
    """functions/<name>/app.py as Lambda loads it: a module of its own, not part of a package."""
    path = REPO / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"{name}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plain(value: Any) -> Any:
    """cfn_flip's ordered dicts as plain dicts and lists, so that == and | behave as usual."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def load_template() -> dict[str, Any]:
    """template.yaml with its short intrinsic tags (!Ref, !Sub, !GetAtt A.B ...) in their long
    form ({"Ref": ...}, {"Fn::GetAtt": ["A", "B"]}), as cfn_flip reads them. A fresh copy each
    time (parsing it takes a second)."""
    return copy.deepcopy(_parsed_template(TEMPLATE.read_text(encoding="utf-8")))


@functools.lru_cache(maxsize=1)
def _parsed_template(text: str) -> dict[str, Any]:
    from cfn_flip import load_yaml

    loaded: dict[str, Any] = plain(load_yaml(text))
    return loaded


# ---------------------------------------------------------------- end to end (tests/e2e)
# One local AWS server per test module, the environment an operator's shell would have
# against it, and clients to look at what the CLI did. (Here, not in tests/e2e/conftest.py:
# test modules import this file as `conftest`, and a second one would shadow it.)


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
