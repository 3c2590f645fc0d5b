"""Strict Cognito over HTTP: moto's server on 127.0.0.1 behind the same rules engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from cognito_local.seed import create_pool
from cognito_local.server import LocalAws

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=10)


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=NO_RETRY,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_server_throttles_validates_serves_normal_calls_and_s3_and_stops_on_exit() -> None:
    with LocalAws(quotas={"UserRead": 2}) as local:
        assert local.endpoint_url.startswith("http://127.0.0.1:")
        c = client("cognito-idp", local.endpoint_url)
        pool = create_pool(c, "served")
        c.admin_create_user(UserPoolId=pool, Username="ann", MessageAction="SUPPRESS")

        # Normal calls, then the throttle once the one-second bucket is empty.
        assert c.admin_get_user(UserPoolId=pool, Username="ann")["Username"] == "ann"
        c.admin_get_user(UserPoolId=pool, Username="ann")
        with pytest.raises(ClientError) as throttled:
            c.admin_get_user(UserPoolId=pool, Username="ann")
        assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        # A validation error, and moto's own answers still come through.
        with pytest.raises(ClientError) as invalid:
            c.list_users(UserPoolId=pool, Limit=61)
        assert invalid.value.response["Error"]["Code"] == "InvalidParameterException"
        assert [u["Username"] for u in c.list_users(UserPoolId=pool, Limit=60)["Users"]] == ["ann"]

        # S3 through the same endpoint.
        s3 = client("s3", local.endpoint_url)
        s3.create_bucket(Bucket="served-bucket")
        s3.put_object(Bucket="served-bucket", Key="k", Body=b"body")
        assert s3.get_object(Bucket="served-bucket", Key="k")["Body"].read() == b"body"

        stats = local.engine.stats()
        assert stats["categories"]["UserRead"] == {"calls": 3, "throttled": 1, "invalid": 0}
        with urllib.request.urlopen(f"{local.endpoint_url}/_cognito_local/stats") as answer:
            assert json.load(answer)["operations"]["ListUsers"]["invalid"] == 1
        endpoint = local.endpoint_url

    assert not local.running
    with pytest.raises(EndpointConnectionError):
        c.list_users(UserPoolId=pool)
    assert endpoint


def test_aws_endpoint_url_points_both_s3_and_cognito_at_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalAws() as local:
        monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        session = boto3.Session(region_name="us-east-1")
        pool = create_pool(session.client("cognito-idp"), "by-env")
        session.client("s3").create_bucket(Bucket="by-env-bucket")
        assert local.engine.stats()["operations"]["CreateUserPool"]["calls"] == 1
        assert pool.startswith("us-east-1_")


def test_the_server_stops_when_the_block_raises() -> None:
    local = LocalAws()
    with pytest.raises(RuntimeError, match="boom"), local:
        assert local.running
        raise RuntimeError("boom")
    assert not local.running


def test_lenient_server_behaves_like_plain_moto() -> None:
    with LocalAws(strict=False, quotas={"UserList": 0}) as local:
        c = client("cognito-idp", local.endpoint_url)
        pool = create_pool(c, "plain")
        c.list_users(UserPoolId=pool, Limit=100)
        assert local.engine.stats()["operations"]["ListUsers"]["calls"] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_module_runs_a_server_until_interrupted() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cognito_local.server", "--port", str(port), "--quota", "UserList=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        c = client("cognito-idp", f"http://127.0.0.1:{port}")
        pool = create_pool(c, "cli")
        c.list_users(UserPoolId=pool)
        with pytest.raises(ClientError, match="TooManyRequestsException"):
            c.list_users(UserPoolId=pool)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
