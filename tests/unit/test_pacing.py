"""Token buckets, deadlines and the gateway's retry on throttling."""

from __future__ import annotations

from typing import Any

import botocore
import botocore.session
import pytest
from botocore.exceptions import ClientError
from conftest import FakeClock

from cognito_backup.cognito import CognitoGateway
from cognito_backup.errors import AccessDeniedError, PoolNotFoundError
from cognito_backup.pacing import (
    CUT_FACTOR,
    DEFAULT_QUOTAS,
    FAST_RECOVERY_SHARE,
    FLOOR_SHARE,
    HOLD_SECONDS,
    KNEE_SHARE,
    OPERATION_CATEGORY,
    PROBE_SHARE,
    RECOVERY_SHARE,
    CountdownDeadline,
    Deadline,
    LearningBucket,
    Pacer,
    TokenBucket,
)
from cognito_local.strict import DEFAULT_QUOTAS as STRICT_QUOTAS
from cognito_local.strict import OPERATION_CATEGORY as STRICT_CATEGORY
from cognito_local.strict import TokenBucket as ServiceBucket


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


# ------------------------------------------------------------------ learning (AIMD)


def learning(ceiling: float = 30.0) -> tuple[FakeClock, LearningBucket]:
    clock = FakeClock()
    return clock, LearningBucket(ceiling, burst_seconds=0.8, clock=clock, sleep=clock.sleep)


def test_a_throttle_cuts_the_rate_once_per_overload() -> None:
    _, bucket = learning(30.0)
    in_flight = [bucket.take() for _ in range(3)]
    bucket.penalize(in_flight[0])
    assert bucket.rate == pytest.approx(30.0 * CUT_FACTOR)
    # The other calls in flight come back throttled too: the same overload, one cut
    bucket.penalize(in_flight[1])
    bucket.penalize(in_flight[2])
    assert bucket.rate == pytest.approx(30.0 * CUT_FACTOR) and bucket.cuts == 1
    # A call let go after the cut and throttled all the same: the rate is still too high
    bucket.penalize(bucket.take())
    assert bucket.rate == pytest.approx(30.0 * CUT_FACTOR**2) and bucket.cuts == 2


def test_the_rate_never_falls_below_its_floor() -> None:
    _, bucket = learning(30.0)
    for _ in range(50):
        bucket.penalize(bucket.take())
    assert bucket.rate == pytest.approx(30.0 * FLOOR_SHARE)
    assert bucket.acquire() <= 1 / bucket.rate + 1e-9  # still paced, never stalled


def test_recovery_is_fast_to_the_knee_slow_through_it_and_stops_at_the_configured_rate() -> None:
    clock, bucket = learning(30.0)
    bucket.penalize()  # the knee is 30/s, the rate 21/s
    cut = bucket.rate
    assert bucket.knee == 30.0
    clock.sleep(HOLD_SECONDS)
    bucket.acquire()
    assert bucket.rate == pytest.approx(cut)  # held: no recovery right after a throttle
    # Fast back to just under the knee: 21 -> 25.5 takes 0.3 s at 15/s
    clock.sleep(0.2)
    bucket.acquire()
    assert bucket.rate == pytest.approx(cut + 0.2 * FAST_RECOVERY_SHARE * 30.0)
    clock.sleep(0.1 + 1.0)
    bucket.acquire()
    assert bucket.rate == pytest.approx(KNEE_SHARE * 30.0 + 1.0 * PROBE_SHARE * 30.0, rel=1e-3)
    clock.sleep(600.0)
    bucket.acquire()
    assert bucket.rate == 30.0 and bucket.capacity == pytest.approx(24.0)


def test_above_the_knee_recovery_is_additive() -> None:
    # Given an overload that began at 20/s (the knee): cut to 14/s
    clock, bucket = learning(30.0)
    bucket.rate = 20.0
    bucket.penalize()
    assert bucket.knee == 20.0 and bucket.rate == pytest.approx(14.0)
    # When the hold, the fast climb (14 -> 17 at 15/s: 0.2 s), the probe (17 -> 20 at 0.3/s:
    # 10 s) and 2 s more have passed
    clock.sleep(HOLD_SECONDS + 0.2 + 10.0 + 2.0)
    bucket.acquire()
    # Then the rate climbs RECOVERY_SHARE of the configured rate a second above the knee
    assert bucket.rate == pytest.approx(20.0 + 2.0 * RECOVERY_SHARE * 30.0)


def test_a_second_cut_of_one_overload_keeps_its_knee() -> None:
    clock, bucket = learning(30.0)
    bucket.penalize(bucket.take())
    bucket.penalize(bucket.take())  # a call let go after the cut, throttled too: cut again
    assert bucket.cuts == 2 and bucket.rate == pytest.approx(30.0 * CUT_FACTOR**2)
    assert bucket.knee == 30.0  # where the overload began, not where the cuts got to
    clock.sleep(HOLD_SECONDS + 5.0)
    bucket.penalize()  # after the hold: a new overload, at the rate recovered to
    fast = (KNEE_SHARE * 30.0 - 30.0 * CUT_FACTOR**2) / (FAST_RECOVERY_SHARE * 30.0)
    assert bucket.knee == pytest.approx(KNEE_SHARE * 30.0 + (5.0 - fast) * PROBE_SHARE * 30.0)


