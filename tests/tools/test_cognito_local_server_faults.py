"""Injected faults over HTTP: the server's 500s before and after the effect, resets, storms, CLI flags."""

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
from botocore.exceptions import ClientError, ConnectionClosedError

from cognito_local.faults import Faults
from cognito_local.seed import create_pool
from cognito_local.server import LocalAws

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
CREATE_ONLY = frozenset({"AdminCreateUser"})


def client(endpoint_url: str, config: Config = NO_RETRY) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=config,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create(c: Any, pool: str, name: str) -> None:
    c.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")


def usernames(c: Any, pool: str) -> list[str]:
    return sorted(u["Username"] for u in c.list_users(UserPoolId=pool)["Users"])


def test_a_500_before_the_effect_creates_nothing() -> None:
    with LocalAws(faults=Faults(rate=1.0, after_effect=0.0, operations=CREATE_ONLY)) as local:
        c = client(local.endpoint_url)
        pool = create_pool(c, "p")
        with pytest.raises(ClientError) as caught:
            create(c, pool, "ann")
        assert caught.value.response["Error"]["Code"] == "InternalErrorException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert usernames(c, pool) == []
        assert local.engine.stats()["faults"]["operations"]["AdminCreateUser"]["before"] == 1


def test_a_500_after_the_effect_leaves_the_user_created() -> None:
    with LocalAws(faults=Faults(rate=1.0, after_effect=1.0, operations=CREATE_ONLY)) as local:
        c = client(local.endpoint_url)
        pool = create_pool(c, "p")
        with pytest.raises(ClientError) as caught:
            create(c, pool, "ann")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert usernames(c, pool) == ["ann"]
        assert local.engine.stats()["faults"]["total"]["after"] == 1


def test_a_reset_drops_the_connection_creates_nothing_and_the_server_goes_on() -> None:
    with LocalAws(faults=Faults(reset_rate=1.0, operations=CREATE_ONLY)) as local:
        c = client(local.endpoint_url)
        pool = create_pool(c, "p")
        with pytest.raises(ConnectionClosedError):
            create(c, pool, "ann")
        assert usernames(c, pool) == []  # the next call, on a new connection, is served
        assert local.engine.stats()["faults"]["operations"]["AdminCreateUser"]["reset"] == 1


def test_a_storm_on_the_servers_clock_and_the_stats_endpoint() -> None:
    now = [0.0]
    faults = Faults(storm_every=30.0, storm_seconds=10.0, storm_fraction=0.1)
    with LocalAws(quotas={"UserList": 10}, faults=faults, clock=lambda: now[0]) as local:
        c = client(local.endpoint_url)
        pool = create_pool(c, "p")
        now[0] = 35.0
        c.list_users(UserPoolId=pool)  # one call a second in the storm
        with pytest.raises(ClientError, match="TooManyRequestsException"):
            c.list_users(UserPoolId=pool)
        with urllib.request.urlopen(f"{local.endpoint_url}/_cognito_local/stats") as answer:
            assert json.load(answer)["faults"]["operations"]["ListUsers"]["storm"] == 1


def test_botocore_retries_ride_out_every_kind_and_each_call_takes_effect_once() -> None:
    # seed 7 gives 4 failures before the effect, 3 after, 4 resets over these 25 creations (the draw
    # is the same in every run and over both transports: tests/unit/test_cognito_local_faults.py)
    faults = Faults(rate=0.25, reset_rate=0.1, seed=7, operations=CREATE_ONLY)
    with LocalAws(faults=faults) as local:
        c = client(local.endpoint_url, Config(retries={"mode": "standard", "max_attempts": 20}))
        pool = create_pool(c, "p")
        for i in range(25):
            try:
                create(c, pool, f"u{i:02d}")
            except ClientError as error:  # an earlier attempt's answer was lost after the effect
                assert error.response["Error"]["Code"] == "UsernameExistsException"
        assert usernames(c, pool) == [f"u{i:02d}" for i in range(25)]
        assert local.engine.stats()["faults"]["total"] == {"before": 4, "after": 3, "reset": 4, "storm": 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_module_takes_faults_as_flags() -> None:
    port = _free_port()
    flags = ["--reset-rate", "1", "--fault-operation", "ListGroups", "--fault-seed", "9"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cognito_local.server", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        c = client(f"http://127.0.0.1:{port}")
        pool = create_pool(c, "cli")
        c.list_users(UserPoolId=pool)
        with pytest.raises(ConnectionClosedError):
            c.list_groups(UserPoolId=pool)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_impossible_fault_flags_are_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cognito_local.server", "--fault-rate", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "rate" in done.stderr
