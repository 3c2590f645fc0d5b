"""The strict engine on its own: quotas, latency, statistics, toggles and every validation rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cognito_local.strict import (
    DEFAULT_QUOTAS,
    OPERATION_CATEGORY,
    RULES,
    CognitoError,
    PoolSchema,
    StrictEngine,
)

POOL = "us-east-1_pool"
SCHEMA = PoolSchema({"custom:tenant": False, "custom:level": True, "email": True, "sub": False})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def engine(clock: FakeClock | None = None, **kwargs: Any) -> StrictEngine:
    clock = clock or FakeClock()
    return StrictEngine(
        schema_lookup=lambda account, region, pool: SCHEMA if pool == POOL else None,
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def admit(e: StrictEngine, op: str, *, region: str = "us-east-1", **params: Any) -> CognitoError | None:
    return e.admit(op, {"UserPoolId": POOL, **params}, account_id="123456789012", region=region)


def attrs(*names: str) -> list[dict[str, str]]:
    return [{"Name": n, "Value": "x"} for n in names]


def code(error: CognitoError | None) -> str | None:
    return error.code if error else None


def test_every_operation_of_the_design_table_has_its_category_and_default_rate() -> None:
    assert OPERATION_CATEGORY["ListUsersInGroup"] == "UserList"
    assert OPERATION_CATEGORY["GetUserPoolMfaConfig"] == "UserPoolResourceRead"
    assert OPERATION_CATEGORY["AdminGetUser"] == "UserRead"
    assert OPERATION_CATEGORY["AdminLinkProviderForUser"] == "UserUpdate"
    assert OPERATION_CATEGORY["AdminSetUserPassword"] == "UserAccountRecovery"
    assert OPERATION_CATEGORY["CreateUserImportJob"] == "UserPoolResourceUpdate"
    assert OPERATION_CATEGORY["AdminDeleteUser"] == "UserUpdate"
    assert OPERATION_CATEGORY["AdminAddUserToGroup"] == "UserResourceUpdate"
    assert OPERATION_CATEGORY["AdminListGroupsForUser"] == "UserResourceRead"
    assert OPERATION_CATEGORY["DescribeUserPool"] == "UserPoolRead"
    assert DEFAULT_QUOTAS["UserList"] == 30 and DEFAULT_QUOTAS["UserCreation"] == 50
    assert DEFAULT_QUOTAS["UserUpdate"] == 25 and DEFAULT_QUOTAS["UserPoolResourceUpdate"] == 15


def test_a_full_bucket_allows_one_second_of_quota_then_throttles_until_it_refills() -> None:
    clock = FakeClock()
    e = engine(clock, quotas={"UserCreation": 5})
    results = [code(admit(e, "AdminCreateUser")) for _ in range(6)]
    assert results == [None] * 5 + ["TooManyRequestsException"]
    clock.now += 0.2  # one token at 5 RPS
    assert admit(e, "AdminCreateUser") is None
    assert code(admit(e, "AdminCreateUser")) == "TooManyRequestsException"


def test_the_throttle_is_cognitos_400_error() -> None:
    e = engine(quotas={"UserRead": 0})
    error = admit(e, "AdminGetUser")
    assert error is not None and error.status == 400
    assert json.loads(error.body()) == {"__type": "TooManyRequestsException", "message": "Rate exceeded"}
    assert error.headers()["Content-Type"] == "application/x-amz-json-1.1"


def test_buckets_are_shared_by_pools_and_operations_of_a_category_but_not_across_regions() -> None:
    e = engine(quotas={"UserList": 2})
    assert admit(e, "ListUsers") is None
    assert (
        e.admit("ListUsersInGroup", {"UserPoolId": "other"}, account_id="123456789012", region="us-east-1")
        is None
    )
    assert code(admit(e, "ListUsers")) == "TooManyRequestsException"
    assert admit(e, "ListUsers", region="eu-west-1") is None


def test_unknown_operations_have_no_quota() -> None:
    e = engine(quotas={k: 0 for k in DEFAULT_QUOTAS})
    assert all(admit(e, "GetSigningCertificate") is None for _ in range(100))


def test_quotas_can_be_switched_off_paused_and_changed() -> None:
    e = engine(quotas={"UserRead": 0}, enforce_quotas=False)
    assert admit(e, "AdminGetUser") is None
    e.enforce_quotas = True
    assert code(admit(e, "AdminGetUser")) == "TooManyRequestsException"
    with e.quotas_paused():
        assert admit(e, "AdminGetUser") is None
    assert e.enforce_quotas is True
    e.set_quota("UserRead", 10)
    assert admit(e, "AdminGetUser") is None
    with pytest.raises(ValueError):
        StrictEngine(quotas={"NoSuchCategory": 1})


def test_latency_is_applied_to_every_call() -> None:
    clock = FakeClock()
    e = engine(clock, latency=0.25, quotas={"UserRead": 0})
    admit(e, "AdminGetUser")
    admit(e, "CreateUserPool")
    assert clock.slept == [0.25, 0.25]


def test_stats_count_calls_throttles_and_refusals_per_category_and_reset_clears_them() -> None:
    e = engine(quotas={"UserList": 1})
    admit(e, "ListUsers")
    admit(e, "ListUsers")
    admit(e, "ListGroups", Limit=61)
    stats = e.stats()
    assert stats["categories"]["UserList"] == {"calls": 2, "throttled": 1, "invalid": 0}
    assert stats["categories"]["UserPoolResourceRead"] == {"calls": 1, "throttled": 0, "invalid": 1}
    assert stats["operations"]["ListGroups"]["invalid"] == 1
    assert stats["total"] == {"calls": 3, "throttled": 1, "invalid": 1}
    e.reset()
    assert e.stats()["total"] == {"calls": 0, "throttled": 0, "invalid": 0}
    assert admit(e, "ListUsers") is None  # buckets refilled


@pytest.mark.parametrize(
    ("op", "param", "ceiling"),
    [
        ("ListUsers", "Limit", 60),
        ("ListUsersInGroup", "Limit", 60),
        ("ListGroups", "Limit", 60),
        ("ListUserPoolClients", "MaxResults", 60),
        ("ListResourceServers", "MaxResults", 50),
    ],
)
def test_page_size_above_the_ceiling_is_an_invalid_parameter(op: str, param: str, ceiling: int) -> None:
    e = engine(enforce_quotas=False)
    at, above = {param: ceiling}, {param: ceiling + 1}
    assert e.admit(op, at, account_id="123456789012", region="us-east-1") is None
    refused = e.admit(op, above, account_id="123456789012", region="us-east-1")
    assert code(refused) == "InvalidParameterException"


@pytest.mark.parametrize("name", ["sub", "identities", "tenant", "favourite_colour", "custom:undefined"])
def test_create_user_refuses_attributes_cognito_refuses(name: str) -> None:
    e = engine(enforce_quotas=False)
    assert code(admit(e, "AdminCreateUser", UserAttributes=attrs(name))) == "InvalidParameterException"


def test_create_user_accepts_standard_and_defined_custom_attributes_mutable_or_not() -> None:
    e = engine(enforce_quotas=False)
    names = ("email", "email_verified", "phone_number", "locale", "custom:tenant", "custom:level")
    assert admit(e, "AdminCreateUser", UserAttributes=attrs(*names)) is None


@pytest.mark.parametrize("name", ["sub", "custom:tenant", "custom:undefined", "identities"])
def test_update_user_attributes_refuses_immutable_read_only_and_undefined(name: str) -> None:
    e = engine(enforce_quotas=False)
    error = admit(e, "AdminUpdateUserAttributes", UserAttributes=attrs(name))
    assert code(error) == "InvalidParameterException"


def test_update_user_attributes_accepts_mutable_attributes() -> None:
    e = engine(enforce_quotas=False)
    assert admit(e, "AdminUpdateUserAttributes", UserAttributes=attrs("custom:level", "email")) is None


def test_delete_user_attributes_refuses_immutable_ones() -> None:
    e = engine(enforce_quotas=False)
    assert code(admit(e, "AdminDeleteUserAttributes", UserAttributeNames=["custom:tenant"])) == (
        "InvalidParameterException"
    )
    assert admit(e, "AdminDeleteUserAttributes", UserAttributeNames=["custom:level"]) is None


def test_unknown_pool_still_gets_schema_free_checks_and_leaves_custom_ones_to_moto() -> None:
    e = engine(enforce_quotas=False)
    unknown = {"UserPoolId": "us-east-1_missing"}
    assert (
        code(
            e.admit(
                "AdminCreateUser",
                {**unknown, "UserAttributes": attrs("sub")},
                account_id="1",
                region="us-east-1",
            )
        )
        == "InvalidParameterException"
    )
    assert (
        e.admit(
            "AdminCreateUser",
            {**unknown, "UserAttributes": attrs("custom:x")},
            account_id="1",
            region="us-east-1",
        )
        is None
    )


def test_validation_can_be_switched_off_whole_or_rule_by_rule() -> None:
    e = engine(enforce_quotas=False)
    assert set(RULES) == {"page_limit", "create_attributes", "update_attributes", "delete_attributes"}
    e.disabled_rules.add("page_limit")
    assert admit(e, "ListUsers", Limit=100) is None
    assert admit(e, "AdminCreateUser", UserAttributes=attrs("sub")) is not None
    e.enforce_validation = False
    assert admit(e, "AdminCreateUser", UserAttributes=attrs("sub")) is None


def test_admit_http_reads_operation_region_and_account_from_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    e = engine(quotas={"UserList": 1})
    headers = {
        "X-Amz-Target": "AWSCognitoIdentityProviderService.ListUsers",
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/eu-west-1/cognito-idp/aws4_request, Signature=x"
        ),
        "x-moto-account-id": "111111111111",
    }
    body = json.dumps({"UserPoolId": POOL, "Limit": 10}).encode()
    assert e.admit_http(headers, body) is None
    assert code(e.admit_http(headers, body)) == "TooManyRequestsException"
    other_account = {**headers, "x-moto-account-id": "222222222222"}
    assert e.admit_http(other_account, body) is None
    assert e.admit_http({"X-Amz-Target": "DynamoDB_20120810.Scan"}, b"{}") is None
    assert e.stats()["operations"] == {"ListUsers": {"calls": 3, "throttled": 1, "invalid": 0}}


def test_memberships_can_share_user_update_s_budget_for_the_other_world() -> None:
    # Given 25 UserUpdate tokens spent on disables
    e = engine(quotas={"UserUpdate": 25, "UserResourceUpdate": 25})
    for _ in range(25):
        assert admit(e, "AdminDisableUser", Username="u") is None

    # Then memberships still pass (their own budget), until they are told to share UserUpdate's
    assert admit(e, "AdminAddUserToGroup", Username="u", GroupName="g") is None
    e.memberships_in("UserUpdate")
    assert code(admit(e, "AdminAddUserToGroup", Username="u", GroupName="g")) == "TooManyRequestsException"
    removal = admit(e, "AdminRemoveUserFromGroup", Username="u", GroupName="g")
    assert code(removal) == "TooManyRequestsException"
    assert e.stats()["categories"]["UserUpdate"]["throttled"] == 2
    e.memberships_in("UserResourceUpdate")
    assert admit(e, "AdminAddUserToGroup", Username="u", GroupName="g") is None
    with pytest.raises(ValueError):
        e.memberships_in("UserCreation")
