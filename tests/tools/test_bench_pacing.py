"""The pacing settings `make bench` tuned: the pacer's burst, and which listing cursor goes first."""

from __future__ import annotations

import random

import pytest
from conftest import FakeClock

from cognito_backup.export import _priority
from cognito_backup.pacing import DEFAULT_BURST_SECONDS, Pacer, TokenBucket
from cognito_local.strict import TokenBucket as ServiceBucket


def test_a_bucket_holds_just_under_one_second_of_its_quota() -> None:
    pacer = Pacer(quotas={"UserList": 30.0, "UserUpdate": 25.0}, fraction=0.5)
    assert 0.5 <= DEFAULT_BURST_SECONDS < 1.0
    ul, uu = pacer.bucket("UserList"), pacer.bucket("UserUpdate")
    assert ul is not None and uu is not None
    assert (ul.rate, ul.capacity) == (15.0, pytest.approx(15.0 * DEFAULT_BURST_SECONDS))
    assert Pacer(quotas={"UserPoolResourceUpdate": 1.0}).bucket("UserPoolResourceUpdate").capacity == 1.0  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(5))
def test_paced_calls_never_find_the_service_bucket_empty_yet_use_its_rate(seed: int) -> None:
    # Given our bucket and the service's (one second of quota, as the strict local Cognito)
    rng = random.Random(seed)
    clock = FakeClock()
    ours = TokenBucket(30.0, capacity=30.0 * DEFAULT_BURST_SECONDS, clock=clock, sleep=clock.sleep)
    service = ServiceBucket(30.0, clock.now)
    # When calls come in bursts separated by idle gaps, each admitted by the service
    # up to 50 ms after we let it go (a constant latency moves nothing)
    refused, calls = 0, 0
    for _ in range(200):
        clock.sleep(rng.choice((0.0, 0.0, 0.05, 0.3, 1.5)))
        for _ in range(rng.randint(1, 40)):
            ours.acquire()
            calls += 1
            refused += not service.take(clock.now + 0.05)
    # Then the service never refuses one, and a long busy stretch runs at the quota
    assert refused == 0
    start = clock.now
    for _ in range(600):
        ours.acquire()
    assert (clock.now - start) == pytest.approx((600 - 1) / 30.0, abs=1.0)


def test_groups_go_first_then_the_shards_in_order() -> None:
    cursors = ["u:0", "u:1", "g:0", "g:1"]
    order = sorted(cursors, key=lambda c: _priority(c, cursors.index(c)))
    assert order == ["g:0", "g:1", "u:0", "u:1"]
