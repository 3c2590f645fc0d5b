"""The rules engine that makes moto answer like Cognito: quotas, latency, validation, faults.

Transport-neutral: the in-process hook (`inprocess`) and the HTTP middleware (`server`) both
call `StrictEngine.judge_http`, which returns a `Verdict`: let moto answer; answer an error
instead (a throttle, a refusal, a 500 before the effect); let moto apply the call and answer
a 500 all the same (the answer lost after the effect); drop the connection; or answer the
call itself, for the operations moto does not implement (`extras`: UI customisation, managed
login branding, log delivery, risk configuration). `admit_http` is the older, narrower question
(None or the error to answer) for callers that only refuse.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cognito_local import extras
from cognito_local.faults import FaultKind, FaultPlan, Faults

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

# Cognito's quota categories and their default requests per second, and the operations each
# one covers: docs/architecture.md's table (the Cognito quotas page), the same as the product's pacer
# (cognito_backup.pacing), group membership changes in UserResourceUpdate included.
DEFAULT_QUOTAS: Mapping[str, float] = {
    "UserList": 30,
    "UserCreation": 50,
    "UserUpdate": 25,
    "UserResourceUpdate": 25,
    "UserResourceRead": 50,
    "UserAccountRecovery": 30,
    "UserRead": 120,
    "UserPoolRead": 15,
    "UserPoolUpdate": 15,
    "UserPoolResourceRead": 20,
    "UserPoolResourceUpdate": 15,
    "UserPoolClientRead": 15,
    "UserPoolClientUpdate": 15,
    "UserAuthentication": 120,
}

_CATEGORY_OPERATIONS: Mapping[str, tuple[str, ...]] = {
    "UserList": ("ListUsers", "ListUsersInGroup"),
    "UserPoolResourceRead": (
        "ListGroups",
        "GetGroup",
        "ListIdentityProviders",
        "DescribeIdentityProvider",
        "ListResourceServers",
        "DescribeResourceServer",
        "GetUserPoolMfaConfig",
        "DescribeUserPoolDomain",
        "GetUICustomization",
        "DescribeManagedLoginBrandingByClient",
        "DescribeRiskConfiguration",
    ),
    "UserPoolRead": ("DescribeUserPool", "ListUserPools", "GetLogDeliveryConfiguration"),
    "UserPoolClientRead": ("ListUserPoolClients", "DescribeUserPoolClient"),
    "UserResourceRead": ("AdminListGroupsForUser",),
    "UserRead": ("AdminGetUser",),
    "UserCreation": ("AdminCreateUser",),
    "UserUpdate": (
        "AdminDisableUser",
        "AdminEnableUser",
        "AdminUpdateUserAttributes",
        "AdminLinkProviderForUser",
        "AdminDeleteUserAttributes",
        "AdminDeleteUser",
    ),
    "UserResourceUpdate": ("AdminAddUserToGroup", "AdminRemoveUserFromGroup"),
    "UserAccountRecovery": ("AdminSetUserPassword", "AdminResetUserPassword"),
    "UserAuthentication": ("AdminInitiateAuth",),
    "UserPoolResourceUpdate": (
        "CreateGroup",
        "UpdateGroup",
        "DeleteGroup",
        "AddCustomAttributes",
        "CreateUserImportJob",
        "CreateResourceServer",
        "CreateIdentityProvider",
        "CreateUserPoolDomain",
        "SetUICustomization",
        "CreateManagedLoginBranding",
        "SetRiskConfiguration",
    ),
    "UserPoolUpdate": (
        "CreateUserPool",
        "UpdateUserPool",
        "SetUserPoolMfaConfig",
        "SetLogDeliveryConfiguration",
    ),
    "UserPoolClientUpdate": ("CreateUserPoolClient",),
}

OPERATION_CATEGORY: Mapping[str, str] = {
    op: category for category, ops in _CATEGORY_OPERATIONS.items() for op in ops
}
# AWS's page does not say where group membership changes count (docs/architecture.md): the
# table puts them in UserResourceUpdate; `StrictEngine.memberships_in("UserUpdate")` makes
# them share UserUpdate's budget instead, for a benchmark of the other world.
MEMBERSHIP_OPERATIONS = ("AdminAddUserToGroup", "AdminRemoveUserFromGroup")
MEMBERSHIP_CATEGORIES = ("UserResourceUpdate", "UserUpdate")

# Page-size ceilings: operation -> (parameter, maximum).
PAGE_LIMITS: Mapping[str, tuple[str, int]] = {
    "ListUsers": ("Limit", 60),
    "ListUsersInGroup": ("Limit", 60),
    "ListGroups": ("Limit", 60),
    "ListUserPools": ("MaxResults", 60),
    "ListUserPoolClients": ("MaxResults", 60),
    "ListIdentityProviders": ("MaxResults", 60),
    "ListResourceServers": ("MaxResults", 50),
}

# Cognito's standard attributes that an administrator may write (sub and identities are not).
STANDARD_ATTRIBUTES = frozenset(
    {
        "address",
        "birthdate",
        "email",
        "email_verified",
        "family_name",
        "gender",
        "given_name",
        "locale",
        "middle_name",
        "name",
        "nickname",
        "phone_number",
        "phone_number_verified",
        "picture",
        "preferred_username",
        "profile",
        "updated_at",
        "website",
        "zoneinfo",
    }
)
READ_ONLY_ATTRIBUTES = frozenset({"sub", "identities"})

RULES = ("page_limit", "create_attributes", "update_attributes", "delete_attributes")

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/")
_HOST_REGION = re.compile(r"cognito-idp(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")


@dataclass(frozen=True)
class CognitoError:
    """A refusal, shaped as Cognito sends it (JSON 1.1 error, HTTP 400)."""

    code: str
    message: str
    status: int = 400

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message}).encode()

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-ErrorType": f"{self.code}:",
            "x-amzn-RequestId": "00000000-0000-4000-8000-cognito-local",
        }


@dataclass(frozen=True)
class CognitoAnswer:
    """A 200 answer made here (an operation moto lacks), as Cognito sends it (JSON 1.1)."""

    payload: Mapping[str, Any]
    status: int = 200

    def body(self) -> bytes:
        return json.dumps(self.payload).encode()

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-RequestId": "00000000-0000-4000-8000-cognito-local",
        }


def extra_verdict(operation: str, params: Mapping[str, Any], *, account_id: str, region: str) -> Verdict:
    """Answer one of `extras.OPERATIONS` (applying it): its answer or its refusal."""
    made = extras.answer(operation, params, account_id=account_id, region=region)
    if made.code is not None:
        return Verdict(error=CognitoError(made.code, made.message))
    return Verdict(answer=CognitoAnswer(made.body))


def throttled() -> CognitoError:
    return CognitoError("TooManyRequestsException", "Rate exceeded")


def invalid(message: str) -> CognitoError:
    return CognitoError("InvalidParameterException", message)


def internal_error() -> CognitoError:
    """Cognito's 500: the request may or may not have taken effect."""
    return CognitoError("InternalErrorException", "An internal error occurred.", status=500)


