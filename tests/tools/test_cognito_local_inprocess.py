"""Strict Cognito inside mock_aws(): each rule answered as Cognito would, through a real boto3 client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import handlers
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from cognito_local.inprocess import strict_cognito
from cognito_local.seed import create_pool

REGION = "us-east-1"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def client(config: Config = NO_RETRY, session: Any = boto3) -> Any:
    return session.client("cognito-idp", region_name=REGION, config=config)


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(caught.value.response["Error"]["Code"])


def new_user(c: Any, pool: str, username: str, **attributes: str) -> None:
    c.admin_create_user(
        UserPoolId=pool,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )


@pytest.mark.usefixtures("aws")
class TestRules:
    @pytest.mark.parametrize("op", ["list_users", "list_groups"])
    def test_a_page_above_60_is_invalid_and_60_is_fine(self, op: str) -> None:
        with strict_cognito():
            c = client()
            pool = create_pool(c, "p")
            getattr(c, op)(UserPoolId=pool, Limit=60)
            assert error_code(getattr(c, op), UserPoolId=pool, Limit=61) == "InvalidParameterException"

    def test_a_page_above_60_of_group_members_is_invalid(self) -> None:
        with strict_cognito():
            c = client()
            pool = create_pool(c, "p")
            c.create_group(UserPoolId=pool, GroupName="g")
            c.list_users_in_group(UserPoolId=pool, GroupName="g", Limit=60)
            code = error_code(c.list_users_in_group, UserPoolId=pool, GroupName="g", Limit=100)
            assert code == "InvalidParameterException"

    @pytest.mark.parametrize("attribute", ["sub", "identities", "tenant", "shoe_size", "custom:undefined"])
    def test_create_user_with_an_attribute_cognito_refuses_is_invalid_and_creates_nothing(
        self, attribute: str
    ) -> None:
        with strict_cognito():
            c = client()
            pool = create_pool(c, "p")
            code = error_code(new_user, c=c, pool=pool, username="ann", **{attribute: "x"})
            assert code == "InvalidParameterException"
            assert c.list_users(UserPoolId=pool)["Users"] == []

    def test_create_user_may_set_immutable_custom_attributes(self) -> None:
        with strict_cognito():
            c = client()
            pool = create_pool(c, "p")
            new_user(c, pool, "ann", **{"custom:employee_id": "E1", "custom:tenant": "t", "email": "a@x.org"})
            got = c.admin_get_user(UserPoolId=pool, Username="ann")["UserAttributes"]
            assert {"Name": "custom:employee_id", "Value": "E1"} in got

    @pytest.mark.parametrize("attribute", ["custom:employee_id", "sub"])
    def test_update_of_an_immutable_attribute_is_invalid_and_changes_nothing(self, attribute: str) -> None:
        with strict_cognito():
            c = client()
            pool = create_pool(c, "p")
            new_user(c, pool, "ann", **{"custom:employee_id": "E1"})
            before = c.admin_get_user(UserPoolId=pool, Username="ann")["UserAttributes"]
            code = error_code(
                c.admin_update_user_attributes,
                UserPoolId=pool,
                Username="ann",
                UserAttributes=[{"Name": attribute, "Value": "changed"}],
            )
            assert code == "InvalidParameterException"
            assert c.admin_get_user(UserPoolId=pool, Username="ann")["UserAttributes"] == before

    def test_update_of_a_mutable_custom_attribute_is_fine(self) -> None:
        with strict_cognito():
            c = client()
            pool = create_pool(c, "p")
            new_user(c, pool, "ann", **{"custom:level": "1"})
            c.admin_update_user_attributes(
                UserPoolId=pool, Username="ann", UserAttributes=[{"Name": "custom:level", "Value": "2"}]
            )

    def test_moto_alone_accepts_what_the_strict_layer_refuses(self) -> None:
        c = client()
        pool = create_pool(c, "p")
        c.list_users(UserPoolId=pool, Limit=100)
        new_user(c, pool, "ann", sub="forged", **{"custom:undefined": "x"})
        c.admin_update_user_attributes(
            UserPoolId=pool, Username="ann", UserAttributes=[{"Name": "custom:employee_id", "Value": "x"}]
        )


@pytest.mark.usefixtures("aws")
class TestQuotas:
    def test_a_throttled_call_is_a_genuine_400_and_never_reaches_moto(self) -> None:
        with strict_cognito(quotas={"UserCreation": 1}):
            c = client()
            pool = create_pool(c, "p")
            new_user(c, pool, "first")
            with pytest.raises(ClientError) as caught:
                new_user(c, pool, "second")
            response = caught.value.response
            assert response["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert [u["Username"] for u in c.list_users(UserPoolId=pool)["Users"]] == ["first"]

    def test_standard_retries_ride_out_a_throttle(self) -> None:
        # The engine's clock moves 1/32 s per reading (a quarter of a token at 8/s), not with
        # the wall: on a loaded machine the bucket must not refill between the drain and the
        # retry. Binary fractions, so that no float rounding decides whether a token is whole.
        ticks = iter(range(1_000_000))
        with strict_cognito(quotas={"UserRead": 8}, clock=lambda: next(ticks) / 32) as engine:
            c = client()
            pool = create_pool(c, "p")
            new_user(c, pool, "ann")
            while True:  # drain the bucket
                try:
                    c.admin_get_user(UserPoolId=pool, Username="ann")
                except ClientError:
                    break
            throttled = engine.stats()["categories"]["UserRead"]["throttled"]
            retrying = client(Config(retries={"mode": "standard", "max_attempts": 10}))
            got = retrying.admin_get_user(UserPoolId=pool, Username="ann")
            assert got["Username"] == "ann"
            assert got["ResponseMetadata"]["RetryAttempts"] >= 1
            assert engine.stats()["categories"]["UserRead"]["throttled"] > throttled

    def test_quotas_can_be_paused_while_seeding(self) -> None:
        with strict_cognito(quotas={"UserCreation": 1}) as engine:
            c = client()
            pool = create_pool(c, "p")
            with engine.quotas_paused():
                for i in range(5):
                    new_user(c, pool, f"u{i}")
            new_user(c, pool, "after")  # the paused calls took no tokens
            assert error_code(new_user, c=c, pool=pool, username="late") == "TooManyRequestsException"

    def test_latency_slows_every_cognito_call(self) -> None:
        with strict_cognito(latency=0.05):
            c = client()
            started = time.perf_counter()
            pool = create_pool(c, "p")
            c.list_users(UserPoolId=pool)
            c.list_groups(UserPoolId=pool)
            assert time.perf_counter() - started >= 0.15


@pytest.mark.usefixtures("aws")
class TestHook:
    def test_the_hook_covers_the_default_session_new_sessions_and_given_clients(self) -> None:
        before = client()  # created before the context, so boto3.DEFAULT_SESSION exists
        pool = create_pool(before, "p")
        with strict_cognito(clients=[before]):
            for c in (before, client(), client(session=boto3.Session())):
                assert error_code(c.list_users, UserPoolId=pool, Limit=61) == "InvalidParameterException"

    def test_the_hook_is_removed_on_exit(self) -> None:
        with strict_cognito() as engine:
            inside = client()
            pool = create_pool(inside, "p")
        assert not any(spec[0].startswith("before-send.cognito") for spec in handlers.BUILTIN_HANDLERS)
        inside.list_users(UserPoolId=pool, Limit=100)
        client().list_users(UserPoolId=pool, Limit=100)
        assert "ListUsers" not in engine.stats()["operations"]

    def test_other_services_pass_untouched(self) -> None:
        with strict_cognito(quotas={k: 0 for k in ("UserList", "UserCreation")}) as engine:
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket="strict-test")
            s3.put_object(Bucket="strict-test", Key="k", Body=b"x")
            assert s3.get_object(Bucket="strict-test", Key="k")["Body"].read() == b"x"
            assert engine.stats()["total"]["calls"] == 0