def test_a_throttle_during_recovery_restarts_the_hold() -> None:
    clock, bucket = learning(30.0)
    bucket.penalize()
    clock.sleep(HOLD_SECONDS + 1.0)
    bucket.acquire()
    climbed = bucket.rate
    assert climbed > 30.0 * CUT_FACTOR
    bucket.penalize()
    after_cut = bucket.rate
    assert after_cut == pytest.approx(climbed * CUT_FACTOR)
    clock.sleep(HOLD_SECONDS - 0.1)
    bucket.acquire()
    assert bucket.rate == pytest.approx(after_cut)


def test_paced_calls_never_exceed_the_configured_rate() -> None:
    # Given a bucket that was cut and then left alone for a long time
    clock, bucket = learning(30.0)
    bucket.penalize()
    clock.sleep(1000.0)
    # When 900 calls are made back to back
    start = clock.now
    for _ in range(900):
        bucket.acquire()
    # Then they take at least the configured rate's time, less one burst
    assert clock.now - start >= (900 - 24) / 30.0 - 1e-6


def test_a_lower_service_quota_than_configured_converges_with_few_throttles() -> None:
    # Given the pacer believes 30/s while the service gives 10/s (the strict engine's bucket)
    clock, bucket = learning(30.0)
    service = ServiceBucket(10.0, clock.now)
    admitted = throttled = 0
    # When calls go back to back for two simulated minutes, a throttled one retried
    while admitted < 1200:
        epoch = bucket.take()
        if service.take(clock.now + 0.05):
            admitted += 1
        else:
            throttled += 1
            bucket.penalize(epoch)
            clock.sleep(0.1)
    # Then the service's rate is used, and throttled calls stay a small share
    assert admitted / clock.now == pytest.approx(10.0, rel=0.1)
    assert throttled / (admitted + throttled) < 0.05


def test_two_categories_that_share_one_budget_converge_to_it() -> None:
    # Given memberships paced as UserResourceUpdate and disables as UserUpdate, 25/s each, while
    # the service counts both in UserUpdate's one budget of 25/s (issue 15's other world)
    clock = FakeClock()
    pacer = Pacer(quotas={"UserResourceUpdate": 25.0, "UserUpdate": 25.0}, clock=clock, sleep=clock.sleep)
    service = ServiceBucket(25.0, clock.now)
    admitted = throttled = 0
    # When a restore's mix (nine memberships to a disable) goes back to back for five simulated
    # minutes, a throttled call retried after 50-100 ms
    while clock.now < 300.0:
        op = "admin_disable_user" if admitted % 10 == 9 else "admin_add_user_to_group"
        epoch = pacer.acquire(op)
        if service.take(clock.now + 0.025):
            admitted += 1
        else:
            throttled += 1
            pacer.throttled(op, epoch)
            clock.sleep(0.05 + 0.05 * (throttled % 2))
    # Then the shared budget is used, and throttled calls stay under 1 %
    assert admitted / clock.now > 0.95 * 25.0
    assert throttled / (admitted + throttled) < 0.01


def test_pacer_builds_learning_buckets_at_its_share() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"UserList": 30.0}, fraction=0.5, clock=clock, sleep=clock.sleep)
    pacer.throttled("list_users")
    assert pacer.rates() == {"UserList": pytest.approx(15.0 * CUT_FACTOR)}
    ul = pacer.bucket("UserList")
    assert ul is not None and ul.ceiling == 15.0


def test_the_operation_table_follows_the_design() -> None:
    assert OPERATION_CATEGORY["admin_add_user_to_group"] == "UserResourceUpdate"
    assert OPERATION_CATEGORY["admin_remove_user_from_group"] == "UserResourceUpdate"
    assert OPERATION_CATEGORY["admin_list_groups_for_user"] == "UserResourceRead"
    assert OPERATION_CATEGORY["describe_user_pool"] == "UserPoolRead"
    assert OPERATION_CATEGORY["admin_disable_user"] == "UserUpdate"
    assert set(OPERATION_CATEGORY.values()) <= set(DEFAULT_QUOTAS)


def test_the_strict_local_cognito_uses_the_same_categories() -> None:
    # botocore's own names (GetUICustomization is get_ui_customization: no rule of case undoes that)
    model = botocore.session.get_session().get_service_model("cognito-idp")
    api_name = {botocore.xform_name(name): name for name in model.operation_names}
    for op, category in OPERATION_CATEGORY.items():
        assert STRICT_CATEGORY.get(api_name[op]) == category, op
    assert dict(STRICT_QUOTAS) == DEFAULT_QUOTAS


def test_scheduled_exports_leave_headroom_and_restores_take_the_deployments_share() -> None:
    from cognito_backup.runtime import Runtime
    from cognito_backup.settings import Settings

    settings = Settings.from_env(
        {"BUCKET_NAME": "bucket", "QUOTA_FRACTION": "0.8", "AWS_REGION": "us-east-1"}
    )
    assert settings.export_quota_share == 0.5  # the default: half of each quota for the app
    export = Runtime(settings, quota_share=settings.export_quota_share)
    restore = Runtime(settings)
    assert export.fraction == pytest.approx(0.4) and restore.fraction == pytest.approx(0.8)
    assert export.gateway_in("eu-west-1") is not export.gateway
    custom = Settings.from_env({"BUCKET_NAME": "bucket", "EXPORT_QUOTA_SHARE": "1"})
    assert Runtime(custom, quota_share=custom.export_quota_share).fraction == 1.0