@dataclass(frozen=True)
class Verdict:
    """What a transport does with one request.

    - `error` None and `reset` False: let moto answer;
    - `error` set, `after_effect` False: answer `error`, moto never sees the call;
    - `error` set, `after_effect` True: let moto apply the call, throw its answer away and
      answer `error` (a 500 whose call took effect);
    - `reset` True: drop the connection without an answer; moto never sees the call;
    - `answer` set: answer it (an operation moto does not implement, answered here).
    """

    error: CognitoError | None = None
    answer: CognitoAnswer | None = None
    after_effect: bool = False
    reset: bool = False
    fault: FaultKind | None = None  # the injected fault, if this verdict is one

    @property
    def allowed(self) -> bool:
        return self.error is None and not self.reset


ALLOW = Verdict()


@dataclass(frozen=True)
class PoolSchema:
    """What the rules need to know of a pool: its attributes and whether each is mutable."""

    attributes: Mapping[str, bool]  # name as in DescribeUserPool ("custom:x") -> mutable

    def mutable(self, name: str) -> bool:
        return self.attributes.get(name, True)


SchemaLookup = Callable[[str, str, str], PoolSchema | None]  # (account, region, pool id)


def moto_schema(account_id: str, region: str, pool_id: str) -> PoolSchema | None:
    """Read a pool's schema from moto's in-process backend (None when unknown)."""
    from moto.backends import get_backend

    # dict.get on purpose: moto's __getitem__ creates missing accounts and regions.
    regions = get_backend("cognito-idp").get(account_id)
    backend = regions.get(region) if regions is not None else None
    pool = backend.user_pools.get(pool_id) if backend is not None else None
    if pool is None:
        return None
    # moto keys custom attributes as "custom:<name>" ("dev:custom:<name>" if developer-only).
    return PoolSchema({name: bool(attr.mutable) for name, attr in pool.schema_attributes.items()})


