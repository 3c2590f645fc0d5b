"""Token buckets, deadlines and the gateway's retry on throttling."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import FakeClock

from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import AccessDeniedError, PoolNotFoundError
from cognito_backup.pacing import CountdownDeadline, Deadline, Pacer, TokenBucket


def test_token_bucket_holds_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(30.0, capacity=3, clock=clock, sleep=clock.sleep)
    for _ in range(300):
        bucket.acquire()
    # 300 calls at 30/s, less the initial burst of 3, take 9.9 s
    assert clock.now == pytest.approx(297 / 30, rel=0.01)


def test_penalize_empties_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, capacity=5, clock=clock, sleep=clock.sleep)
    bucket.penalize()
    assert bucket.acquire() == pytest.approx(0.1)


def test_pacer_ignores_unknown_categories() -> None:
    pacer = Pacer(quotas={})
    pacer.acquire("list_users")
    assert pacer.bucket("UserList") is None


def test_deadlines() -> None:
    clock = FakeClock()
    d = Deadline(10, clock=clock)
    assert not d.expired()
    clock.now = 10
    assert d.expired() and d.remaining() == 0
    assert not Deadline.never().expired()
    countdown = CountdownDeadline(2)
    assert [countdown.expired() for _ in range(3)] == [False, False, True]

    class Ctx:
        def get_remaining_time_in_millis(self) -> int:
            return 120_000

    remaining = Deadline.from_lambda_context(Ctx(), margin_seconds=60).remaining()
    assert remaining is not None and 59 < remaining <= 60


class ScriptedClient:
    """Answers each call with the next scripted error code, then success."""

    class meta:
        region_name = "us-east-1"

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        self.calls = 0

    def describe_user_pool(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.codes:
            code = self.codes.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": "x"}}, "DescribeUserPool")
        return {"UserPool": {"Id": "p"}}


def test_throttling_is_retried_and_counted_not_failed() -> None:
    client = ScriptedClient(["TooManyRequestsException"] * 3)
    gw = CognitoGateway(client, Pacer(quotas={}), sleep=lambda s: None)
    assert gw.describe_pool("p") == {"Id": "p"}
    assert client.calls == 4 and gw.stats.throttled == 3


def test_errors_are_mapped_by_code() -> None:
    gw = CognitoGateway(ScriptedClient(["ResourceNotFoundException"]), Pacer(quotas={}), sleep=lambda s: None)
    with pytest.raises(PoolNotFoundError):
        gw.describe_pool("p")
    gw = CognitoGateway(ScriptedClient(["AccessDeniedException"]), Pacer(quotas={}), sleep=lambda s: None)
    with pytest.raises(AccessDeniedError):
        gw.describe_pool("p")


def test_retries_give_up_eventually() -> None:
    client = ScriptedClient(["TooManyRequestsException"] * 50)
    gw = CognitoGateway(client, Pacer(quotas={}), max_attempts=5, sleep=lambda s: None)
    with pytest.raises(Exception, match="TooManyRequestsException"):
        gw.describe_pool("p")
    assert client.calls == 5
