"""Injected faults through real boto3 clients, in-process: each kind as botocore sees it, and its effect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError
from moto import mock_aws

from cognito_local.faults import Faults
from cognito_local.inprocess import faulty_s3, strict_cognito
from cognito_local.seed import create_pool

REGION = "us-east-1"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
CREATE_ONLY = frozenset({"AdminCreateUser"})


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def client(service: str = "cognito-idp", config: Config = NO_RETRY) -> Any:
    return boto3.client(service, region_name=REGION, config=config)  # type: ignore[call-overload]


def create_ann(c: Any, pool: str) -> None:
    c.admin_create_user(UserPoolId=pool, Username="ann", MessageAction="SUPPRESS")


def usernames(c: Any, pool: str) -> list[str]:
    return [u["Username"] for u in c.list_users(UserPoolId=pool)["Users"]]


def internal_error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.usefixtures("aws")
class TestCognito:
    def test_a_500_before_the_effect_creates_nothing(self) -> None:
        with strict_cognito(faults=Faults(rate=1.0, after_effect=0.0, operations=CREATE_ONLY)) as engine:
            c = client()
            pool = create_pool(c, "p")
            with pytest.raises(ClientError) as caught:
                create_ann(c, pool)
            assert internal_error(caught) == ("InternalErrorException", 500)
            assert usernames(c, pool) == []
            assert engine.stats()["faults"]["operations"]["AdminCreateUser"]["before"] == 1

    def test_a_500_after_the_effect_leaves_the_user_created(self) -> None:
        with strict_cognito(faults=Faults(rate=1.0, after_effect=1.0, operations=CREATE_ONLY)) as engine:
            c = client()
            pool = create_pool(c, "p")
            with pytest.raises(ClientError) as caught:
                create_ann(c, pool)
            assert internal_error(caught) == ("InternalErrorException", 500)
            # Then moto applied the call: the user exists, and a retry finds it there
            assert c.admin_get_user(UserPoolId=pool, Username="ann")["Username"] == "ann"
            engine.faults = Faults()
            with pytest.raises(ClientError, match="UsernameExistsException"):
                create_ann(c, pool)
            assert engine.stats()["faults"]["operations"]["AdminCreateUser"]["after"] == 1

    def test_a_reset_is_a_dropped_connection_and_creates_nothing(self) -> None:
        with strict_cognito(faults=Faults(reset_rate=1.0, operations=CREATE_ONLY)) as engine:
            c = client()
            pool = create_pool(c, "p")
            with pytest.raises(ConnectionClosedError):
                create_ann(c, pool)
            assert usernames(c, pool) == []
            assert engine.stats()["faults"]["operations"]["AdminCreateUser"]["reset"] == 1

    def test_a_storm_throttles_on_the_given_clock(self) -> None:
        now = [0.0]
        faults = Faults(storm_every=60.0, storm_seconds=5.0, storm_fraction=0.1)
        with strict_cognito(quotas={"UserRead": 20}, faults=faults, clock=lambda: now[0]) as engine:
            c = client()
            pool = create_pool(c, "p")
            create_ann(c, pool)
            for _ in range(20):
                c.admin_get_user(UserPoolId=pool, Username="ann")
            now[0] = 61.0  # in the storm: 2 calls a second
            c.admin_get_user(UserPoolId=pool, Username="ann")
            c.admin_get_user(UserPoolId=pool, Username="ann")
            with pytest.raises(ClientError, match="TooManyRequestsException"):
                c.admin_get_user(UserPoolId=pool, Username="ann")
            assert engine.stats()["faults"]["operations"]["AdminGetUser"]["storm"] == 1

    def test_botocore_retries_ride_out_500s_and_resets_with_the_effect_applied_once(self) -> None:
        faults = Faults(rate=0.3, reset_rate=0.1, seed=2)
        with strict_cognito(faults=faults, enforce_quotas=False) as engine:
            c = client(config=Config(retries={"mode": "standard", "max_attempts": 20}))
            with engine.faults_paused():
                pool = create_pool(c, "p")
                c.create_group(UserPoolId=pool, GroupName="g")
            for i in range(30):
                c.admin_add_user_to_group(UserPoolId=pool, Username=_user(c, pool, f"u{i}"), GroupName="g")
            with engine.faults_paused():
                members = c.list_users_in_group(UserPoolId=pool, GroupName="g", Limit=60)["Users"]
            assert len(members) == 30
            total = engine.stats()["faults"]["total"]
            assert total["before"] and total["after"] and total["reset"]


def _user(c: Any, pool: str, name: str) -> str:
    """Create a user; an answer lost after the effect is fine when the user is there."""
    try:
        c.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")
    except ClientError as error:
        if error.response["Error"]["Code"] != "UsernameExistsException":
            raise
    return name


@pytest.mark.usefixtures("aws")
class TestS3:
    def test_each_kind_of_s3_fault_as_botocore_sees_it(self) -> None:
        s3 = client("s3")
        s3.create_bucket(Bucket="faulty-bucket")
        with faulty_s3(Faults(rate=1.0, after_effect=0.0, operations=frozenset({"PutObject"})), [s3]) as plan:
            with pytest.raises(ClientError) as caught:
                s3.put_object(Bucket="faulty-bucket", Key="before", Body=b"x")
            assert internal_error(caught) == ("InternalError", 500)
        assert "Contents" not in s3.list_objects_v2(Bucket="faulty-bucket")
        with faulty_s3(Faults(rate=1.0, after_effect=1.0, operations=frozenset({"PutObject"})), [s3]) as plan:
            with pytest.raises(ClientError) as caught:
                s3.put_object(Bucket="faulty-bucket", Key="after", Body=b"x")
            assert internal_error(caught) == ("InternalError", 500)
            assert (
                s3.get_object(Bucket="faulty-bucket", Key="after")["Body"].read() == b"x"
            )  # written all the same
            assert plan.stats()["operations"] == {
                "PutObject": {"before": 0, "after": 1, "reset": 0, "storm": 0}
            }
        with faulty_s3(Faults(reset_rate=1.0), [s3]), pytest.raises(ConnectionClosedError):
            s3.put_object(Bucket="faulty-bucket", Key="reset", Body=b"x")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="faulty-bucket")["Contents"]] == ["after"]
        s3.put_object(Bucket="faulty-bucket", Key="after-exit", Body=b"x")  # the hook is gone