def moto_account_id(access_key: str | None, headers: Mapping[str, str]) -> str:
    """Resolve the account as moto does: env, x-moto-account-id header, then access key."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    header = _header(headers, "x-moto-account-id")
    if header:
        return header
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "AKIAEXAMPLE")


def request_place(headers: Mapping[str, str], url: str = "") -> tuple[str, str]:
    """(account, region) of a signed request, as moto resolves them."""
    match = _CREDENTIAL.search(_header(headers, "authorization") or "")
    host = _HOST_REGION.search(url)
    region = match.group(2) if match else host.group(1) if host else DEFAULT_REGION
    return moto_account_id(match.group(1) if match else None, headers), region


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class TokenBucket:
    """Capacity = one second of quota; refills continuously. Not locked: the engine locks."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = now

    def take(self, now: float, factor: float = 1.0) -> bool:
        """One token if there is one; `factor` scales the rate and capacity (a storm)."""
        rate = self.rate * factor
        self.tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Counts:
    calls: int = 0
    throttled: int = 0
    invalid: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "throttled": self.throttled, "invalid": self.invalid}


@dataclass
class _Stats:
    categories: dict[str, _Counts] = field(default_factory=dict)
    operations: dict[str, _Counts] = field(default_factory=dict)


class StrictEngine:
    """Cognito's quotas, latency and validation rules, shared by every transport."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        quotas: Mapping[str, float] | None = None,
        enforce_quotas: bool = True,
        enforce_validation: bool = True,
        schema_lookup: SchemaLookup = moto_schema,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        faults: Faults | None = None,
    ) -> None:
        unknown = set(quotas or {}) - set(DEFAULT_QUOTAS)
        if unknown:
            raise ValueError(f"unknown quota categories: {sorted(unknown)}")
        self.latency = latency
        self.quotas: dict[str, float] = {**DEFAULT_QUOTAS, **(quotas or {})}
        self.enforce_quotas = enforce_quotas
        self.enforce_validation = enforce_validation
        self.disabled_rules: set[str] = set()
        self._schema_lookup = schema_lookup
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._stats = _Stats()
        self._plan = FaultPlan(faults, origin=clock())
        self.operation_category: dict[str, str] = dict(OPERATION_CATEGORY)

    def memberships_in(self, category: str) -> None:
        """Count AdminAddUserToGroup / AdminRemoveUserFromGroup in `category` from now on."""
        if category not in MEMBERSHIP_CATEGORIES:
            raise ValueError(f"memberships count in one of {MEMBERSHIP_CATEGORIES}, not {category!r}")
        with self._lock:
            for operation in MEMBERSHIP_OPERATIONS:
                self.operation_category[operation] = category

    # -- faults --------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._plan.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """Change the faults from the next call on (the draw sequence and storm clock go on)."""
        self._plan.faults = faults

    @contextmanager
    def faults_paused(self) -> Iterator[StrictEngine]:
        """No faults for the block (e.g. while seeding or reading back), then the same again."""
        before = self._plan.faults
        self._plan.faults = Faults()
        try:
            yield self
        finally:
            self._plan.faults = before

    # -- control -------------------------------------------------------------------------

    def set_quota(self, category: str, rps: float) -> None:
        if category not in DEFAULT_QUOTAS:
            raise ValueError(f"unknown quota category: {category}")
        with self._lock:
            self.quotas[category] = rps
            for key in [k for k in self._buckets if k[2] == category]:
                del self._buckets[key]

    @contextmanager
    def quotas_paused(self) -> Iterator[StrictEngine]:
        """Switch quotas off for the block (e.g. while seeding), then back to what they were."""
        before = self.enforce_quotas
        self.enforce_quotas = False
        try:
            yield self
        finally:
            self.enforce_quotas = before

    def reset(self) -> None:
        """Zero the statistics, refill every bucket, restart the faults' draws and storm clock."""
        with self._lock:
            self._stats = _Stats()
            self._buckets.clear()
            self._plan.restart(self._clock())

    def stats(self) -> dict[str, Any]:
        """Counts per category and per operation (calls, throttled, invalid), and faults injected
        per kind ("before", "after", "reset", "storm": throttled in a storm) in total and per
        operation."""
        with self._lock:
            cats = {name: c.as_dict() for name, c in sorted(self._stats.categories.items())}
            ops = {name: c.as_dict() for name, c in sorted(self._stats.operations.items())}
        total = {k: sum(c[k] for c in ops.values()) for k in ("calls", "throttled", "invalid")}
        return {"total": total, "categories": cats, "operations": ops, "faults": self._plan.stats()}

    # -- admission -----------------------------------------------------------------------

    def admit_http(
        self, headers: Mapping[str, str], body: bytes | str | None, url: str = ""
    ) -> CognitoError | None:
        """Judge one HTTP request; None for requests that are not Cognito's or are allowed.

        A caller that can only refuse gets every injected fault as a 500 before the effect;
        transports use `judge_http`, which says how to fail."""
        return _as_refusal(self.judge_http(headers, body, url))

    def judge_http(self, headers: Mapping[str, str], body: bytes | str | None, url: str = "") -> Verdict:
        """Judge one HTTP request; `ALLOW` for requests that are not Cognito's."""
        target = _header(headers, "x-amz-target") or ""
        if not target.startswith(TARGET_PREFIX):
            return ALLOW
        operation = target[len(TARGET_PREFIX) :]
        try:
            raw = json.loads(body or b"{}")
        except ValueError:
            raw = {}
        params: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        account, region = request_place(headers, url)
        return self.judge(operation, params, account_id=account, region=region)

    def admit(
        self, operation: str, params: Mapping[str, Any], *, account_id: str, region: str
    ) -> CognitoError | None:
        """Count, delay, rate-limit and validate one call; None means: let moto answer it.

        Injected faults come back as a 500 before the effect (see `admit_http`)."""
        return _as_refusal(self.judge(operation, params, account_id=account_id, region=region))

    def judge(self, operation: str, params: Mapping[str, Any], *, account_id: str, region: str) -> Verdict:
        """Count, delay, drop, rate-limit, validate and fail one call, in that order.

        A dropped connection never reaches the service, so it takes no token; a 500 is only
        injected into a call the service accepted (a refused call has no effect to lose)."""
        if self.latency > 0:
            self._sleep(self.latency)
        category = self.operation_category.get(operation)
        fault = self._plan.draw(operation, params)
        with self._lock:
            counts = [self._stats.operations.setdefault(operation, _Counts())]
            if category is not None:
                counts.append(self._stats.categories.setdefault(category, _Counts()))
            for c in counts:
                c.calls += 1
            if fault == "reset":
                self._plan.count(operation, "reset")
                return Verdict(reset=True, fault="reset")
            if category is not None and self.enforce_quotas:
                now = self._clock()
                factor = self._plan.quota_factor(operation, now)
                if not self._take(account_id, region, category, now, factor):
                    for c in counts:
                        c.throttled += 1
                    if factor != 1.0:
                        self._plan.count(operation, "storm")
                    return Verdict(error=throttled(), fault="storm" if factor != 1.0 else None)
        error = self._validate(operation, params, account_id, region) if self.enforce_validation else None
        if error is not None:
            with self._lock:
                for c in counts:
                    c.invalid += 1
            return Verdict(error=error)
        return self._effect(operation, params, fault, account_id, region)

    def _effect(
        self, operation: str, params: Mapping[str, Any], fault: FaultKind | None, account_id: str, region: str
    ) -> Verdict:
        """An accepted call: a 500 before or after its effect, answered here (an operation moto
        lacks: applied here, so a 500 after the effect is answered without moto), or moto's."""
        extra = operation in extras.OPERATIONS
        if fault == "before" or (fault == "after" and not extra):
            self._plan.count(operation, fault)
            return Verdict(error=internal_error(), after_effect=fault == "after", fault=fault)
        if not extra:
            return ALLOW
        made = extra_verdict(operation, params, account_id=account_id, region=region)
        if fault == "after" and made.error is None:  # applied, then the answer is lost
            self._plan.count(operation, fault)
            return Verdict(error=internal_error(), fault=fault)
        return made

    def _take(self, account_id: str, region: str, category: str, now: float, factor: float = 1.0) -> bool:
        key = (account_id, region, category)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.quotas[category], now)
        return bucket.take(now, factor)

    def _validate(
        self, operation: str, params: Mapping[str, Any], account_id: str, region: str
    ) -> CognitoError | None:
        def schema() -> PoolSchema | None:
            pool_id = params.get("UserPoolId")
            return self._schema_lookup(account_id, region, pool_id) if isinstance(pool_id, str) else None

        on = [r for r in RULES if r not in self.disabled_rules]
        if operation in PAGE_LIMITS and "page_limit" in on:
            return check_page_limit(operation, params)
        if operation == "AdminCreateUser" and "create_attributes" in on:
            return check_create_attributes(_attribute_names(params.get("UserAttributes")), schema())
        if operation == "AdminUpdateUserAttributes" and "update_attributes" in on:
            return check_update_attributes(_attribute_names(params.get("UserAttributes")), schema())
        if operation == "AdminDeleteUserAttributes" and "delete_attributes" in on:
            names = [n for n in params.get("UserAttributeNames") or [] if isinstance(n, str)]
            return check_update_attributes(names, schema())
        return None


