"""Sample data: deterministic, realistic, fast, and the same whether written directly or via the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

import cognito_local.seed as seed_module
from cognito_local.inprocess import strict_cognito
from cognito_local.seed import create_pool, pool_state, seed_pool
from cognito_local.server import LocalAws

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def cognito() -> Iterator[Any]:
    with mock_aws(), strict_cognito():
        yield boto3.client("cognito-idp", region_name="us-east-1")


def test_a_seeded_pool_is_realistic_and_matches_its_summary(cognito: Any) -> None:
    pool = create_pool(cognito, "source")
    summary = seed_pool(cognito, pool, users=200, groups=5, big_group_members=70)
    state = pool_state(cognito, pool)

    assert summary.direct and summary.users == len(state["users"]) == 200
    assert summary.groups == len(state["groups"]) == 5
    assert summary.memberships == len(state["memberships"])
    assert summary.big_group is not None
    assert sum(g == summary.big_group for g, _ in state["memberships"]) >= 70
    users = state["users"]
    assert summary.disabled == sum(not u["enabled"] for u in users.values()) > 0
    assert (
        summary.unverified_email
        == sum(u["attributes"]["email_verified"] == "false" for u in users.values())
        > 0
    )
    assert summary.with_phone == sum("phone_number" in u["attributes"] for u in users.values()) > 0
    assert all(u["status"] == "FORCE_CHANGE_PASSWORD" for u in users.values())
    assert all("sub" not in u["attributes"] for u in users.values())
    assert {"+", ".", "@"} <= {ch for name in users for ch in name}
    given = {u["attributes"]["given_name"] for u in users.values()}
    assert {"José", "Zoë", "李"} <= given
    assert any("custom:employee_id" in u["attributes"] for u in users.values())  # immutable, set at creation
    roles = {g["role_arn"] for g in state["groups"].values()}
    assert all(re.fullmatch(r"arn:aws:iam::123456789012:role/group-role-\d+", r or "") for r in roles)
    assert all(g["description"] and g["precedence"] is not None for g in state["groups"].values())


def test_seeding_is_deterministic(cognito: Any) -> None:
    a, b, c = (create_pool(cognito, n) for n in "abc")
    seed_pool(cognito, a, users=50, seed=7)
    seed_pool(cognito, b, users=50, seed=7)
    seed_pool(cognito, c, users=50, seed=8)
    assert pool_state(cognito, a) == pool_state(cognito, b) != pool_state(cognito, c)


def test_email_username_pools_get_uuid_usernames_and_compare_by_email(cognito: Any) -> None:
    a = create_pool(cognito, "a", username_attributes=["email"])
    b = create_pool(cognito, "b", username_attributes=["email"])
    seed_pool(cognito, a, users=30)
    seed_pool(cognito, b, users=30)
    usernames = [u["Username"] for u in cognito.list_users(UserPoolId=a, Limit=60)["Users"]]
    assert len(usernames) == 30 and all(UUID.match(u) for u in usernames)
    state = pool_state(cognito, a)
    assert all(key == u["attributes"]["email"] for key, u in state["users"].items())
    assert state == pool_state(cognito, b)


def test_seeding_twice_is_refused(cognito: Any) -> None:
    pool = create_pool(cognito, "p")
    seed_pool(cognito, pool, users=5)
    with pytest.raises(ValueError, match="already holds"):
        seed_pool(cognito, pool, users=5)


def test_twenty_thousand_users_seed_straight_into_the_backend(cognito: Any) -> None:
    # How fast is make bench's business (docs/benchmarks.md); here, that the direct path is the
    # one taken (no API call per user) and that the result pages like any pool.
    pool = create_pool(cognito, "big")
    summary = seed_pool(cognito, pool, users=20_000, groups=10, big_group_members=500)
    assert summary.direct
    assert summary.users == 20_000
    page = cognito.list_users(UserPoolId=pool, Limit=60)
    assert len(page["Users"]) == 60 and page["PaginationToken"]
    members = cognito.list_users_in_group(UserPoolId=pool, GroupName=summary.big_group, Limit=60)
    assert len(members["Users"]) == 60 and members["NextToken"]


def test_server_mode_seeds_directly_and_the_api_path_gives_the_same_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with LocalAws(quotas={"UserResourceUpdate": 10}) as local:
        c = boto3.client(
            "cognito-idp",
            endpoint_url=local.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        direct, via_api = create_pool(c, "direct"), create_pool(c, "api")
        assert seed_pool(c, direct, users=25, seed=3).direct
        monkeypatch.setattr(seed_module, "_moto_pool", lambda client, pool_id: None)
        assert not seed_pool(c, via_api, users=25, seed=3).direct
        assert local.engine.stats()["categories"]["UserResourceUpdate"]["throttled"] > 0  # and it backed off
        with local.engine.quotas_paused():
            assert pool_state(c, direct) == pool_state(c, via_api)


def test_a_share_of_users_can_be_seeded_confirmed(cognito: Any) -> None:
    pool_id = create_pool(cognito, "confirmed")
    summary = seed_pool(cognito, pool_id, users=100, groups=1, confirmed_share=0.85)
    statuses = [u["status"] for u in pool_state(cognito, pool_id)["users"].values()]
    assert statuses.count("CONFIRMED") == summary.confirmed and 70 < summary.confirmed < 100
    assert set(statuses) == {"CONFIRMED", "FORCE_CHANGE_PASSWORD"}
