"""Faults in the strict engine on their own: which calls fail, how, how often, reproducibly."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FakeClock

from cognito_local.faults import FaultPlan, Faults, request_identity
from cognito_local.strict import StrictEngine, Verdict

POOL = "us-east-1_pool"


def engine(faults: Faults, clock: FakeClock | None = None, **kwargs: Any) -> StrictEngine:
    clock = clock or FakeClock()
    return StrictEngine(
        schema_lookup=lambda account, region, pool: None,
        clock=clock,
        sleep=clock.sleep,
        faults=faults,
        **kwargs,
    )


def judge(e: StrictEngine, op: str, **params: Any) -> Verdict:
    return e.judge(op, {"UserPoolId": POOL, **params}, account_id="123456789012", region="us-east-1")


def kinds(e: StrictEngine, requests: list[tuple[str, dict[str, Any]]]) -> list[str | None]:
    return [judge(e, op, **params).fault for op, params in requests]


def many_users(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [("AdminGetUser", {"Username": f"user{i}"}) for i in range(n)]


def test_no_faults_by_default() -> None:
    e = engine(Faults(), enforce_quotas=False)
    assert all(judge(e, "AdminGetUser", Username=f"u{i}").allowed for i in range(200))
    assert e.stats()["faults"]["total"] == {"before": 0, "after": 0, "reset": 0, "storm": 0}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate", 1.5),
        ("after_effect", -0.1),
        ("reset_rate", 2.0),
        ("storm_fraction", 1.1),
        ("storm_every", -1),
    ],
)
def test_impossible_faults_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        Faults(**{field: value})


def test_a_500_before_the_effect_is_cognitos_internal_error_and_counted_per_operation() -> None:
    e = engine(Faults(rate=1.0, after_effect=0.0), enforce_quotas=False)
    verdict = judge(e, "AdminCreateUser", Username="ann")
    assert verdict.error is not None and not verdict.after_effect and not verdict.reset
    assert (verdict.error.code, verdict.error.status, verdict.fault) == (
        "InternalErrorException",
        500,
        "before",
    )
    assert e.stats()["faults"]["operations"]["AdminCreateUser"]["before"] == 1


def test_a_500_after_the_effect_tells_the_transport_to_apply_the_call_first() -> None:
    e = engine(Faults(rate=1.0, after_effect=1.0), enforce_quotas=False)
    verdict = judge(e, "AdminCreateUser", Username="ann")
    assert verdict.after_effect and verdict.error is not None and verdict.error.status == 500
    assert e.stats()["faults"]["total"]["after"] == 1


def test_a_reset_answers_nothing_and_takes_no_token() -> None:
    e = engine(Faults(reset_rate=1.0), quotas={"UserCreation": 1})
    verdict = judge(e, "AdminCreateUser", Username="ann")
    assert verdict.reset and verdict.error is None and not verdict.allowed and verdict.fault == "reset"
    e.faults = Faults()
    assert judge(e, "AdminCreateUser", Username="ann").allowed  # the bucket's one token is still there
    stats = e.stats()
    assert stats["faults"]["operations"]["AdminCreateUser"]["reset"] == 1
    assert stats["operations"]["AdminCreateUser"]["calls"] == 2


def test_the_shares_are_as_configured() -> None:
    e = engine(Faults(rate=0.05, after_effect=0.5, reset_rate=0.01, seed=3), enforce_quotas=False)
    got = kinds(e, many_users(20_000))
    errors = got.count("before") + got.count("after")
    assert 0.04 * 20_000 < errors < 0.06 * 20_000
    assert 0.4 < got.count("after") / errors < 0.6
    assert 0.005 * 20_000 < got.count("reset") < 0.015 * 20_000
    assert e.stats()["faults"]["total"]["reset"] == got.count("reset")


def test_the_same_seed_gives_the_same_faults_whatever_the_order_and_another_seed_others() -> None:
    faults = Faults(rate=0.2, reset_rate=0.05, seed=11)
    requests = many_users(500)
    first = dict(zip(map(str, requests), kinds(engine(faults, enforce_quotas=False), requests), strict=True))
    shuffled = requests[::-1]
    second = dict(zip(map(str, shuffled), kinds(engine(faults, enforce_quotas=False), shuffled), strict=True))
    assert first == second
    other = kinds(engine(Faults(rate=0.2, reset_rate=0.05, seed=12), enforce_quotas=False), requests)
    assert list(first.values()) != other


def test_a_retry_of_the_same_request_is_a_fresh_draw() -> None:
    e = engine(Faults(rate=0.5, seed=1), enforce_quotas=False)
    outcomes = {judge(e, "AdminGetUser", Username="ann").fault for _ in range(50)}
    assert None in outcomes and len(outcomes) > 1


def test_pool_ids_pagination_tokens_and_passwords_do_not_change_which_request_it_is() -> None:
    # moto makes up pool ids and tokens afresh in every run: the same run must meet the same faults
    a = request_identity("ListUsers", {"UserPoolId": POOL, "Limit": 60, "PaginationToken": "x1"})
    b = request_identity("ListUsers", {"UserPoolId": "us-east-1_other", "Limit": 60, "PaginationToken": "y2"})
    c = request_identity("ListUsers", {"UserPoolId": POOL, "Limit": 50})
    assert a == b != c
    p1 = request_identity("AdminSetUserPassword", {"Username": "ann", "Password": "Aa1!xyzxyz"})
    p2 = request_identity("AdminSetUserPassword", {"Username": "ann", "Password": "Bb2!other"})
    assert p1 == p2


def test_only_the_named_operations_fail() -> None:
    e = engine(
        Faults(rate=1.0, reset_rate=0.0, operations=frozenset({"AdminCreateUser"})), enforce_quotas=False
    )
    assert judge(e, "AdminGetUser", Username="ann").allowed
    assert judge(e, "AdminCreateUser", Username="ann").fault in ("before", "after")
    assert set(e.stats()["faults"]["operations"]) == {"AdminCreateUser"}


def test_a_refused_call_gets_its_refusal_not_a_500() -> None:
    e = engine(Faults(rate=1.0), enforce_quotas=False)
    verdict = judge(e, "ListUsers", Limit=61)
    assert verdict.error is not None and verdict.error.code == "InvalidParameterException"
    assert verdict.fault is None and e.stats()["faults"]["total"]["before"] == 0


def test_a_storm_divides_the_quota_on_the_engines_clock_and_ends() -> None:
    # Given storms every 10 s lasting 2 s at a tenth of the quota, on a clock the test drives
    clock = FakeClock()
    e = engine(
        Faults(storm_every=10.0, storm_seconds=2.0, storm_fraction=0.1), clock, quotas={"UserCreation": 50}
    )

    def allowed_in_one_instant() -> int:
        return sum(judge(e, "AdminCreateUser", Username=f"u{i}").allowed for i in range(60))

    # Before the first storm: the full second of quota
    assert allowed_in_one_instant() == 50
    # In the storm (t = 10.5 s): a tenth of it, and the throttles are counted as storm faults
    clock.now = 10.5
    assert allowed_in_one_instant() == 5
    assert e.stats()["faults"]["operations"]["AdminCreateUser"]["storm"] == 55
    # After it (t = 13 s): the full quota again; the next storm at t = 20 s
    clock.now = 13.0
    assert allowed_in_one_instant() == 50
    clock.now = 20.0
    assert allowed_in_one_instant() == 5


def test_storms_only_hit_the_named_operations() -> None:
    clock = FakeClock()
    e = engine(
        Faults(storm_every=1.0, storm_seconds=1.0, storm_fraction=0.1, operations=frozenset({"ListUsers"})),
        clock,
        quotas={"UserRead": 10, "UserList": 10},
    )
    clock.now = 1.5
    assert sum(judge(e, "AdminGetUser", Username=f"u{i}").allowed for i in range(10)) == 10
    assert sum(judge(e, "ListUsers").allowed for _ in range(10)) == 1


def test_reset_restarts_the_draws_and_pausing_turns_faults_off() -> None:
    e = engine(Faults(rate=0.3, seed=5), enforce_quotas=False)
    requests = many_users(100)
    first = kinds(e, requests)
    e.reset()
    assert kinds(e, requests) == first
    with e.faults_paused():
        assert all(k is None for k in kinds(e, requests))
    assert e.faults.rate == 0.3


def test_admit_reports_any_fault_as_a_500() -> None:
    e = engine(Faults(reset_rate=1.0), enforce_quotas=False)
    error = e.admit("AdminGetUser", {"Username": "a"}, account_id="123456789012", region="us-east-1")
    assert error is not None and error.status == 500


def test_a_plan_on_its_own_draws_and_counts() -> None:
    plan = FaultPlan(Faults(rate=1.0, after_effect=0.0))
    assert plan.draw("PutObject", {"url": "https://b.s3.amazonaws.com/k"}) == "before"
    plan.count("PutObject", "before")
    assert plan.stats() == {
        "total": {"before": 1, "after": 0, "reset": 0, "storm": 0},
        "operations": {"PutObject": {"before": 1, "after": 0, "reset": 0, "storm": 0}},
    }