def _as_refusal(verdict: Verdict) -> CognitoError | None:
    if verdict.reset:
        return internal_error()
    return verdict.error


# -- rules: pure functions, one per Cognito behaviour ------------------------------------


def check_page_limit(operation: str, params: Mapping[str, Any]) -> CognitoError | None:
    name, ceiling = PAGE_LIMITS[operation]
    value = params.get(name)
    if isinstance(value, int) and value > ceiling:
        return invalid(
            f"1 validation error detected: Value '{value}' at '{name[0].lower()}{name[1:]}' failed to "
            f"satisfy constraint: Member must have value less than or equal to {ceiling}"
        )
    return None


def _attribute_names(attributes: object) -> list[str]:
    if not isinstance(attributes, list):
        return []
    return [a["Name"] for a in attributes if isinstance(a, dict) and isinstance(a.get("Name"), str)]


def _unknown(name: str, schema: PoolSchema | None) -> bool:
    if name in STANDARD_ATTRIBUTES:
        return False
    if name.startswith(("custom:", "dev:custom:")):
        return schema is not None and name not in schema.attributes
    return True


def check_create_attributes(names: list[str], schema: PoolSchema | None) -> CognitoError | None:
    """AdminCreateUser: no sub or identities, only standard or defined custom attributes."""
    for name in names:
        if name in READ_ONLY_ATTRIBUTES:
            return invalid(f"Attributes did not conform to the schema: {name}: Attribute cannot be set.")
        if _unknown(name, schema):
            return invalid(
                f"Attributes did not conform to the schema: {name}: Attribute does not exist in the schema."
            )
    return None


def check_update_attributes(names: list[str], schema: PoolSchema | None) -> CognitoError | None:
    """AdminUpdate/DeleteUserAttributes: also refuses immutable attributes (set at creation only)."""
    for name in names:
        if name in READ_ONLY_ATTRIBUTES or (schema is not None and not schema.mutable(name)):
            return invalid(
                f"Attributes did not conform to the schema: {name}: "
                "Attribute cannot be updated. (changing an immutable attribute)"
            )
        if _unknown(name, schema):
            return invalid(
                f"Attributes did not conform to the schema: {name}: Attribute does not exist in the schema."
            )
    return None
